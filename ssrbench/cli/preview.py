"""What a task's network sees, as one picture (``ssrbench peek``): a row per test image, then its views."""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn.functional as F
from torchvision.utils import make_grid

from ..data.datasets import DATASETS, DEFAULT_DATASET
from ..pretext.base import PretextTask

DATASET = DEFAULT_DATASET  # the images `ssrbench run` evaluates on, so peek shows those


def first_test_images(n: int, data_dir: Path | None, download: bool, dataset: str = DATASET) -> torch.Tensor:
    """The first ``n`` test images of ``dataset``, float in [0, 1]."""
    data = DATASETS.get(dataset)(data_dir, download=download)
    return data.test_x[:n].float() / 255


def preview_grid(task: PretextTask, x: torch.Tensor, scale: int) -> tuple[torch.Tensor, list[str]] | None:
    """One (C, H, W) picture of ``x`` (images in [0, 1]) beside ``task.preview`` of them, each pixel
    ``scale`` times larger on a white ground, and the views' names (its columns after the original);
    None when the task defines no preview."""
    views = task.preview(x)
    if not views:
        return None
    side = max(v.shape[-1] for v in [x, *views.values()])
    pad = lambda v: F.pad(v, (0, side - v.shape[-1], 0, side - v.shape[-2]), value=1.0)  # noqa: E731
    rows = torch.stack([pad(x), *[pad(v) for v in views.values()]], dim=1).flatten(0, 1)
    rows = F.interpolate(rows, scale_factor=scale, mode="nearest")
    grid = make_grid(rows, nrow=1 + len(views), padding=2 * scale, pad_value=1.0)
    return grid, list(views)
