"""Worst-case defended accuracy and the sanity checks that catch an evaluation flattering a defense.

The checks follow AutoAttack's spirit: they do not prove robustness, they flag the usual ways an
evaluation goes wrong -- masked gradients, attacks that get weaker with more budget, an unbounded
attack that does not win, an adaptive attack that does worse than a blind one.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from ..core.budget import format_budget
from ..core.stats import ALPHA, holm, mcnemar_exact
from .records import Accuracy, BaseSource, Cell, GatedDefense, VersusBase, WorstCase, seeded

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


def _defended(group: list[Cell], every_draw: bool = True) -> np.ndarray:
    """Per image, robust under the defense against every attack of ``group`` -- the base's own images
    (``transfer.from_base``) included: (c) every draw correct, or (b) one draw (``every_draw=False``)."""
    flags = []
    for c in group:
        flags.append(c.defended_flags() if every_draw else c.adv_rev.flags())
        t = c.transfer
        if t is not None and t.from_base is not None:
            flags.append((t.from_base_all_draws or t.from_base).flags() if every_draw else t.from_base.flags())
    return np.logical_and.reduce(flags)


def worst_case(cells: Iterable[Cell]) -> list[WorstCase]:
    """Per (task, mode), over every attack except sanity probes (declared in their threat model)."""
    out = []
    for (task, mode, seed), group in _groups(cells).items():
        real = [c for c in group if not _probe(c)] or group
        undefended = np.logical_and.reduce([c.adv.flags() for c in real])
        out.append(
            WorstCase(
                task=task,
                mode=mode,
                seed=seed,
                attacks=[c.attack.name for c in real],
                defended=Accuracy.from_flags(_defended(real)),
                undefended=Accuracy.from_flags(undefended),
            )
        )
    return out


def _base_sources(cells: list[Cell], n: int) -> list[tuple[str, list[str], list[np.ndarray]]]:
    """The static base's attacks of one seed, by source: (source, attack names, per-image flags). The base
    is classifier-first's classifier: its non-adaptive cells attack it directly (AutoAttack apart), its
    adaptive cells' Adv and every other mode's ``transfer.to_base`` are images crafted against a defended
    model built on it, evaluated on it."""
    base_sha = {c.base_weights_sha256 for c in cells if c.base_weights_sha256 is not None}
    if len(base_sha) > 1:
        odd = next(c for c in cells if c.base_weights_sha256 not in (None, sorted(base_sha)[0]))
        raise ValueError(
            f"{seeded(f'{odd.task.name}/{odd.mode}/{odd.attack.name}', odd.seed)} is judged against another "
            f"static base (weights {odd.base_weights_sha256[:12]}) than the other cells of its seed: "
            f"transfer between different bases is meaningless; merge only parts with the same base"
        )
    sources: dict[str, tuple[list[str], list[np.ndarray]]] = {
        "attacks": ([], []),
        "autoattack": ([], []),
        "transfer": ([], []),
    }
    for c in cells:
        if _probe(c):
            continue
        if c.mode == BASE_MODE:
            source = "transfer" if c.adaptive else "autoattack" if c.attack.kind == "autoattack" else "attacks"
            name = f"{c.task.name}/{c.mode}/{c.attack.name}" if c.adaptive else c.attack.name
            flags = c.adv.flags()
        elif c.transfer is not None:
            source, name, flags = "transfer", f"{c.task.name}/{c.mode}/{c.attack.name}", c.transfer.to_base.flags()
        else:
            continue
        if len(flags) != n:
            raise ValueError(
                f"{seeded(f'{c.task.name}/{c.mode}/{c.attack.name}', c.seed)} holds {len(flags)} images, its "
                f"static base {n}: transfer between different image sets is meaningless"
            )
        names, all_flags = sources[source]
        if name not in names:  # every classifier-first task attacks the same base with the same stream
            names.append(name)
        all_flags.append(flags)
    return [(k, names, flags) for k, (names, flags) in sources.items() if flags]


def _p_decides(defended_all: Accuracy, defended_one: Accuracy, base: Accuracy, p_all: float, p_one: float) -> float:
    """The p of the test that can decide a two-sided verdict: (c) when even it is above the base, (b) when
    even it is below (both cannot hold: (c) <= (b) image by image), else 1 (nothing to reject)."""
    if defended_all.correct > base.correct:
        return p_all
    if defended_one.correct < base.correct:
        return p_one
    return 1.0


def verdict(points_all: float, points_one: float, p_adjusted: float, alpha: float) -> str:
    """One predicate for every reader: beats its base only if even (c) is significantly above it, worse
    only if even (b) is significantly below, after the correction for the file's number of verdicts."""
    if p_adjusted < alpha and points_all > 0:
        return "beats its base"
    if p_adjusted < alpha and points_one < 0:
        return "worse than its base"
    return "no significant difference"


