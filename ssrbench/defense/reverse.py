"""The reverse attack: L-inf PGD that *minimises* the task's self-supervised loss on the input.

Its labels come free from the image itself, so it can run on any test input -- clean or attacked --
in the hope of pulling an adversarial image back towards the data the task was trained on.
``Defense`` bundles it with its model and task so that adaptive attacks can attack f(rev(x)).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from ..core.budget import ReverseConfig
from ..core.linf import linf_pgd, project_linf, random_start_point
from ..models.ssr_model import SSRModel
from ..pretext.base import PretextTask
from .gate import gate_score


def reverse_attack(
    model: SSRModel, task: PretextTask, x: torch.Tensor, cfg: ReverseConfig, generator: torch.Generator | None = None
) -> torch.Tensor:
    if model.training:
        raise RuntimeError("the reverse attack runs on a model in eval mode")
    return linf_pgd(
        lambda z: task.loss_for_reverse(model, z, generator),
        x,
        eps=cfg.eps,
        step_size=cfg.step_size,
        steps=cfg.steps,
        random_start=cfg.random_start,
        maximize=False,
        generator=generator,
    )


def _sign_surrogate(g: torch.Tensor) -> torch.Tensor:
    """sign(g) in the forward pass; the gradient of tanh(g / tau) in the backward pass.

    sign() has zero derivative almost everywhere, which would stop any gradient through the
    reverse attack's steps. tau is each image's mean |g|, so tanh is not saturated and the
    backward signal neither vanishes nor explodes; the forward value is exactly the defense's.
    """
    tau = g.detach().abs().flatten(1).mean(1).clamp_min(1e-12).view(-1, *[1] * (g.ndim - 1))
    smooth = torch.tanh(g / tau)
    return g.sign().detach() + smooth - smooth.detach()


def differentiable_reverse(
    model: SSRModel, task: PretextTask, x: torch.Tensor, cfg: ReverseConfig, generator: torch.Generator | None = None
) -> torch.Tensor:
    """The reverse attack unrolled with a graph back to ``x`` (same forward values as ``reverse_attack``).

    Projection and clamping are piecewise linear and keep their gradients; the sign step uses
    ``_sign_surrogate``. Second-order: several times the cost of the plain reverse attack.
    """
    if cfg.steps == 0 or cfg.eps == 0:  # as linf_pgd: no budget, no change
        return x
    z = random_start_point(x, cfg.eps, generator) if cfg.random_start else x
    for _ in range(cfg.steps):
        loss = task.loss_for_reverse(model, z, generator).sum()
        (g,) = torch.autograd.grad(loss, z, create_graph=True)
        z = project_linf(z - cfg.step_size * _sign_surrogate(g), x, cfg.eps)
    return z


@dataclass
class Defense:
    """What an adaptive attack attacks: classify(rev(x)).

    ``fixed_seed`` freezes a randomised defense: every call draws from a generator seeded with it, so the
    defense is one deterministic function (the same draws for the same batch), known to the attacker.
    ``gate`` is the detection gate's threshold when the run fixed one (the gated defense reverses only
    images whose ``gate_score`` exceeds it): what a detector-aware attack must stay under.
    """

    model: SSRModel
    task: PretextTask
    reverse: ReverseConfig
    fixed_seed: int | None = None
    gate: float | None = None

    @property
    def draws_randomness(self) -> bool:
        moves = self.reverse.eps > 0 and self.reverse.steps > 0
        return bool(moves and (self.task.randomized_eval or self.reverse.random_start))

    @property
    def randomized(self) -> bool:
        """Does each call draw afresh? (What EOT averages over; False once the draws are fixed.)"""
        return self.draws_randomness and self.fixed_seed is None

    def with_fixed_draws(self, seed: int) -> Defense:
        return replace(self, fixed_seed=seed)

    def _generator(self, x: torch.Tensor, generator: torch.Generator | None) -> torch.Generator | None:
        if self.fixed_seed is None:
            return generator
        return torch.Generator(device=x.device).manual_seed(self.fixed_seed)

    def purify(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return reverse_attack(self.model, self.task, x, self.reverse, self._generator(x, generator))

    def gate_fires(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Per image, would the gated defense reverse it? (No gradient: the gate is a hard decision.)"""
        if self.gate is None:
            raise ValueError(
                "this defense has no detection gate: the run fixes one on training images "
                "(evaluate(..., gate=threshold))"
            )
        return gate_score(self.task, self.model, x, self._generator(x, generator)) > self.gate

    def purify_differentiably(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return differentiable_reverse(self.model, self.task, x, self.reverse, self._generator(x, generator))
