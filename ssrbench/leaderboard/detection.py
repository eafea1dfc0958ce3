"""Does the self-supervised signal see the attack? Each cell's per-image pretext metric, clean against
attacked on the same images, scored as a detector: AUROC and the true-positive rate at 5% false
positives, with paired bootstrap intervals (fixed seed, so the view is the same at every load)."""

from __future__ import annotations

from collections.abc import Iterable

from ..core.stats import detection_scores
from .records import Cell, Detection

FPR = 0.05


def detection(cells: Iterable[Cell]) -> list[Detection]:
    """One record per cell that stored its per-image pretext values (cells of files before schema 3 did not)."""
    out = []
    for c in getattr(cells, "cells", cells):
        p = c.pretext.per_image
        if p is None:
            continue
        sign = -1.0 if c.pretext.higher_is_better else 1.0  # a worse pretext value should mean "attacked"
        s = detection_scores(sign * p.values("clean"), sign * p.values("adversarial"), fpr=FPR)
        out.append(
            Detection(
                task=c.task.name,
                mode=c.mode,
                attack=c.attack.name,
                seed=c.seed,
                score=("minus " if sign < 0 else "") + c.pretext.metric,
                auroc=s["auroc"],
                auroc_ci95=s["auroc_ci95"],
                tpr_at_5fpr=s["tpr"],
                tpr_ci95=s["tpr_ci95"],
            )
        )
    return out
