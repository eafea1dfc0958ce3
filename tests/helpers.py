"""Helpers and constants that several test modules share, so that no test module imports another.

(Shared pytest fixtures live in conftest.py.)
"""

from __future__ import annotations

import functools
import os
import pickle
import re
from pathlib import Path

import numpy as np
import torch

from ssrbench.adversarial.pgd import PGD
from ssrbench.core.budget import ReverseConfig
from ssrbench.core.progress import Reporter
from ssrbench.core.registry import reset_all
from ssrbench.data.datasets import ImageDataset
from ssrbench.leaderboard import store
from ssrbench.models.foreign import FeatureLayer
from ssrbench.pretext.base import PretextTask
from ssrbench.run.evaluate import evaluate
from ssrbench.run.testing import _tiny_model
from ssrbench.training.cache import ModelCache

from .distributions import install_fake_distribution

# the committed schema-1 leaderboard
FIXTURE = Path(__file__).parent / "fixtures" / "leaderboard-v1.json"

# the smoke preset, made smaller still: timm's tiny test model on a few synthetic images (seconds)
TINY = (
    "--preset",
    "smoke",
    "--backbone",
    "test_efficientnet",
    "--train-images",
    "128",
    "--batch-size",
    "32",
    "--eval-images",
    "16",
    "--device",
    "cpu",
    "--tasks",
    "rotation",
    "--attacks",
    "fgsm",
    "--quiet",
)

# the timestamp that starts each plain progress line in a log
STAMP = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d ")

CIFAR_BATCHES = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]


# bad inputs ------------------------------------------------------------------------------------------------------


class Payload:
    """Unpickling this creates a folder: the marker that code from a data file ran."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (str(self.marker),))


class ShellPayload:
    """Unpickling this runs a shell command: a hostile checkpoint or kept-progress file."""

    def __reduce__(self):
        return os.system, ("echo owned > /dev/null",)


def make_cifar(root: Path, train: int = 128, test: int = 64, **replace) -> Path:
    """A CIFAR-10 folder in torchvision's layout with random images; ``replace`` swaps a batch's object."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for name in CIFAR_BATCHES:
        n = test if name == "test_batch" else train
        batch = {
            "data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
            "labels": [int(v) for v in rng.integers(0, 10, n)],
        }
        (folder / name).write_bytes(pickle.dumps(replace.get(name, batch), protocol=2))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": [f"c{i}" for i in range(10)]}))
    return root


