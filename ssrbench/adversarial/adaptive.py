"""Adaptive attacks: they see the defense and attack the defended model f(rev(x)).

Croce et al. (ICML 2022) showed that test-time defenses of this family lose their gains against
attacks that account for them. Each kind here is L-inf PGD on a different loss:

bpda       forward through the reverse attack, backward as if it were the identity (Athalye et al. 2018)
unrolled   gradients through the unrolled reverse-attack steps (sign step via a tanh surrogate)
ssl-aware  maximise cross-entropy minus lambda * the task loss, without purifying (Mao et al. 2021)
detector-aware  against the detection-gated defense: fool the classifier while the gate stays shut

``eot_samples`` averages the loss over draws of the defense's randomness (EOT, Athalye et al. 2018);
with a deterministic defense every draw is the same and one sample is exact.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field

from ..defense.reverse import Defense
from .base import Attack
from .pgd import PGDParams, linf_pgd


def bpda_logits(defense: Defense, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """classify(rev(x)) in the forward pass; in the backward pass d rev(x) / dx is taken as the identity."""
    with torch.no_grad():
        purified = defense.purify(x.detach(), generator)
    return defense.model(x + (purified - x).detach())


class AdaptiveParams(PGDParams):
    eot_samples: int = Field(1, ge=1, le=1000, description="draws of a randomised defense averaged per step")


class _AdaptivePGD(Attack):
    adaptive = True
    Params = AdaptiveParams

    def defended_logits(self, defense: Defense, x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError

    def draws(self, randomised: bool) -> int:
        return self.params.eot_samples if randomised else 1

    def perturb(self, model, x, y, generator, defense: Defense):
        p = self.params
        samples = self.draws(defense.randomized)

        def loss(z):
            total = 0.0
            for _ in range(samples):
                total = total + F.cross_entropy(self.defended_logits(defense, z, generator), y, reduction="none")
            return total / samples

        return linf_pgd(
            loss,
            x,
            eps=p.eps,
            step_size=p.step_size,
            steps=p.steps,
            random_start=p.random_start,
            maximize=True,
            generator=generator,
            stats=self.stats,
        )


class BPDA(_AdaptivePGD):
    """Backward pass differentiable approximation: d rev(x) / dx taken as the identity."""

    def defended_logits(self, defense, x, generator):
        return bpda_logits(defense, x, generator)


class Unrolled(_AdaptivePGD):
    """Exact gradients through the unrolled reverse attack (with the sign surrogate)."""

    def cost(self, reverse_passes: float, randomised: bool = False) -> float:
        return 2 * super().cost(reverse_passes, randomised)  # a second-order backward through every reverse step

    def defended_logits(self, defense, x, generator):
        return defense.model(defense.purify_differentiably(x, generator))


class SSLAwareParams(AdaptiveParams):
    ssl_weight: float = Field(1.0, ge=0.0, description="lambda in CE - lambda * task loss")


class SSLAware(Attack):
    """Fool the classifier while keeping the self-supervised loss low, so the reverse attack has
    nothing to undo (Mao et al. 2021's adaptive attack)."""

    adaptive = True
    Params = SSLAwareParams

    def perturb(self, model, x, y, generator, defense: Defense):
        p = self.params

        def loss(z):
            return F.cross_entropy(model(z), y, reduction="none") - p.ssl_weight * defense.task.loss_for_reverse(
                model, z, generator
            )

        return linf_pgd(
            loss,
            x,
            eps=p.eps,
            step_size=p.step_size,
            steps=p.steps,
            random_start=p.random_start,
            maximize=True,
            generator=generator,
            stats=self.stats,
        )


class DetectorAware(Attack):
    """Against the detection-gated reverse attack: an image the gate lets through is classified as it is,
    so fool the classifier while keeping the pretext score under the gate's threshold.

    Per image and step: where the gate fires, descend the task loss (the differentiable side of the
    score) to close it; where it is shut, ascend the cross-entropy. The sign step makes both terms
    scale-free, so no weight is tuned per task. Each image keeps its first iterate that is misclassified
    with the gate shut -- the attack's goal, which the alternating loss alone could step away from.
    """

    adaptive = True
    Params = PGDParams

    def perturb(self, model, x, y, generator, defense: Defense):
        p = self.params
        if defense.gate is None:
            raise ValueError(
                "the detector-aware attack needs a gated defense (Defense(..., gate=threshold)); "
                "ssrbench run fixes the gate on training images before it attacks"
            )

        last: dict = {}

        def shut(z):  # linf_pgd asks ``keep`` about an iterate, then steps from it: one gate pass serves both
            if last.get("z") is not z:
                last.update(z=z, shut=~defense.gate_fires(z, generator))
            return last["shut"]

        def loss(z):
            ce = F.cross_entropy(model(z), y, reduction="none")
            return torch.where(shut(z), ce, -defense.task.loss_for_reverse(model, z, generator))

        def fooled_unseen(z):
            return (model(z).argmax(1) != y) & shut(z)

        return linf_pgd(
            loss,
            x,
            eps=p.eps,
            step_size=p.step_size,
            steps=p.steps,
            random_start=p.random_start,
            maximize=True,
            generator=generator,
            stats=self.stats,
            keep=fooled_unseen,
        )
