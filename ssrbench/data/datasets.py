"""Datasets as in-memory uint8 tensors, with a fingerprint of exactly what was loaded.

The CIFAR-10 pickles are read directly rather than through torchvision's dataset class: its MD5 check
rejects re-encoded copies (such as a JPEG-derived one), and a fingerprint of the arrays is a better
guard anyway -- leaderboards computed on different copies never compare as equal.
"""

from __future__ import annotations

import hashlib
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..core.errors import DataError, DataFormatError
from ..core.fileio import open_regular_file
from ..core.registry import Registry

DATASETS: Registry = Registry("dataset", "ssrbench.datasets")  # loaders: (data_dir, download) -> ImageDataset
DATA_DIR_ENV = "SSRBENCH_DATA_DIR"
DEFAULT_DATASET = "cifar10"  # what a run evaluates on unless told otherwise
CIFAR10_FOLDER = "cifar-10-batches-py"


@dataclass(frozen=True)
class ImageDataset:
    name: str
    train_x: torch.Tensor  # uint8 N, C, H, W
    train_y: torch.Tensor  # int64 N
    test_x: torch.Tensor
    test_y: torch.Tensor
    mean: tuple[float, ...]
    std: tuple[float, ...]
    classes: tuple[str, ...]
    fingerprint: str  # sha256 of the arrays as loaded
    source: str

    @property
    def image_size(self) -> int:
        return self.train_x.shape[-1]


def default_data_dir() -> Path:
    env = os.environ.get(DATA_DIR_ENV)
    return Path(env) if env else Path.home() / ".cache" / "ssrbench" / "data"


