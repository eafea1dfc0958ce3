"""Worst-case defended accuracy and the sanity checks that catch an evaluation flattering a defense.

The checks follow AutoAttack's spirit: they do not prove robustness, they flag the usual ways an
evaluation goes wrong -- masked gradients, attacks that get weaker with more budget, an unbounded
attack that does not win, an adaptive attack that does worse than a blind one.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from ..stats import mcnemar_exact
from .records import Accuracy, Cell, GatedDefense, VersusBase, WorstCase

BASE_MODE = "classifier-first"  # its classifier is the one trained alone: the static base of every mode

NEAR_ZERO = 10.0  # percent
ZERO_GRAD = 0.01  # fraction of images
SLACK = 1.0  # points of noise allowed before a monotonicity violation is reported


def _groups(cells: Iterable[Cell]) -> dict[tuple[str, str, int], list[Cell]]:
    """Cells by (task, mode, seed) -- one trained model each; a leaderboard may be passed for its cells."""
    groups: dict[tuple[str, str, int], list[Cell]] = {}
    for c in getattr(cells, "cells", cells):
        groups.setdefault((c.task.name, c.mode, c.seed), []).append(c)
    return groups


def _where(task: str, mode: str, seed: int, groups: dict) -> str:
    several = len({k[2] for k in groups}) > 1
    return f"{task}/{mode}" + (f"/seed {seed}" if several else "")


def _probe(c: Cell) -> bool:
    return c.threat is not None and c.threat.probe


def worst_case(cells: Iterable[Cell]) -> list[WorstCase]:
    """Per (task, mode), over every attack except sanity probes (declared in their threat model)."""
    out = []
    for (task, mode, seed), group in _groups(cells).items():
        real = [c for c in group if not _probe(c)] or group
        defended = np.logical_and.reduce([c.defended_flags() for c in real])  # (c) for a randomised defense
        undefended = np.logical_and.reduce([c.adv.flags() for c in real])
        out.append(WorstCase(task=task, mode=mode, seed=seed, attacks=[c.attack.name for c in real],
                             defended=Accuracy.from_flags(defended), undefended=Accuracy.from_flags(undefended)))
    return out


def versus_base(cells: Iterable[Cell]) -> list[VersusBase]:
    """Per (task, mode, seed) whose static base was evaluated under the same attacks on the same images."""
    groups = _groups(cells)
    out = []
    for (task, mode, seed), group in groups.items():
        base_group = groups.get((task, BASE_MODE, seed))
        if base_group is None:
            continue
        real = [c for c in group if not _probe(c)] or group
        # the base is attacked by the attacks that see it: the non-adaptive ones (an adaptive cell's Adv is
        # the classifier on images crafted against the defense, not against the classifier)
        seen = [c for c in base_group if not c.adaptive and not _probe(c)]
        if not seen or any(c.adv.n != real[0].adv.n for c in seen):
            continue
        defended = np.logical_and.reduce([c.defended_flags() for c in real])
        base = np.logical_and.reduce([c.adv.flags() for c in seen])
        _, _, p = mcnemar_exact(base, defended)
        d, b = Accuracy.from_flags(defended), Accuracy.from_flags(base)
        out.append(VersusBase(task=task, mode=mode, seed=seed, attacks=[c.attack.name for c in real],
                              base_attacks=[c.attack.name for c in seen], defended=d, base=b,
                              points=d.percent - b.percent, p_value=p))
    return out


def _robust(c: Cell) -> float:
    """What the attack is trying to lower: the defended accuracy for adaptive attacks, plain otherwise."""
    return c.adv_rev.percent if c.adaptive else c.adv.percent


def _stronger(strong: Cell, weak: Cell) -> bool:
    """Same attack kind and norm, at least the budget and steps, and not the same threat model."""
    s, w = strong.threat, weak.threat
    return (s is not None and w is not None and strong.attack.kind == weak.attack.kind and w.at_most(s)
            and (s.eps, s.steps) != (w.eps, w.steps))


def sanity_warnings(cells: Iterable[Cell]) -> list[str]:
    warnings = []
    groups = _groups(cells)
    for (task, mode, seed), group in groups.items():
        where = _where(task, mode, seed, groups)
        for c in group:
            if c.threat is None:
                warnings.append(f"{where}/{c.attack.name}: the attack declares no threat model; it is in the worst "
                                f"case but in no budget check")
            if c.zero_grad_fraction is not None and c.zero_grad_fraction > ZERO_GRAD:
                warnings.append(f"{where}/{c.attack.name}: {100 * c.zero_grad_fraction:.1f}% of images had a zero or "
                                f"non-finite input gradient (masked gradients?)")
            if _probe(c) and _robust(c) > NEAR_ZERO:
                warnings.append(f"{where}/{c.attack.name}: eps = {c.threat.eps * 255:.0f}/255 leaves {_robust(c):.1f}% "
                                f"accuracy; an attack this large should reach about 0% (broken attack or masked "
                                f"gradients)")
        for weak in group:
            for strong in group:
                if _stronger(strong, weak) and _robust(strong) > _robust(weak) + SLACK:
                    warnings.append(f"{where}: {strong.attack.name} (more eps/steps) leaves {_robust(strong):.1f}% but "
                                    f"{weak.attack.name} leaves {_robust(weak):.1f}%: accuracy should not rise with budget")
        blind = [c for c in group if not c.adaptive and not _probe(c) and c.threat is not None]
        for a in (c for c in group if c.adaptive and c.threat is not None):
            for b in blind:
                same_budget = (a.threat.norm, a.threat.eps) == (b.threat.norm, b.threat.eps)
                if same_budget and a.adv_rev.percent > b.adv_rev.percent + SLACK:
                    warnings.append(f"{where}: adaptive {a.attack.name} leaves {a.adv_rev.percent:.1f}% defended accuracy, "
                                    f"more than non-adaptive {b.attack.name} ({b.adv_rev.percent:.1f}%): the adaptive "
                                    f"attack is not working")
    return warnings


def gated_defense(cells: Iterable[Cell]) -> list[GatedDefense]:
    """Per (task, mode, seed) whose cells carry a gate and per-image pretext values."""
    out = []
    for (task, mode, seed), group in _groups(cells).items():
        real = [c for c in group if not _probe(c)] or group
        if any(c.gated_flags("clean") is None for c in real):
            continue
        fired, clean = real[0].gated_flags("clean")
        gated = np.logical_and.reduce([c.gated_flags("adversarial")[1] for c in real])
        ungated = np.logical_and.reduce([c.defended_flags() for c in real])
        out.append(GatedDefense(task=task, mode=mode, seed=seed, threshold=real[0].gate.threshold,
                                clean_flagged=100 * float(fired.mean()), clean=Accuracy.from_flags(clean),
                                clean_ungated=real[0].clean_rev, worst_case=Accuracy.from_flags(gated),
                                worst_case_ungated=Accuracy.from_flags(ungated), attacks=[c.attack.name for c in real]))
    return out