def error_line(res) -> str:
    """The single error line; a traceback or a multi-line reason fails the test."""
    assert "Traceback" not in res.output and res.exception is None or isinstance(res.exception, SystemExit), (
        f"not a clean error: {res.output}\n{res.exception!r}"
    )
    errors = [line for line in res.output.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1, res.output
    return errors[0]


# synthetic data --------------------------------------------------------------------------------------------------


def synthetic_dataset(n: int = 64) -> ImageDataset:
    """Synthetic uint8 images in an ImageDataset (its first 8 are the test split)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return ImageDataset(
        name="synthetic",
        train_x=x,
        train_y=y,
        test_x=x[:8],
        test_y=y[:8],
        mean=(0.5,) * 3,
        std=(0.25,) * 3,
        classes=tuple(str(i) for i in range(10)),
        fingerprint="synthetic",
        source="test",
    )


# a toy randomised defense ----------------------------------------------------------------------------------------


class NoisyTask(PretextTask):
    """A toy randomised defense: the 'task loss' is a random linear function of the pixels, so each
    reverse attack pushes the image by eps in a random direction -- a purifier made of noise."""

    name, version, metric_name, higher_is_better = "noisy", "1", "none", True
    randomized_eval = True

    def build_heads(self, spec):
        return {"none": torch.nn.Identity()}

    def training_loss(self, model, x, generator):
        raise NotImplementedError

    def reverse_loss(self, model, x, generator=None):
        sign = torch.randint(0, 2, x.shape, generator=generator, device=generator.device).to(x.device) * 2.0 - 1
        return (x * sign).flatten(1).sum(1)

    def pretext_metric(self, model, x, generator=None):
        return torch.zeros(len(x))


class NoisyMetricTask(NoisyTask):
    """NoisyTask whose pretext metric draws too (as contrastive view retrieval does)."""

    def pretext_metric(self, model, x, generator=None):
        return torch.rand(len(x), generator=generator, device=generator.device)


class OnePixel(torch.nn.Module):
    """A classifier that reads one pixel: images near its threshold flip with the defense's noise."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(1))

    def forward(self, x):
        d = (x[:, 0, 0, 0] - 0.5) * self.w
        return torch.stack([d, -d], 1)


def toy_setup(n=64, model=None):
    """``(model, x, y)``: the model (default timm's tiny one) in eval mode, ``n`` uint8 images and the
    model's own answers as labels -- 100% clean accuracy, so only the defense's noise can change one."""
    torch.manual_seed(0)
    model = (model or _tiny_model("test_efficientnet", 32)).eval()
    x = torch.randint(0, 256, (n, 3, 32, 32), generator=torch.Generator().manual_seed(0), dtype=torch.uint8)
    with torch.no_grad():
        y = model(x.float() / 255).argmax(1)
    return model, x, y


# a resumable toy evaluation --------------------------------------------------------------------------------------

TOY_REVERSE = ReverseConfig(eps=24 / 255, step_size=24 / 255, steps=1)


class KeptBatches:
    """The cache's kept batches, with a kill (KeyboardInterrupt) after ``stop_after`` saves."""

    def __init__(self, cache: ModelCache, stop_after: int | None = None):
        self.cache, self.stop_after, self.saves = cache, stop_after, 0

    def load(self):
        return self.cache.load_progress("k")

    def save(self, state):
        self.cache.save_progress("k", state)
        self.saves += 1
        if self.saves == self.stop_after:
            raise KeyboardInterrupt


def toy_evaluate(kept=None, attacks=("a", "b"), base=False):
    """The toy randomised defense evaluated on 40 images in batches of 8, keeping its batches in ``kept``."""
    model, x, y = toy_setup(40, model=OnePixel())
    other = toy_setup(40, model=OnePixel())[0] if base else None  # a second model as the static base
    pgd = {"eps": 2 / 255, "steps": 2, "step_size": 1 / 255, "random_start": True}
    return evaluate(
        model,
        NoisyMetricTask(),
        {n: PGD(pgd) for n in attacks},
        TOY_REVERSE,
        x,
        y,
        batch_size=8,
        seed=3,
        reporter=Reporter(None, quiet=True),
        description="toy",
        kept=kept,
        base=other,
    )


# plugins ---------------------------------------------------------------------------------------------------------


def install_plugin(site, entry_points, source, name="ssr-test-plugin", version="0.5"):
    """A fake distribution in ``site`` whose entry points name objects of one module, ``ssr_plugin_mod``."""
    install_fake_distribution(site, name, version, entry_points, {"ssr_plugin_mod": source})
    reset_all()


# the documentation ------------------------------------------------------------------------------------------------

DOCS_REPO = Path(__file__).resolve().parents[1]


def doc_pages() -> list[Path]:
    """Every hand-written page a reader sees: README.md, then docs/ (the site's generated pages are not files)."""
    return [DOCS_REPO / "README.md", *sorted((DOCS_REPO / "docs").rglob("*.md"))]


def prose() -> str:
    """Every page's text with line breaks folded, as sentences wrap anywhere: where a claim is looked up."""
    return " ".join(" ".join(p.read_text(encoding="utf-8").split()) for p in doc_pages())


def page_text(name: str) -> str:
    """One page (``README.md`` or a path under docs/), folded like ``prose``."""
    path = DOCS_REPO / name if name == "README.md" else DOCS_REPO / "docs" / name
    return " ".join(path.read_text(encoding="utf-8").split())


@functools.cache
def _committed(path: Path) -> store.Leaderboard:
    return store.load(path)


def committed(path: Path | str) -> store.Leaderboard:
    """A committed file (leaderboards/, benchmarks/results/) loaded as ``store.load`` does, but validated once
    per test session (recomputing its derived views takes up to 2 s a file); a deep copy, so a test may
    change it."""
    return _committed(Path(path).resolve()).model_copy(deep=True)


# toy defenses and models for evaluations that must match image for image -----------------------------------


class PullToGray(PretextTask):
    """A deterministic toy defense: the reverse attack pulls every pixel towards gray."""

    name, version, metric_name, higher_is_better = "gray", "1", "none", True

    def build_heads(self, spec):
        return {"none": torch.nn.Identity()}

    def training_loss(self, model, x, generator):
        raise NotImplementedError

    def reverse_loss(self, model, x, generator=None):
        return ((x - 0.5) ** 2).flatten(1).sum(1)

    def pretext_metric(self, model, x, generator=None):
        return torch.zeros(len(x))


class TinyConv(torch.nn.Module):
    def __init__(self, seed: int):
        super().__init__()
        torch.manual_seed(seed)
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(4),
            torch.nn.Flatten(),
            torch.nn.Linear(128, 10),
        )

    def forward(self, x):
        return self.body(x)


# bases (run --base) -------------------------------------------------------------------------------------------


class TinyBase(torch.nn.Module):
    """A user's own classifier as a base: [0, 1] pixels in, its own standardisation, pooling written in forward
    (as published models do), and the feature layer it declares."""

    ssrbench_feature_layer = FeatureLayer(module="body", head="fc", activation="relu")

    def __init__(self):
        super().__init__()
        self.register_buffer("mu", torch.tensor([0.5, 0.5, 0.5]).view(1, 3, 1, 1))
        self.body = torch.nn.Conv2d(3, 8, 3, padding=1)
        self.fc = torch.nn.Linear(8, 10)

    def forward(self, x):
        out = torch.relu(self.body(x - self.mu))
        return self.fc(torch.nn.functional.avg_pool2d(out, 32).flatten(1))


def tiny_base() -> TinyBase:
    """The factory `--base tests.helpers:tiny_base` names."""
    return TinyBase()


def robustbench_checkpoint(model_dir: Path, name: str = "Sehwag2021Proxy_R18", seed: int = 0) -> Path:
    """A checkpoint of RobustBench's architecture for ``name`` (seeded initial weights) where RobustBench's
    loader looks for it: model_dir/cifar10/Linf/NAME.pt, as {'state_dict': ...} like its published files."""
    from ssrbench.models.bases import robustbench

    robustbench()
    from robustbench.model_zoo import model_dicts
    from robustbench.model_zoo.enums import BenchmarkDataset, ThreatModel

    torch.manual_seed(seed)
    net = model_dicts[BenchmarkDataset.cifar_10][ThreatModel.Linf][name]["model"]()
    path = model_dir / "cifar10" / "Linf" / f"{name}.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"state_dict": net.state_dict()}, path)
    return path
