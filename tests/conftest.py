"""Shared fixtures: tiny timm test models on synthetic tensors; a real CIFAR-10 slice for integration."""

from __future__ import annotations

import functools
import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch

from ssrbench.models.ssr_model import SSRModel
from ssrbench.pretext.inpaint import InpaintTask

REPO = Path(__file__).resolve().parent.parent
TINY_BACKBONE = "test_efficientnet"  # timm's own tiny test model (~0.1M parameters)


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """No test touches the user's cache or config folders."""
    monkeypatch.setenv("SSRBENCH_CACHE_DIR", str(tmp_path / "model-cache"))
    monkeypatch.delenv("SSRBENCH_CONFIG_DIRS", raising=False)
    torch.manual_seed(0)


@pytest.fixture
def without_module(monkeypatch):
    """``without_module("kornia")``: importing it through ssrbench.core.extras fails, and the extra counts as
    not installed -- an installation without that optional extra."""
    from ssrbench.core import extras

    hidden = set()
    real = extras.importlib.import_module

    def fake(name, *a, **k):
        if name in hidden:
            raise ImportError(f"No module named {name!r}")
        return real(name, *a, **k)

    monkeypatch.setattr(extras.importlib, "import_module", fake)
    monkeypatch.setattr(extras, "installed", lambda extra: extras.EXTRA_MODULES[extra] not in hidden)
    return hidden.add


@pytest.fixture(scope="session")
def cifar_dir() -> Iterator[Path]:
    """The real CIFAR-10 (no download in tests). Missing data fails loudly rather than skipping work.

    The integration tests run several in-process commands on it; each would read and normalise the same
    60,000 images again (seconds apiece), so the first read is kept for the session and handed to the
    later ones. The loader itself runs on the first read, as for a user."""
    root = Path(os.environ.get("SSRBENCH_DATA_DIR") or REPO.parent / "shared" / "data")
    if not (root / "cifar-10-batches-py" / "test_batch").is_file():
        pytest.fail(f"integration tests need CIFAR-10 under {root}/cifar-10-batches-py; set SSRBENCH_DATA_DIR")
    from ssrbench.data import datasets as data

    real, kept = data.load_cifar10, {}
    folder = (root / data.CIFAR10_FOLDER).resolve()

    @functools.wraps(real)  # the registry shows the loader's docstring (`ssrbench list datasets`)
    def read_once(data_dir=None, download=True):
        where = Path(data_dir) if data_dir is not None else data.default_data_dir()
        where = (where if where.name == data.CIFAR10_FOLDER else where / data.CIFAR10_FOLDER).resolve()
        if where != folder:
            return real(data_dir, download)
        if where not in kept:
            kept[where] = real(data_dir, download)
        return kept[where]

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(data, "load_cifar10", read_once)
        data.DATASETS.reset()  # the registry loads its entry point again: now read_once
        yield root
    data.DATASETS.reset()


@pytest.fixture
def site(tmp_path) -> Iterator[Path]:
    """A site folder for fake installed distributions (tests.distributions): on teardown it leaves sys.path,
    the plugin modules imported from it are forgotten and the registries rescanned."""
    from ssrbench.core.registry import reset_all

    site = tmp_path / "site"
    reset_all()
    yield site
    sys.path[:] = [p for p in sys.path if p != str(site)]
    for mod in [m for m in sys.modules if m.split(".")[0] in ("ssrbench_example_plugin", "ssr_plugin_mod")]:
        del sys.modules[mod]
    reset_all()


@pytest.fixture
def images() -> torch.Tensor:
    g = torch.Generator().manual_seed(1)
    return torch.rand(6, 3, 32, 32, generator=g)


@pytest.fixture
def labels() -> torch.Tensor:
    return torch.tensor([0, 1, 2, 3, 4, 5])


@pytest.fixture
def inpaint_model() -> tuple[SSRModel, InpaintTask]:
    task = InpaintTask({"decoder_width": 8, "discriminator_width": 8})
    model = task.attach(SSRModel(TINY_BACKBONE, (0.5, 0.5, 0.5), (0.25, 0.25, 0.25), 10)).eval()
    return model, task


def consistent_board(board, cells=None):
    """``board`` with ``cells`` (default: its own) and what the file states once made to agree with them --
    the evaluated images (dataset and config) and the config's hash -- as a run writes it: a toy board a
    test builds from a fixture loads, since every cross-checkable value is checked on load."""
    from ssrbench.core.hashing import config_hash

    cells = list(board.cells if cells is None else cells)
    n = cells[0].clean.n if cells else board.dataset.eval_images
    config = {**board.config, "preset": {**board.config["preset"], "eval_images": n}}
    dataset = board.dataset.model_copy(update={"eval_images": n, "eval_selection": f"first {n} test images"})
    return board.model_copy(
        update={"cells": cells, "dataset": dataset, "config": config, "config_hash": config_hash(config)}
    )


def consistent_pretext(pretext, per_image):
    """``pretext`` with these per-image values and the means they imply (as a run records them)."""
    return pretext.model_copy(
        update={
            "per_image": per_image,
            **{
                which: float(per_image.values(which).mean())
                for which in ("clean", "adversarial", "adversarial_reversed")
            },
        }
    )
