"""Worst-case defended accuracy and the sanity checks that catch an evaluation flattering a defense.

The checks follow AutoAttack's spirit: they do not prove robustness, they flag the usual ways an
evaluation goes wrong -- masked gradients, attacks that get weaker with more budget, an unbounded
attack that does not win, an adaptive attack that does worse than a blind one.
"""

from __future__ import annotations

from typing import Iterable

import numpy as np

from .records import Accuracy, Cell, WorstCase

HUGE_EPS = 0.25  # an attack this large must drive accuracy near zero
NEAR_ZERO = 10.0  # percent
ZERO_GRAD = 0.01  # fraction of images
SLACK = 1.0  # points of noise allowed before a monotonicity violation is reported


def _groups(cells: Iterable[Cell]) -> dict[tuple[str, str], list[Cell]]:
    """Cells by (task, mode); a leaderboard may be passed for its cells."""
    groups: dict[tuple[str, str], list[Cell]] = {}
    for c in getattr(cells, "cells", cells):
        groups.setdefault((c.task.name, c.mode), []).append(c)
    return groups


def worst_case(cells: Iterable[Cell]) -> list[WorstCase]:
    """Per (task, mode), over every attack except sanity probes (eps >= HUGE_EPS, not a threat model)."""
    out = []
    for (task, mode), group in _groups(cells).items():
        real = [c for c in group if c.attack.params.get("eps", 0) < HUGE_EPS] or group
        defended = np.logical_and.reduce([c.adv_rev.flags() for c in real])
        undefended = np.logical_and.reduce([c.adv.flags() for c in real])
        out.append(WorstCase(task=task, mode=mode, attacks=[c.attack.name for c in real],
                             defended=Accuracy.from_flags(defended), undefended=Accuracy.from_flags(undefended)))
    return out


def _strength(c: Cell) -> tuple[float, float]:
    p = c.attack.params
    return (p.get("eps", 0.0), p.get("steps", 1))


def _robust(c: Cell) -> float:
    """What the attack is trying to lower: the defended accuracy for adaptive attacks, plain otherwise."""
    return c.adv_rev.percent if c.adaptive else c.adv.percent


def sanity_warnings(cells: Iterable[Cell]) -> list[str]:
    warnings = []
    for (task, mode), cells in _groups(cells).items():
        where = f"{task}/{mode}"
        for c in cells:
            if c.zero_grad_fraction is not None and c.zero_grad_fraction > ZERO_GRAD:
                warnings.append(f"{where}/{c.attack.name}: {100 * c.zero_grad_fraction:.1f}% of images had a zero or "
                                f"non-finite input gradient (masked gradients?)")
            eps = c.attack.params.get("eps", 0.0)
            if eps >= HUGE_EPS and _robust(c) > NEAR_ZERO:
                warnings.append(f"{where}/{c.attack.name}: eps = {eps * 255:.0f}/255 leaves {_robust(c):.1f}% accuracy; "
                                f"an attack this large should reach about 0% (broken attack or masked gradients)")
        for weak in cells:
            for strong in cells:
                if (weak is strong or weak.attack.kind != strong.attack.kind
                        or not all(s >= w for s, w in zip(_strength(strong), _strength(weak)))
                        or _strength(strong) == _strength(weak)):
                    continue
                if _robust(strong) > _robust(weak) + SLACK:
                    warnings.append(f"{where}: {strong.attack.name} (more eps/steps) leaves {_robust(strong):.1f}% but "
                                    f"{weak.attack.name} leaves {_robust(weak):.1f}%: accuracy should not rise with budget")
        blind = [c for c in cells if not c.adaptive and c.attack.params.get("eps", 0) < HUGE_EPS]
        for a in (c for c in cells if c.adaptive):
            for b in blind:
                if _strength(b)[0] == _strength(a)[0] and a.adv_rev.percent > b.adv_rev.percent + SLACK:
                    warnings.append(f"{where}: adaptive {a.attack.name} leaves {a.adv_rev.percent:.1f}% defended accuracy, "
                                    f"more than non-adaptive {b.attack.name} ({b.adv_rev.percent:.1f}%): the adaptive "
                                    f"attack is not working")
    return warnings
