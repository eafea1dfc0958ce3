"""APGD and AutoAttack (Croce & Hein 2020) from the field's library, torchattacks (extra ``attacks``).

Each kind runs in one of two positions (``through``): against the classifier alone (the Adv column of
a static model), or through the defense with BPDA -- forward through the reverse attack, backward as
if it were the identity -- the protocol Croce et al. 2022 use for test-time defenses. Through a
randomised defense, every forward pass draws the defense's randomness afresh and ``eot_iter`` draws
are averaged per gradient (EOT); through a deterministic one a single draw is exact, so one is used.

torchattacks seeds the global RNG inside its attacks; each call here takes that seed from the cell's
own generator and restores the global RNG state afterwards, so results are reproducible per cell and
other code's random streams are untouched.

torchattacks' own ``AutoAttack`` class runs its APGD with 10 iterations; the published AutoAttack
runs 100. ``autoattack`` therefore assembles torchattacks' APGD, APGD-T, FAB-T and Square (standard) or
APGD-CE and APGD-DLR with 20 EOT draws (rand) at the published settings, with ``steps`` recorded.
"""

from __future__ import annotations

from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, model_validator
from torch import nn

from ..core.budget import PixelBudget, ThreatModel
from ..core.extras import require
from ..core.limits import MAX_STEPS
from ..defense.reverse import Defense
from .adaptive import bpda_logits
from .base import Attack


def torchattacks() -> Any:
    """The torchattacks module, or a MissingExtraError (exit 2) naming the extra."""
    return require("attacks", "the APGD/AutoAttack attack kinds")


class _LibraryParams(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    eps: PixelBudget = Field(8 / 255, gt=0)
    steps: int = Field(100, ge=1, le=MAX_STEPS, description="APGD iterations (100 in the published AutoAttack)")
    n_classes: int = Field(10, ge=2, le=10_000)
    through: Literal["classifier", "bpda"] = Field(
        "classifier", description="attack the classifier alone, or the defended model with BPDA"
    )
    eot_iter: int = Field(
        1, ge=1, le=1000, description="EOT draws per gradient, used only through a randomised defense"
    )


class APGDParams(_LibraryParams):
    loss: Literal["ce", "dlr"] = "ce"
    targeted: bool = Field(
        False,
        description="APGD-T: the targeted DLR loss over the n_classes - 1 most likely other classes, one run each",
    )
    n_restarts: int = Field(1, ge=1, le=100)
    rho: float = Field(0.75, gt=0, lt=1, description="APGD's step-size halving threshold")

    @model_validator(mode="after")
    def _targeted_is_dlr(self) -> APGDParams:
        if self.targeted and self.loss != "dlr":
            raise ValueError('targeted APGD (APGD-T) uses the DLR loss: set loss = "dlr"')
        return self


class AutoAttackParams(_LibraryParams):
    version: Literal["standard", "rand"] = Field(
        "standard", description="standard: APGD-CE, APGD-T, FAB-T, Square; rand: APGD-CE and APGD-DLR with EOT"
    )
    n_queries: int = Field(5000, ge=1, le=1_000_000, description="Square's query budget (standard)")
    eot_iter: int = Field(20, ge=1, le=1000, description="EOT draws of the rand version")


class _BPDADefended(nn.Module):
    """The defended model as torchattacks sees it: logits of classify(rev(x)), with BPDA gradients."""

    def __init__(self, defense: Defense, generator: torch.Generator):
        super().__init__()
        self.model = defense.model  # a submodule, so torchattacks finds the device and sets eval mode
        self._defense, self._generator = defense, generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return bpda_logits(self._defense, x, self._generator)


class _LibraryAttack(Attack):
    """Common to the torchattacks kinds: the position, the seed, the extra check."""

    def __init__(self, params):
        super().__init__(params)
        torchattacks()  # fail before any training when the extra is missing

    @property
    def adaptive(self) -> bool:  # type: ignore[override]  # a per-config property here, not per kind
        return self.params.through == "bpda"

    def threat_model(self) -> ThreatModel:
        return ThreatModel(norm="linf", eps=self.params.eps, steps=self.params.steps)

    def build(self, ta: Any, target: nn.Module, seed: int, eot_iter: int) -> Any:
        raise NotImplementedError

    def draws(self, randomised: bool) -> int:
        """EOT draws per gradient: ``eot_iter`` through a randomised defense, else one (exact)."""
        return self.params.eot_iter if randomised else 1

    def perturb(self, model, x, y, generator, defense: Defense | None = None):
        ta = torchattacks()
        randomised = defense is not None and defense.randomized
        eot_iter = self.draws(randomised)
        # eval() before torchattacks records the mode to restore: a new Module starts in training mode
        target = _BPDADefended(defense, generator).eval() if self.adaptive else model
        seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator, device=generator.device))
        devices = [x.device] if x.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):  # the library's code views its tensors as contiguous ones
            adv = self.build(ta, target, seed, eot_iter)(x.contiguous(), y)
        self.stats["eot_iter"] = float(eot_iter)
        return adv.clamp(0, 1).contiguous(memory_format=torch.channels_last)


class APGD(_LibraryAttack):
    """APGD-CE / APGD-DLR / APGD-T (Croce & Hein 2020), torchattacks' implementation."""

    Params = APGDParams

    def build(self, ta, target, seed, eot_iter):
        p = self.params
        if p.targeted:
            return ta.APGDT(
                target,
                norm="Linf",
                eps=p.eps,
                steps=p.steps,
                n_restarts=p.n_restarts,
                seed=seed,
                eot_iter=eot_iter,
                rho=p.rho,
                n_classes=p.n_classes,
            )
        return ta.APGD(
            target,
            norm="Linf",
            eps=p.eps,
            steps=p.steps,
            n_restarts=p.n_restarts,
            seed=seed,
            loss=p.loss,
            eot_iter=eot_iter,
            rho=p.rho,
        )


class AutoAttack(_LibraryAttack):
    """AutoAttack at its published settings, assembled from torchattacks' components (see module doc)."""

    Params = AutoAttackParams

    def draws(self, randomised: bool) -> int:
        return self.params.eot_iter if self.params.version == "rand" else 1

    def cost(self, reverse_passes: float) -> float:
        """Its parts' gradient passes: standard APGD-CE, then APGD-T and FAB-T over the n_classes - 1 targets,
        then Square's queries (forward passes, about a third of a gradient pass); rand two APGD runs with EOT."""
        p = self.params
        if p.version == "rand":
            passes = 2 * p.steps * p.eot_iter
        else:
            passes = p.steps * (1 + 2 * (p.n_classes - 1)) + p.n_queries / 3
        return passes * (1 + reverse_passes) if self.adaptive else float(passes)

    def build(self, ta, target, seed, eot_iter):
        p = self.params
        common = dict(norm="Linf", eps=p.eps)
        if p.version == "rand":  # its EOT is part of the version
            parts = [
                ta.APGD(target, steps=p.steps, seed=seed, loss=loss, eot_iter=eot_iter, n_restarts=1, **common)
                for loss in ("ce", "dlr")
            ]
        else:
            parts = [
                ta.APGD(target, steps=p.steps, seed=seed, loss="ce", n_restarts=1, **common),
                ta.APGDT(target, steps=p.steps, seed=seed, n_classes=p.n_classes, n_restarts=1, **common),
                ta.FAB(
                    target, steps=p.steps, seed=seed, multi_targeted=True, n_classes=p.n_classes, n_restarts=1, **common
                ),
                ta.Square(target, n_queries=p.n_queries, seed=seed, n_restarts=1, **common),
            ]
        return ta.MultiAttack(parts)
