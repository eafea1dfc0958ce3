"""Issue 30, item 4: a preset calibrated on accuracy is calibrated on held-out *training* images, never
on the test images its leaderboard is evaluated on (benchmarks/bench_quick_robust.py)."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from ssrbench.core.presets import resolve_preset
from ssrbench.core.progress import Reporter
from ssrbench.data.datasets import ImageDataset
from ssrbench.leaderboard import store
from ssrbench.leaderboard.records import TrainingRecord
from ssrbench.training import adversarial
from ssrbench.training.cache import ModelCache
from ssrbench.training.modes import TrainContext

from .conftest import REPO, TINY_BACKBONE
from .helpers import FIXTURE


class NoTestImages:
    """Stands for the test split: any use of it fails the test."""

    def __getattr__(self, name):
        raise AssertionError(f"the calibration read the test images (.{name})")

    def __getitem__(self, index):
        raise AssertionError("the calibration read the test images")

    def __len__(self):
        raise AssertionError("the calibration read the test images")


class AlwaysZero(torch.nn.Module):
    """Predicts class 0 for every image (and has a parameter and an input gradient, as attacks need)."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x):
        logits = torch.zeros(len(x), 10) + self.w * x.flatten(1).sum(1, keepdim=True)
        logits[:, 0] += 10
        return logits


def test_the_held_out_monitor_reads_only_the_held_out_training_images(tmp_path, monkeypatch):
    """Class 0 on half the held-out training images and nowhere else: 50% clean and 50% PGD-10 come only
    from exactly those images; the test split cannot be touched at all."""
    monkeypatch.setattr(adversarial, "HELDOUT", 16)
    x = torch.randint(0, 256, (64, 3, 32, 32), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    y = torch.ones(64, dtype=torch.int64)
    y[48:56] = 0  # the held-out images are the last 16 of the 64 trained on: [48, 64)
    data = ImageDataset(
        name="synthetic",
        train_x=x,
        train_y=y,
        test_x=NoTestImages(),
        test_y=NoTestImages(),
        mean=(0.5,) * 3,
        std=(0.25,) * 3,
        classes=tuple(str(i) for i in range(10)),
        fingerprint="synthetic",
        source="test",
    )
    preset = resolve_preset("smoke", {"backbone": TINY_BACKBONE, "train_images": 64, "adversarial_training": "fgsm-rs"})
    ctx = TrainContext(
        data=data,
        preset=preset,
        device=torch.device("cpu"),
        seed=0,
        cache=ModelCache(tmp_path / "cache"),
        reporter=Reporter(quiet=True),
    )
    assert ctx.train_range() == adversarial.heldout_range(64) == (48, 64)
    model = AlwaysZero().train()
    monitor = ctx.adversarial_monitor(model, [])
    monitor.after_epoch()
    logs = monitor.final()
    assert logs == {"heldout_pgd_acc": 50.0, "heldout_clean_acc": 50.0}
    assert model.training  # the monitor leaves the model as it found it


def _bench():
    spec = importlib.util.spec_from_file_location("bench_quick_robust", REPO / "benchmarks" / "bench_quick_robust.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def _board(final_logs: dict, cached: bool = False):
    board = store.load(FIXTURE)
    spec = {"train_images": None, "adversarial": {"kind": "fgsm-rs", "eps": 8 / 255, "heldout": adversarial.HELDOUT}}
    rec = TrainingRecord(stage="classifier", key="k", cached=cached, seconds=600.0, final_logs=final_logs, spec=spec)
    return board.model_copy(update={"training": [rec]})


def test_the_quick_robust_calibration_reads_the_training_record_not_the_test_cells():
    bench = _bench()
    board = _board({"ce": 1.5, "acc": 0.4, "heldout_clean_acc": 61.5, "heldout_pgd_acc": 33.25})
    want = {"classifier_minutes": 10.0, "clean": 61.5, "pgd10": 33.25}
    assert bench.calibration(board) == want
    assert {c.clean.percent for c in board.cells} != {61.5}  # the fixture's cells (test images) differ
    assert bench.calibration(board.model_copy(update={"cells": []})) == want  # and are never read
    images = bench.heldout_images(board, 50_000)
    assert (images["split"], images["start"], images["stop"], images["count"]) == ("train", 49_488, 50_000, 512)
    assert "no test image" in images["what"]
    for bad in (_board({"heldout_pgd_acc": 33.25}), _board({"heldout_clean_acc": 1, "heldout_pgd_acc": 1}, True)):
        with pytest.raises(SystemExit, match="empty cache"):  # no held-out clean reading: not calibrated here
            bench.calibration(bad)
