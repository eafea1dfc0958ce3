"""Tasks side by side across leaderboards, recomputed on the images every file evaluated."""

from __future__ import annotations

from ssrbench.leaderboard import store
from ssrbench.leaderboard.records import Accuracy
from ssrbench.studies.task_ranking import markdown

from .helpers import FIXTURE


def test_rows_are_recomputed_on_the_images_every_file_has():
    board = store.load(FIXTURE)
    n = board.dataset.eval_images
    cut = n // 2
    small = board.model_copy(update={"dataset": board.dataset.model_copy(update={"eval_images": cut})})
    text = markdown([("a.json", board), ("b.json", small)])
    assert f"On the first {cut} test images" in text
    c = board.cells[0]
    clean = c.clean.flags()[:cut]
    assert f"| {c.task.name} | {c.mode} | {100 * clean.mean():.1f} |" in text
    assert "| — |" in text  # the fixture has no adaptive attacks: that worst case is missing, not invented


def test_a_row_mixing_trainings_is_marked():
    board = store.load(FIXTURE)
    other = board.model_copy(
        update={
            "cells": [
                c.model_copy(
                    update={"weights_sha256": "b" * 64, "attack": c.attack.model_copy(update={"name": "pgd2"})}
                )
                for c in board.cells
            ]
        }
    )
    ours = board.model_copy(
        update={
            "cells": [c.model_copy(update={"weights_sha256": "a" * 64}) for c in board.cells if c.attack.name == "fgsm"]
        }
    )
    assert "†" in markdown([("a.json", ours), ("b.json", other)])
    flags = ours.cells[0].adv_rev.flags()
    assert Accuracy.from_flags(flags).correct == ours.cells[0].adv_rev.correct


def test_files_evaluated_at_different_batches_are_named():
    board = store.load(FIXTURE)
    batch = board.config["preset"]["eval_batch_size"]
    other = board.model_copy(
        update={"config": {**board.config, "preset": {**board.config["preset"], "eval_batch_size": batch + 1}}}
    )
    assert "batches differ" not in markdown([("a.json", board), ("b.json", board)])
    text = markdown([("a.json", board), ("b.json", other)])
    assert f"Evaluation batches differ: {batch} images (`a.json`); {batch + 1} images (`b.json`)" in text
