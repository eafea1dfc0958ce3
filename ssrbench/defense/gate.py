"""The detection gate: the pretext score as a detector of attacked images (the source report's future work).

One definition of the score, shared by the threshold fixed on training images and the detector-aware
attack that must keep the gate shut; the leaderboard applies the same test (score > threshold) to the
float16 values it stores.
"""

from __future__ import annotations

import numpy as np
import torch

from ..models.ssr_model import SSRModel
from ..pretext.base import PretextTask


def gate_score(task: PretextTask, model: SSRModel, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    """Per image, the task's pretext metric oriented so that higher = more suspicious, rounded to float16
    as leaderboards store it (so a decision made here is the one a stored file reproduces)."""
    with torch.no_grad():
        metric = task.metric_for_eval(model, x, generator).float()
    sign = -1.0 if task.higher_is_better else 1.0
    return (sign * metric).half().double()


def threshold_at(scores: np.ndarray, fpr: float) -> float:
    """The threshold that flags a fraction ``fpr`` of these (clean) scores."""
    return float(np.quantile(np.asarray(scores, dtype=np.float64), 1 - fpr, method="higher"))
