"""What a result was computed with: versions, device, threads, and the source commit when known."""

from __future__ import annotations

import os
import platform
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch

from ..leaderboard.schema import Environment


def _v(dist: str) -> str:
    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def available_devices() -> list[str]:
    """The devices a run can use here: the CPU, and each CUDA device torch sees."""
    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return ["auto", "cpu"] + (["cuda"] + [f"cuda:{i}" for i in range(n)] if n else [])


def resolve_device(name: str | None) -> torch.device:
    """``name`` as a device this run can use, checked up front: torch knows more device types (meta, mps,
    xpu ...) than ssrbench runs on, and those would only fail seconds into the work."""
    if name in (None, "", "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, ValueError, TypeError):
        raise ValueError(
            f"--device {name!r} is not a device name; available here: {', '.join(available_devices())}"
        ) from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"--device {name}: CUDA is not available on this machine (use --device cpu)")
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(
            f"--device {name!r}: ssrbench runs on the CPU or CUDA, not {dev.type}; available here: "
            f"{', '.join(available_devices())}"
        )
    if dev.index is not None and (
        dev.type == "cpu" and dev.index != 0 or dev.type == "cuda" and dev.index >= torch.cuda.device_count()
    ):
        raise ValueError(f"--device {name!r}: no such device here; available: {', '.join(available_devices())}")
    return dev


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def capture(device: torch.device) -> Environment:
    return Environment(
        python=platform.python_version(),
        platform=platform.platform(),
        torch=torch.__version__,
        torchvision=_v("torchvision"),
        timm=_v("timm"),
        numpy=_v("numpy"),
        pydantic=_v("pydantic"),
        device=str(device),
        device_name=torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name(),
        threads=torch.get_num_threads(),
        cpu_count=os.cpu_count(),
        cpu_capability=cpu_capability(),
        deterministic=torch.are_deterministic_algorithms_enabled(),
    )


def cpu_capability() -> str | None:
    """The CPU kernel family torch dispatches to (``AVX2``, ``AVX512``, ...)."""
    try:
        return str(torch.backends.cpu.get_cpu_capability())
    except (AttributeError, RuntimeError):
        return None


def trained_on(device: torch.device) -> dict:
    """What a training stage ran on: its weights depend on it (kernels round differently)."""
    env = capture(device)
    return {
        "device": env.device,
        "device_name": env.device_name,
        "cpu_capability": env.cpu_capability,
        "torch": env.torch,
        "threads": env.threads,
        "deterministic": env.deterministic,
    }


@contextmanager
def exact_fp32() -> Iterator[None]:
    """fp32 arithmetic that is fp32 on CUDA too: PyTorch lets cuDNN convolutions use TF32 (10-bit
    mantissa) by default, which an attack's gradients should not depend on. No effect on a CPU."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def make_deterministic() -> None:
    """torch's deterministic algorithms (an error, not a silent fallback, where an op has none)."""
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # cuBLAS needs it for reproducible matmuls
    torch.use_deterministic_algorithms(True)
    torch.backends.cudnn.benchmark = False


# what a run writes or documents, never what it reads: a changed leaderboard, kept benchmark or page does not make
# the code dirty (a run after another in the same checkout would otherwise record a dirty tree)
OUTPUT_PATHS = ("leaderboards", "benchmarks/results", "docs", "*.md")


def git_state(start: Path | None = None) -> tuple[str | None, bool | None]:
    """(commit, dirty) of the ssrbench source tree; (None, None) for an installed wheel. Dirty: a tracked file
    other than ``OUTPUT_PATHS`` differs from the commit."""
    where = start or Path(__file__).resolve().parents[2]  # ssrbench/models/environment.py -> the checkout
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=where, capture_output=True, text=True, timeout=10)
        if commit.returncode != 0:
            return None, None
        status = subprocess.run(
            [
                "git",
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ":/",
                *(f":(top,exclude){p}" for p in OUTPUT_PATHS),
            ],
            cwd=where,
            capture_output=True,
            text=True,
            timeout=10,
        )
        return commit.stdout.strip(), bool(status.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        return None, None
