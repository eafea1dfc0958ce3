"""FGSM: a single signed-gradient step of size eps (Goodfellow et al. 2015)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict

from ..core.budget import PixelBudget, ThreatModel
from .base import Attack
from .pgd import classifier_loss, linf_pgd


class FGSMParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    eps: PixelBudget = 8 / 255


class FGSM(Attack):
    Params = FGSMParams

    def threat_model(self) -> ThreatModel:
        return ThreatModel(norm="linf", eps=self.params.eps, steps=1)

    def perturb(self, model, x, y, generator):
        eps = self.params.eps
        return linf_pgd(
            classifier_loss(model, y),
            x,
            eps=eps,
            step_size=eps,
            steps=1,
            random_start=False,
            maximize=True,
            generator=generator,
            stats=self.stats,
        )
