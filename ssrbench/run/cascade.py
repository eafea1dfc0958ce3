"""The worst case without the grid (``run --cascade``): attacks one after another, each on the images still robust.

For the worst case an image already fooled needs no further attack (AutoAttack's cascade). Per (task, mode) model
the attacks run in a declared order, each on the images still robust -- defended (Adv+Rev; every draw of a
randomised defense; with a static base, also the base's own images defended, as the grid's worst case reads) or
undefended (Adv) -- so the result is the grid's worst case, image for image, for the cost of attacking only what
is left. Each attack draws its random start as it would for the whole batch (``linf.drawn_as_batch``), so an
image's attack does not depend on which others are still robust. What a cascade cannot give, it does not record:
no per-attack accuracy, only how many images each attack ran on and fooled.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import torch
from torch import nn

from ..adversarial.base import Attack
from ..core.budget import ReverseConfig
from ..core.linf import drawn_as_batch
from ..core.progress import Reporter
from ..data.datasets import pixels
from ..defense.reverse import Defense
from ..models.environment import exact_fp32
from ..models.ssr_model import SSRModel
from ..pretext.base import PretextTask
from .evaluate import _all_draws, _correct, _per_attack, _pinned, _seeded

Order = Literal["cost", "given"]
ORDERS: dict[str, str] = {
    "cost": "cheapest first: each attack's declared cost (Attack.cost: gradient passes per image), ties as given",
    "given": "as --attacks (and --adaptive) list them",
}


def ordered(attacks: dict[str, Attack], order: Order, reverse_passes: float) -> list[str]:
    """The attack names in the cascade's order."""
    names = list(attacks)
    if order == "given":
        return names
    return sorted(names, key=lambda n: (attacks[n].cost(reverse_passes), names.index(n)))


@dataclass
class StageOutcome:
    """One attack of a cascade: the images it ran on, and those it fooled (of the ones still robust)."""

    ran_on: int = 0
    fooled_defended: int = 0
    fooled_undefended: int = 0
    seconds: float = 0.0


@dataclass
class CascadeOutcome:
    order: list[str]
    clean: np.ndarray
    clean_rev: np.ndarray
    defended: np.ndarray  # per image: defended against every attack (the grid's worst case, defended)
    undefended: np.ndarray  # per image: correct under every attack without the defense
    stages: dict[str, StageOutcome] = field(default_factory=dict)
    randomized: bool = False


def evaluate_cascade(
    model: SSRModel,
    task: PretextTask,
    attacks: dict[str, Attack],
    order: list[str],
    reverse: ReverseConfig,
    x_all: torch.Tensor,
    y_all: torch.Tensor,
    *,
    batch_size: int,
    seed: int,
    reporter: Reporter,
    description: str,
    gate: float | None = None,
    base: nn.Module | None = None,
) -> CascadeOutcome:
    """``evaluate``'s worst case, by cascade: the same streams (an attack's, its reverse attack's, its redraws',
    the base's), so each image meets the attack it meets in the grid."""
    if model.training:
        raise RuntimeError("evaluate_cascade() needs the model in eval mode")
    with exact_fp32():
        return _cascade(model, task, attacks, order, reverse, x_all, y_all, batch_size, seed, reporter, description,
                        gate, base)  # fmt: skip


def _cascade(model, task, attacks, order, reverse, x_all, y_all, batch_size, seed, reporter, description, gate, base):
    dev = next(model.parameters()).device
    x_all = _pinned(x_all, dev)
    defense = Defense(model, task, reverse, gate=gate)
    randomised = defense.randomized
    rev_gen = _seeded(seed, "reverse", dev)
    gens = {name: _seeded(seed, name, dev) for name in attacks}
    rev_gens = _per_attack(seed, "reverse", attacks, dev)
    redraw_gens = _per_attack(seed, "redraw", attacks, dev) if randomised else {}
    blind = {name for name, a in attacks.items() if not a.adaptive} if base is not None else set()
    base_gens = {name: _seeded(seed, name, dev) for name in blind}
    base_rev_gens = _per_attack(seed, "from-base/reverse", blind, dev)
    base_redraw_gens = _per_attack(seed, "from-base/redraw", blind, dev) if randomised else {}
    stages = {name: StageOutcome() for name in order}
    clean, clean_rev, defended, undefended = [], [], [], []
    n = len(x_all)
    with reporter.bar(description, n, unit="images") as advance:
        for i in range(0, n, batch_size):
            x = pixels(x_all[i : i + batch_size], dev)
            y = y_all[i : i + batch_size].to(dev)
            b = len(x)
            clean.append(_correct(model, x, y))
            clean_rev.append(_correct(model, defense.purify(x, rev_gen), y))  # one draw, as a cell's Clean+Rev
            ok_def, ok_undef = np.ones(b, dtype=bool), np.ones(b, dtype=bool)
            for name in order:
                attack, s = attacks[name], stages[name]
                alive = np.flatnonzero(ok_def | ok_undef)
                if not len(alive):
                    break  # nothing left to fool in this batch: no later attack runs on it
                t0 = time.perf_counter()
                index = torch.from_numpy(alive).to(dev)
                xs, ys = x[index], y[index]
                with drawn_as_batch(index, b):
                    x_adv = attack(model, xs, ys, gens[name], defense=defense)
                    adv = _correct(model, x_adv, ys)
                    held = _correct(model, defense.purify(x_adv, rev_gens[name]), ys)
                    if randomised:
                        held = _all_draws(model, defense, x_adv, ys, held, redraw_gens[name])
                    if name in blind:  # the base's own images, defended: part of the grid's worst case too
                        x_base = attack(base, xs, ys, base_gens[name])
                        from_base = _correct(model, defense.purify(x_base, base_rev_gens[name]), ys)
                        if randomised:
                            from_base = _all_draws(model, defense, x_base, ys, from_base, base_redraw_gens[name])
                        held &= from_base
                s.seconds += time.perf_counter() - t0
                s.ran_on += len(alive)
                before_def, before_undef = ok_def[alive].copy(), ok_undef[alive].copy()
                ok_def[alive] &= held
                ok_undef[alive] &= adv
                s.fooled_defended += int((before_def & ~ok_def[alive]).sum())
                s.fooled_undefended += int((before_undef & ~ok_undef[alive]).sum())
            defended.append(ok_def)
            undefended.append(ok_undef)
            advance(b)
        advance(0, cascade_line(stages, defended), milestone=True)
    return CascadeOutcome(
        order=list(order),
        clean=np.concatenate(clean),
        clean_rev=np.concatenate(clean_rev),
        defended=np.concatenate(defended),
        undefended=np.concatenate(undefended),
        stages=stages,
        randomized=randomised,
    )


def cascade_line(stages: dict[str, StageOutcome], defended: list[np.ndarray]) -> str:
    """``cascade: pgd10 ran on 64, fooled 40; bpda-pgd10 ran on 24, fooled 3; worst case 32.8%``."""
    parts = [f"{name} ran on {s.ran_on}, fooled {s.fooled_defended}" for name, s in stages.items()]
    worst = 100 * float(np.concatenate(defended).mean()) if defended else float("nan")
    return f"cascade: {'; '.join(parts)}; worst case {worst:.1f}%"
