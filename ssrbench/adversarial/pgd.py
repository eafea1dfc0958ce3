"""Madry et al.'s PGD: L-inf projected gradient ascent on the classifier's cross-entropy."""

from __future__ import annotations

import torch.nn.functional as F
from pydantic import Field
from torch import nn

from ..core.budget import LinfBudget
from ..core.limits import MAX_STEPS
from ..core.linf import LossFn, linf_pgd, project_linf, random_start_point  # noqa: F401 - re-exported for attacks
from .base import Attack


class PGDParams(LinfBudget):
    steps: int = Field(10, ge=1, le=MAX_STEPS)
    random_start: bool = True


def classifier_loss(model: nn.Module, y) -> LossFn:
    return lambda x: F.cross_entropy(model(x), y, reduction="none")


class PGD(Attack):
    """Madry et al. 2018: maximise the classifier's cross-entropy inside the L-inf ball."""

    Params = PGDParams

    def perturb(self, model, x, y, generator):
        p = self.params
        return linf_pgd(
            classifier_loss(model, y),
            x,
            eps=p.eps,
            step_size=p.step_size,
            steps=p.steps,
            random_start=p.random_start,
            maximize=True,
            generator=generator,
            stats=self.stats,
        )