def fingerprint(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


# What a CIFAR batch pickle may name: numpy's array and scalar reconstruction, nothing else. The
# builtin containers, strings, bytes and numbers need no global at all.
_SAFE_GLOBALS = (
    {
        (module, name)
        for module in ("numpy.core.multiarray", "numpy._core.multiarray")
        for name in ("_reconstruct", "scalar")
    }
    | {(module, "_frombuffer") for module in ("numpy.core.numeric", "numpy._core.numeric")}
    | {("numpy", "ndarray"), ("numpy", "dtype"), ("_codecs", "encode")}
)


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """Refuses every global outside ``_SAFE_GLOBALS``, so a planted ``__reduce__`` never runs."""

    def find_class(self, module: str, name: str):
        if (module, name) not in _SAFE_GLOBALS:
            raise pickle.UnpicklingError(
                f"refused to load {module}.{name} (only numpy arrays and plain data are allowed)"
            )
        return super().find_class(module, name)


def _unpickle(path: Path) -> object:
    """A pickle of plain data and numpy arrays; anything that would import other code is refused."""
    with open_regular_file(path) as fh:  # a FIFO or a device in the data folder is refused, never waited on
        return _ArraysOnlyUnpickler(fh, encoding="latin1").load()


def _read_batch(path: Path, n_classes: int = 10) -> tuple[np.ndarray, np.ndarray]:
    try:
        d = _unpickle(path)
    except Exception as exc:  # noqa: BLE001 - a hostile or broken pickle can fail in any way; all are refused
        raise DataFormatError(f"{path}: not a readable CIFAR-10 batch ({type(exc).__name__}: {exc})") from exc
    if not isinstance(d, dict) or "data" not in d or "labels" not in d:
        raise DataFormatError(
            f"{path}: not a CIFAR-10 batch (expected a dict with 'data' and 'labels', got "
            f"{type(d).__name__}); re-create it in torchvision's python layout"
        )
    try:
        x = np.asarray(d["data"])
        y = np.asarray(d["labels"])
        if x.dtype != np.uint8 or x.ndim != 2 or x.shape[1] != 3 * 32 * 32:
            raise ValueError(f"'data' must be uint8 of shape (N, 3072), got {x.dtype} {x.shape}")
        if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
            raise ValueError(f"'labels' must be a list of integers, got {y.dtype} {y.shape}")
        if len(y) != len(x):
            raise ValueError(f"{len(y)} labels for {len(x)} images")
        if len(y) and (y.min() < 0 or y.max() >= n_classes):
            bad = int(y[(y < 0) | (y >= n_classes)][0])
            raise ValueError(f"label {bad} is outside 0..{n_classes - 1}")
    except (ValueError, TypeError) as exc:
        raise DataFormatError(f"{path}: bad CIFAR-10 batch: {exc}") from exc
    return x.reshape(-1, 3, 32, 32), y.astype(np.int64)


def _download_cifar10(root: Path) -> None:
    from torchvision.datasets import CIFAR10

    root.mkdir(parents=True, exist_ok=True)
    CIFAR10(root=str(root), train=True, download=True)


def load_cifar10(data_dir: Path | str | None = None, download: bool = True) -> ImageDataset:
    """CIFAR-10 from ``<data_dir>/cifar-10-batches-py`` (torchvision's python layout).

    ``data_dir`` may also point at the ``cifar-10-batches-py`` folder itself.
    """
    root = Path(data_dir) if data_dir is not None else default_data_dir()
    folder = root if root.name == CIFAR10_FOLDER else root / CIFAR10_FOLDER
    names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    if not all((folder / n).is_file() for n in names):
        if not download:
            raise DataError(_missing_message(folder))
        try:
            _download_cifar10(folder.parent)
        except Exception as exc:  # noqa: BLE001 - any network/IO failure ends in the same advice
            raise DataError(f"{_missing_message(folder)} Download failed: {type(exc).__name__}: {exc}") from exc
    classes = _class_names(folder / "batches.meta")
    parts = [_read_batch(folder / n, len(classes)) for n in names]
    train_x = np.concatenate([p[0] for p in parts[:5]])
    train_y = np.concatenate([p[1] for p in parts[:5]])
    test_x, test_y = parts[5]
    mean = tuple(float(v) for v in (train_x / 255.0).mean(axis=(0, 2, 3)))
    std = tuple(float(v) for v in (train_x / 255.0).std(axis=(0, 2, 3)))
    return ImageDataset(
        name="cifar10",
        train_x=torch.from_numpy(train_x),
        train_y=torch.from_numpy(train_y),
        test_x=torch.from_numpy(test_x),
        test_y=torch.from_numpy(test_y),
        mean=mean,
        std=std,
        classes=classes,
        fingerprint=fingerprint(train_x, train_y, test_x, test_y),
        source=display_path(folder),
    )


def _class_names(path: Path) -> tuple[str, ...]:
    """The ten label names from ``batches.meta``; their indices when the file is absent."""
    if not path.is_file():
        return tuple(str(i) for i in range(10))
    try:
        names = _unpickle(path)["label_names"]  # type: ignore[index]
    except Exception as exc:  # noqa: BLE001 - as for the batches
        raise DataFormatError(f"{path}: not a readable CIFAR-10 meta file ({type(exc).__name__}: {exc})") from exc
    if not isinstance(names, list) or len(names) != 10 or not all(isinstance(n, str) for n in names):
        raise DataFormatError(f"{path}: 'label_names' must be a list of 10 strings")
    return tuple(names)


def display_path(path: Path) -> str:
    """The path as the user gave it (relative stays relative), with the home folder written ``~``:
    leaderboards are shared, and the fingerprint -- not the path -- identifies the data."""
    if path.is_absolute():
        try:
            return str(Path("~") / path.relative_to(Path.home()))
        except ValueError:
            pass
    return str(path)


def _missing_message(folder: Path) -> str:
    return (
        f"CIFAR-10 not found at {folder}. "
        f"Put torchvision's python layout there (data_batch_1..5, test_batch, batches.meta), or point "
        f"--data-dir / ${DATA_DIR_ENV} at the folder that contains '{CIFAR10_FOLDER}'. "
        f"With network access, leave download on and ssrbench fetches it with torchvision."
    )


def pixels(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """uint8 images as the float pixels in [0, 1] a model takes, channels-last on ``device``: what an attack,
    a reverse attack and the held-out monitor of adversarial training see alike."""
    return x.to(device, non_blocking=True).float().div_(255).contiguous(memory_format=torch.channels_last)


def augment(x: torch.Tensor, generator: torch.Generator, pad: int = 4) -> torch.Tensor:
    """Random crop (reflect-padded) and horizontal flip on a float batch, vectorised."""
    b, _, h, w = x.shape
    dev = generator.device
    flip = torch.rand(b, generator=generator, device=dev).to(x.device) < 0.5
    x = torch.where(flip[:, None, None, None], x.flip(3), x)
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad), mode="reflect")
    dy = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device=dev).to(x.device)
    dx = torch.randint(0, 2 * pad + 1, (b,), generator=generator, device=dev).to(x.device)
    rows = (dy[:, None] + torch.arange(h, device=x.device))[:, :, None]
    cols = (dx[:, None] + torch.arange(w, device=x.device))[:, None, :]
    bidx = torch.arange(b, device=x.device)[:, None, None]
    return padded.permute(0, 2, 3, 1)[bidx, rows, cols].permute(0, 3, 1, 2).contiguous()