def versus_base(cells: Iterable[Cell], alpha: float = ALPHA) -> list[VersusBase]:
    """Per (task, mode, seed) whose static base was evaluated on the same images (see ``VersusBase``)."""
    all_cells = list(getattr(cells, "cells", cells))
    groups = _groups(all_cells)
    rows = []
    for (task, mode, seed), group in groups.items():
        of_seed = [c for c in all_cells if c.seed == seed]
        if not any(c.mode == BASE_MODE for c in of_seed):
            continue
        real = [c for c in group if not _probe(c)] or group
        n = real[0].adv.n
        by_source = _base_sources(of_seed, n)
        if not any(kind != "transfer" for kind, _, _ in by_source):
            continue  # the base was never attacked itself
        per_source = [np.logical_and.reduce(f) for _, _, f in by_source]
        base = np.logical_and.reduce(per_source)
        sources = []
        for i, (kind, names, _) in enumerate(by_source):
            others = np.logical_and.reduce([f for j, f in enumerate(per_source) if j != i] or [np.ones(n, bool)])
            sources.append(
                BaseSource(
                    source=kind,
                    attacks=names,
                    accuracy=Accuracy.from_flags(per_source[i]),
                    decided=int((~per_source[i] & others).sum()),
                )
            )
        every, one = _defended(real), _defended(real, every_draw=False)
        _, _, p_all = mcnemar_exact(base, every)
        _, _, p_one = mcnemar_exact(base, one)
        d, d1, b = Accuracy.from_flags(every), Accuracy.from_flags(one), Accuracy.from_flags(base)
        rows.append(
            dict(
                task=task,
                mode=mode,
                seed=seed,
                attacks=[c.attack.name for c in real],
                base_attacks=[name for _, names, _ in by_source for name in names],
                base_sources=sources,
                defended=d,
                defended_one_draw=d1,
                base=b,
                points=d.percent - b.percent,
                points_one_draw=d1.percent - b.percent,
                p_value=p_all,
                p_one_draw=p_one,
                randomized=any(c.randomized is not None for c in real),
                decides=_p_decides(d, d1, b, p_all, p_one),
            )
        )
    adjusted = holm([r.pop("decides") for r in rows])
    return [
        VersusBase(**r, p_adjusted=p, alpha=alpha, verdict=verdict(r["points"], r["points_one_draw"], p, alpha))
        for r, p in zip(rows, adjusted)
    ]


def _robust(c: Cell) -> float:
    """What the attack is trying to lower: the defended accuracy for adaptive attacks, plain otherwise."""
    return c.adv_rev.percent if c.adaptive else c.adv.percent


def _stronger(strong: Cell, weak: Cell) -> bool:
    """Same attack kind and norm, at least the budget and steps, and not the same threat model."""
    s, w = strong.threat, weak.threat
    return (
        s is not None
        and w is not None
        and strong.attack.kind == weak.attack.kind
        and w.at_most(s)
        and (s.eps, s.steps) != (w.eps, w.steps)
    )


