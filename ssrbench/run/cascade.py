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
import warnings
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import torch
from torch import nn

from ..adversarial.base import Attack
from ..core.budget import ReverseConfig
from ..core.linf import drawn_as_batch
from ..core.progress import Reporter
from ..data.datasets import pixels
from ..defense.reverse import Defense
from ..leaderboard.records import AttackSplit
from ..models.environment import exact_fp32
from ..models.ssr_model import SSRModel
from ..pretext.base import PretextTask
from .evaluate import (
    KeptBatches,
    Streams,
    _all_draws,
    _amount,
    _check_array,
    _correct,
    _pinned,
    kept_done,
    restore_kept,
)
from .memory import AttackMemory

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
    splits: dict[str, AttackSplit] = field(default_factory=dict)  # attacks whose calls were split to fit in memory
    resumed_after: int = 0  # images taken from kept batches of an earlier, interrupted process


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
    memory: AttackMemory | None = None,
    kept: KeptBatches | None = None,
) -> CascadeOutcome:
    """``evaluate``'s worst case, by cascade: the same streams (an attack's, its reverse attack's, its redraws',
    the base's), so each image meets the attack it meets in the grid; ``memory`` and ``kept`` as ``evaluate``'s (a
    killed cascade continues after its last finished batch, with the numbers of an uninterrupted one)."""
    if model.training:
        raise RuntimeError("evaluate_cascade() needs the model in eval mode")
    with exact_fp32():
        return _cascade(model, task, attacks, order, reverse, x_all, y_all, batch_size, seed, reporter, description,
                        gate, base, memory if memory is not None else AttackMemory(), kept)  # fmt: skip


def _cascade(model, task, attacks, order, reverse, x_all, y_all, batch_size, seed, reporter, description, gate, base,
             memory, kept):  # fmt: skip
    dev = next(model.parameters()).device
    x_all = _pinned(x_all, dev)
    defense = Defense(model, task, reverse, gate=gate)
    randomised = defense.randomized
    blind = {name for name, a in attacks.items() if not a.adaptive} if base is not None else set()
    st = Streams.seeded(seed, attacks, blind, dev, randomised=randomised)
    stages = {name: StageOutcome() for name in order}
    clean, clean_rev, defended, undefended = [], [], [], []
    lists = {"clean": clean, "clean_rev": clean_rev, "defended": defended, "undefended": undefended}
    streams = st.by_name()
    n, start = len(x_all), 0
    if kept is not None and (saved := kept.load()) is not None:
        try:
            start = _check_kept(saved, n, batch_size, streams, lists, order)
        except (KeyError, TypeError, AttributeError, ValueError, RuntimeError) as exc:  # checked before anything is set
            warnings.warn(
                f"{description}: its kept batches do not fit this cascade ({type(exc).__name__}: {str(exc)[:200]}); "
                f"evaluating from the first image",
                stacklevel=1,
            )
        else:
            restore_kept(saved, streams, lists)
            for name, kept_stage in saved["stages"].items():
                stages[name] = StageOutcome(**kept_stage)
            reporter.log(f"{description}: resumed after {start}/{n} images")
    with reporter.bar(description, n, unit="images", done=start) as advance:
        for i in range(start, n, batch_size):
            x = pixels(x_all[i : i + batch_size], dev)
            y = y_all[i : i + batch_size].to(dev)
            b = len(x)
            clean.append(_correct(model, x, y))
            clean_rev.append(_correct(model, defense.purify(x, st.reverse), y))  # one draw, as a cell's Clean+Rev
            ok_def, ok_undef = np.ones(b, dtype=bool), np.ones(b, dtype=bool)
            for name in order:
                attack, s = attacks[name], stages[name]
                alive = np.flatnonzero(ok_def | ok_undef)
                idle = not len(alive)
                if idle:  # nothing left to fool: one image, its result unused, so that this attack's streams
                    alive = np.zeros(1, dtype=np.int64)  # advance as for this batch and meet the next as the grid's
                t0 = time.perf_counter()
                index = torch.from_numpy(alive).to(dev)
                xs, ys = x[index], y[index]
                with drawn_as_batch(index, b):
                    x_adv = memory(name, attack, model, xs, ys, st.attack[name], defense)
                    adv = _correct(model, x_adv, ys)
                    held = _correct(model, defense.purify(x_adv, st.attack_reverse[name]), ys)
                    if randomised:
                        held = _all_draws(model, defense, x_adv, ys, held, st.attack_redraw[name])
                    if name in blind:  # the base's own images, defended: part of the grid's worst case too
                        x_base = memory(name, attack, base, xs, ys, st.base_attack[name], against="base")
                        from_base = _correct(model, defense.purify(x_base, st.from_base_reverse[name]), ys)
                        if randomised:
                            from_base = _all_draws(model, defense, x_base, ys, from_base, st.from_base_redraw[name])
                        held &= from_base
                s.seconds += time.perf_counter() - t0
                if idle:
                    continue
                s.ran_on += len(alive)
                before_def, before_undef = ok_def[alive].copy(), ok_undef[alive].copy()
                ok_def[alive] &= held
                ok_undef[alive] &= adv
                s.fooled_defended += int((before_def & ~ok_def[alive]).sum())
                s.fooled_undefended += int((before_undef & ~ok_undef[alive]).sum())
            defended.append(ok_def)
            undefended.append(ok_undef)
            if kept is not None:
                kept.save(
                    {
                        "done": i + b,
                        "streams": {k: g.get_state() for k, g in streams.items()},
                        "lists": {k: torch.from_numpy(np.concatenate(v)) for k, v in lists.items()},
                        "stages": {name: vars(stage).copy() for name, stage in stages.items()},
                    }
                )
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
        splits=dict(memory.splits),
        resumed_after=start,
    )


def _check_kept(
    saved: dict[str, Any],
    n: int,
    batch_size: int,
    streams: dict[str, torch.Generator],
    lists: dict[str, list],
    order: list[str],
) -> int:
    """The number of images a kept cascade finished, once every part of it is checked to fit this one (nothing is
    set here: a misfit leaves the cascade as it was)."""
    done = kept_done(saved, n, batch_size, streams, "cascade")
    if set(saved["lists"]) != set(lists) or list(saved["stages"]) != list(order):
        raise ValueError("its results are not this cascade's (other attacks, or another order)")
    for k in lists:
        _check_array(saved["lists"][k], done, torch.bool, k)
    for name, stage in saved["stages"].items():
        if set(stage) != {"ran_on", "fooled_defended", "fooled_undefended", "seconds"}:
            raise ValueError(f"{name}: its counts are not a stage's")
        counts = [stage["ran_on"], stage["fooled_defended"], stage["fooled_undefended"]]
        if not all(type(c) is int and c >= 0 for c in counts) or not _amount(stage["seconds"]):
            raise ValueError(f"{name}: its counts are not numbers")
    return done


def cascade_line(stages: dict[str, StageOutcome], defended: list[np.ndarray]) -> str:
    """``cascade: pgd10 ran on 64, fooled 40; bpda-pgd10 ran on 24, fooled 3; worst case 32.8%``."""
    parts = [f"{name} ran on {s.ran_on}, fooled {s.fooled_defended}" for name, s in stages.items()]
    worst = 100 * float(np.concatenate(defended).mean()) if defended else float("nan")
    return f"cascade: {'; '.join(parts)}; worst case {worst:.1f}%"
