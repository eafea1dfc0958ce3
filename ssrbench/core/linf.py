"""L-inf projected gradient descent, shared by the adversary (ascent) and the reverse attack (descent).

A leaf below both ``defense`` and ``adversarial``: the algorithm, not an attack.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar

import torch

LossFn = Callable[[torch.Tensor], torch.Tensor]

_SUBSET: ContextVar[tuple[torch.Tensor, int] | None] = ContextVar("ssrbench_subset_of_batch", default=None)


@contextmanager
def drawn_as_batch(index: torch.Tensor, size: int) -> Iterator[None]:
    """Inside, a random start for the images ``index`` of a batch of ``size`` is drawn as the whole batch's would
    be and then picked: an image's start, and the generator's state after, do not depend on which others are
    attacked with it (an attack cascade attacks the images still robust, and must meet each as the grid does).
    Inside another, ``index`` picks from the images the outer one picked (a cascade's images split into chunks
    that fit in memory): the draw is still the outermost batch's."""
    outer = _SUBSET.get()
    if outer is not None and len(outer[0]) == size:
        index, size = outer[0][index.to(outer[0].device)], outer[1]
    token = _SUBSET.set((index, size))
    try:
        yield
    finally:
        _SUBSET.reset(token)


def random_start_point(x: torch.Tensor, eps: float, generator: torch.Generator | None) -> torch.Tensor:
    """A uniform draw from the eps-ball around ``x``, clamped to [0, 1]."""
    subset = _SUBSET.get()
    if subset is not None and len(subset[0]) == len(x):
        index, size = subset
        full = torch.rand((size, *x.shape[1:]), generator=generator, device=x.device, dtype=x.dtype)
        noise = full[index.to(x.device)]
    else:
        noise = torch.rand(x.shape, generator=generator, device=x.device, dtype=x.dtype)
    return (x + (2 * noise - 1) * eps).clamp(0, 1)


def project_linf(z: torch.Tensor, x: torch.Tensor, eps: float) -> torch.Tensor:
    """Back into the eps-ball around ``x`` and into [0, 1] (piecewise linear: keeps its gradient inside)."""
    return torch.min(torch.max(z, x - eps), x + eps).clamp(0, 1)


def linf_pgd(
    loss_fn: LossFn,
    x: torch.Tensor,
    *,
    eps: float,
    step_size: float,
    steps: int,
    random_start: bool,
    maximize: bool,
    generator: torch.Generator | None = None,
    stats: dict[str, float] | None = None,
    keep: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Signed-gradient steps projected onto the eps-ball around ``x`` and onto [0, 1].

    ``loss_fn`` returns one loss per sample; it is summed so that each sample's step is independent
    of the batch it sits in. ``stats`` (if given) receives the fraction of images whose input gradient
    was exactly zero or not finite at the first step -- the signature of masked gradients. ``keep`` (if
    given) says per image whether an iterate already achieves the attack's goal; such an image returns
    the first iterate that did, so a later step cannot undo a success the loss alone does not capture.
    """
    x = x.detach()
    if steps == 0 or eps == 0:
        return x.clone()
    x_adv = random_start_point(x, eps, generator) if random_start else x.clamp(0, 1)
    sign = 1.0 if maximize else -1.0
    if keep is not None:  # per image: the first iterate that achieved the goal (no host sync per step)
        found = torch.zeros(len(x), dtype=torch.bool, device=x.device).view(-1, *[1] * (x.ndim - 1))
        kept = x_adv

        def record(z: torch.Tensor) -> None:
            nonlocal kept, found
            with torch.no_grad():
                hit = keep(z).view_as(found) & ~found
            kept, found = torch.where(hit, z.detach(), kept), found | hit

        record(x_adv)
    for step in range(steps):
        x_adv.requires_grad_(True)
        with torch.enable_grad():
            loss = loss_fn(x_adv).sum()
            (grad,) = torch.autograd.grad(loss, x_adv, allow_unused=True)
        if grad is None:
            grad = torch.zeros_like(x_adv)
        if stats is not None and step == 0:
            dead = (grad.flatten(1).abs().sum(1) == 0) | ~torch.isfinite(grad.flatten(1)).all(1)
            stats["zero_grad_fraction"] = dead.float().mean().item()
        grad = torch.nan_to_num(grad)
        x_adv = x_adv.detach() + sign * step_size * grad.sign()
        x_adv = project_linf(x_adv, x, eps)
        if keep is not None:
            record(x_adv)
    if keep is not None:
        x_adv = torch.where(found, kept, x_adv)
    return x_adv.detach()