def sanity_warnings(cells: Iterable[Cell]) -> list[str]:
    warnings = []
    groups = _groups(cells)
    for (task, mode, seed), group in groups.items():
        where = _where(task, mode, seed, groups)
        for c in group:
            if c.threat is None:
                warnings.append(
                    f"{where}/{c.attack.name}: the attack declares no threat model; it is in the worst "
                    f"case but in no budget check"
                )
            if c.zero_grad_fraction is not None and c.zero_grad_fraction > ZERO_GRAD:
                warnings.append(
                    f"{where}/{c.attack.name}: {100 * c.zero_grad_fraction:.1f}% of images had a zero or "
                    f"non-finite input gradient (masked gradients?)"
                )
            if _probe(c) and _robust(c) > NEAR_ZERO:
                warnings.append(
                    f"{where}/{c.attack.name}: eps = {format_budget(c.threat.eps)} leaves {_robust(c):.1f}% "
                    f"accuracy; an attack this large should reach about 0% (broken attack or masked "
                    f"gradients)"
                )
        for weak in group:
            for strong in group:
                if _stronger(strong, weak) and _robust(strong) > _robust(weak) + SLACK:
                    warnings.append(
                        f"{where}: {strong.attack.name} (more eps/steps) leaves {_robust(strong):.1f}% but "
                        f"{weak.attack.name} leaves {_robust(weak):.1f}%: accuracy should not rise with budget"
                    )
        if (
            any(c.attack.kind == "detector-aware" for c in group)
            and all(c.gated_flags("clean") is not None for c in group)
            and not gate_can_fire(group)
        ):
            warnings.append(
                f"{where}: the detection gate (threshold {group[0].gate.threshold:.4g}) cannot fire, so "
                f"the detector-aware attack's constraint is vacuous: read it as an adaptive attack on the "
                f"ungated defense; no gated number is reported"
            )
        blind = [c for c in group if not c.adaptive and not _probe(c) and c.threat is not None]
        for a in (c for c in group if c.adaptive and c.threat is not None):
            for b in blind:
                same_budget = (a.threat.norm, a.threat.eps) == (b.threat.norm, b.threat.eps)
                if same_budget and a.adv_rev.percent > b.adv_rev.percent + SLACK:
                    warnings.append(
                        f"{where}: adaptive {a.attack.name} leaves {a.adv_rev.percent:.1f}% defended accuracy, "
                        f"more than non-adaptive {b.attack.name} ({b.adv_rev.percent:.1f}%): the adaptive "
                        f"attack is not working"
                    )
    return warnings


def gate_can_fire(group: list[Cell]) -> bool:
    """Whether a group's detection gate can fire: it flagged some calibration image, or -- in files that do
    not record that -- some evaluated image, clean or attacked. A gate that cannot fire leaves every image to
    the bare classifier: no gated or detector-aware number means anything then."""
    gate = group[0].gate
    if gate is not None and gate.calibration_flagged is not None:
        return gate.calibration_flagged > 0
    return any(c.gated_flags(which)[0].any() for c in group for which in ("clean", "adversarial"))


def gated_defense(cells: Iterable[Cell]) -> list[GatedDefense]:
    """Per (task, mode, seed) whose cells carry a gate and per-image pretext values."""
    out = []
    for (task, mode, seed), group in _groups(cells).items():
        real = [c for c in group if not _probe(c)] or group
        if any(c.gated_flags("clean") is None for c in real):
            continue
        fired, clean = real[0].gated_flags("clean")
        ungated = _defended(real)
        fires = gate_can_fire(group)
        gated = np.logical_and.reduce([c.gated_flags("adversarial")[1] for c in real]) if fires else None
        out.append(
            GatedDefense(
                task=task,
                mode=mode,
                seed=seed,
                threshold=real[0].gate.threshold,
                can_fire=fires,
                clean_flagged=100 * float(fired.mean()),
                clean=Accuracy.from_flags(clean) if fires else None,
                clean_ungated=real[0].clean_rev,
                worst_case=Accuracy.from_flags(gated) if fires else None,
                worst_case_ungated=Accuracy.from_flags(ungated),
                attacks=[c.attack.name for c in real],
            )
        )
    return out
