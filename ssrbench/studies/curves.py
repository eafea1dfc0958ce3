"""Robustness as curves, in numbers: what `plot --kind eps` and `--kind reverse` draw, as Markdown tables.

eps      per (task config, mode) and attack eps: Adv of each attack that does not see the defense, Adv+Rev
         of each attack and, with two or more attacks, their worst case (per image, over the attacks)
reverse  per (task, mode, attack) and reverse eps: what the defense adds under the attack -- its defended
         accuracy against the undefended model's at that eps (the attacks that do not see the defense:
         an adaptive attack's own Adv is the bare classifier on images aimed at the defense) -- and its
         cost on clean images

Everything is read off the cells; ``select`` narrows a leaderboard to named task / attack configs (a
sweep point is named as the leaderboard names it, e.g. ``inpaint@rev=8/255``).
"""

from __future__ import annotations

import numpy as np

from ..core.plaintext import md
from ..core.stats import mcnemar_exact
from ..leaderboard.schema import Accuracy, Leaderboard
from ..run.sweep import label


class MissingCellsError(ValueError):
    """The leaderboard lacks what the figure or table needs (the message says what)."""


def defended(c) -> Accuracy:
    """Adv+Rev; for a randomised defense, correct in every draw."""
    return c.randomized.all_draws if c.randomized is not None else c.adv_rev


def select(board: Leaderboard, tasks: list[str] | None = None, attacks: list[str] | None = None) -> Leaderboard:
    """Only the cells of these task / attack config names; a name no cell has is an error listing the names
    there are."""
    cells = board.cells
    for what, wanted, name_of in (
        ("--tasks", tasks, lambda c: c.task.name),
        ("--attacks", attacks, lambda c: c.attack.name),
    ):
        if not wanted:
            continue
        have = sorted({name_of(c) for c in cells})
        missing = [w for w in wanted if w not in have]
        if missing:
            raise MissingCellsError(f"{what} {missing[0]}: no such cell; the leaderboard has {', '.join(have)}")
        cells = [c for c in cells if name_of(c) in wanted]
    return board.model_copy(update={"cells": cells})


def _measured(board: Leaderboard) -> list:
    return [c for c in board.cells if c.threat is not None and not c.threat.probe]


def eps_groups(board: Leaderboard) -> dict[tuple[str, str], list]:
    """(task config, mode) -> its cells, where some attack was run at two or more eps."""
    groups: dict[tuple[str, str], list] = {}
    for c in _measured(board):
        groups.setdefault((c.task.name, c.mode), []).append(c)
    groups = {
        k: v
        for k, v in sorted(groups.items(), key=lambda kv: _group_order(kv[1][0]))
        if len({c.threat.eps for c in v}) > 1
    }
    if not groups:
        raise MissingCellsError("kind eps needs one attack at two or more eps (run with --attack-eps ...)")
    return groups


def _group_order(cell) -> tuple:
    """Panels and rows in numeric order of a sweep's reverse budget (0, 4, 8, 16/255 -- not "16" before "4" as
    their names would sort), by task, then budget, then mode."""
    return cell.task.swept, cell.reverse.eps, cell.task.name, cell.mode


def undefended(group) -> Accuracy | None:
    """The model without its reverse attack, at one eps: per image, correct under every attack that does not
    see the defense (an adaptive attack's Adv is the bare classifier on images aimed at the defense, no
    baseline). None when every attack there is adaptive."""
    blind = [c.adv.flags() for c in group if not c.adaptive]
    return Accuracy.from_flags(np.logical_and.reduce(blind)) if blind else None


def worst(group) -> Accuracy:
    """The defended model at one eps: per image, defended against every attack there."""
    return Accuracy.from_flags(np.logical_and.reduce([c.defended_flags() for c in group]))


def series_order(name: str) -> tuple:
    """How the eps series are listed (table columns, plot legends): the undefended Adv curves first, then
    Adv+Rev of each attack, the worst case last."""
    return not name.startswith("Adv ("), name == "worst case", name


def eps_series(cells) -> dict[str, tuple[list[float], list[Accuracy]]]:
    """One (task, mode)'s curves: name -> (attack eps in /255, accuracies)."""
    by_eps: dict[float, list] = {}
    for c in cells:
        by_eps.setdefault(c.threat.eps, []).append(c)
    several = len({c.attack.swept for c in cells}) > 1
    series: dict[str, tuple[list[float], list[Accuracy]]] = {}

    def add(name: str, eps: float, acc: Accuracy) -> None:
        xs, accs = series.setdefault(name, ([], []))
        xs.append(255 * eps)
        accs.append(acc)

    for eps, group in sorted(by_eps.items()):
        for c in sorted(group, key=lambda c: c.attack.name):
            if not c.adaptive:  # an adaptive attack's Adv is the classifier on images aimed at the defense
                add(f"Adv ({c.attack.swept})", eps, c.adv)
            add(f"Adv+Rev ({c.attack.swept})", eps, defended(c))
        if several:
            add("worst case", eps, worst(group))
    return series


def reverse_groups(board: Leaderboard) -> dict[tuple[str, str, str], list]:
    """(task, mode, attack config) -> its cells ordered by reverse eps, where two or more were run."""
    groups: dict[tuple[str, str, str], list] = {}
    for c in _measured(board):
        groups.setdefault((c.task.swept, c.mode, c.attack.name), []).append(c)
    order = lambda kv: (kv[0][0], kv[0][1], kv[1][0].attack.swept, kv[1][0].threat.eps, kv[0][2])  # noqa: E731 - ε as numbers
    groups = {
        k: sorted(v, key=lambda c: c.reverse.eps)
        for k, v in sorted(groups.items(), key=order)
        if len({c.reverse.eps for c in v}) > 1
    }
    if not groups:
        raise MissingCellsError("kind reverse needs a task at two or more reverse eps (run with --reverse-eps ...)")
    return groups


def _eps_table(board: Leaderboard) -> list[str]:
    groups = eps_groups(board)
    series = {k: eps_series(v) for k, v in groups.items()}
    names = sorted({n for s in series.values() for n in s}, key=series_order)
    lines = [
        "| task | mode | Clean | Clean+Rev | attack ε | "
        + " | ".join(map(md, names))
        + " | defended − undefended (p) |",
        "|---|---|---:|---:|---:|" + "---:|" * (len(names) + 1),
    ]
    for (task, mode), cells in groups.items():
        s = series[(task, mode)]
        for eps in sorted({x for xs, _ in s.values() for x in xs}):
            values = []
            for n in names:
                xs, accs = s.get(n, ([], []))
                values.append(f"{accs[xs.index(eps)].percent:.1f}" if eps in xs else "")
            group = [c for c in cells if 255 * c.threat.eps == eps]
            lines.append(
                f"| {md(task)} | {md(mode)} | {cells[0].clean.percent:.1f} | "
                f"{cells[0].clean_rev.percent:.1f} | {label(eps / 255)} | "
                + " | ".join(values)
                + f" | {_gain(group)} |"
            )
    return lines


def _gain(group) -> str:
    """The worst case over the attacks at one eps against the undefended model, with the exact McNemar p."""
    base = undefended(group)
    if base is None:
        return ""
    defended_acc = worst(group)
    _, _, p = mcnemar_exact(base.flags(), defended_acc.flags())
    return f"{defended_acc.percent - base.percent:+.1f} ({p:.2g})"


def _reverse_table(board: Leaderboard) -> list[str]:
    groups = reverse_groups(board)
    revs = sorted({c.reverse.eps for v in groups.values() for c in v})
    lines = [
        "| task | mode | change in accuracy (points) | " + " | ".join(f"rev ε {label(r)}" for r in revs) + " |",
        "|---|---|---|" + "---:|" * len(revs),
    ]
    costs_done = set()
    for (task, mode, attack), cells in groups.items():
        at = {c.reverse.eps: c for c in cells}
        if (task, mode) not in costs_done:
            costs_done.add((task, mode))
            lines.append(
                f"| {md(task)} | {md(mode)} | Clean+Rev − Clean (cost on clean) | "
                + " | ".join(f"{at[r].clean_rev.percent - at[r].clean.percent:+.1f}" if r in at else "" for r in revs)
                + " |"
            )
        lines.append(
            f"| {md(task)} | {md(mode)} | defended − undefended under {md(attack)} | "
            + " | ".join(_points(board, at[r]) if r in at else "" for r in revs)
            + " |"
        )
    return lines


def _points(board: Leaderboard, cell) -> str:
    gain = reverse_gain(board, cell)
    return "" if gain is None else f"{gain:+.1f}"


def reverse_gain(board: Leaderboard, cell) -> float | None:
    """Points the defense adds under ``cell``'s attack: its defended accuracy against the undefended model's
    at the same eps (the attacks there that do not see the defense); None without such an attack."""
    group = [
        c
        for c in _measured(board)
        if (c.task.name, c.mode, c.seed) == (cell.task.name, cell.mode, cell.seed) and c.threat.eps == cell.threat.eps
    ]
    base = undefended(group)
    return None if base is None else defended(cell).percent - base.percent


def markdown(board: Leaderboard, source: str, tasks: list[str] | None = None, attacks: list[str] | None = None) -> str:
    """The eps table and the reverse table of ``board`` (whichever its cells support), in Markdown."""
    board = select(board, tasks, attacks)
    parts = []
    for title, table in (
        ("Accuracy (%) against the attack's ε", _eps_table),
        ("The reverse attack's effect against its own ε", _reverse_table),
    ):
        try:
            parts.append([f"**{title}**", "", *table(board)])
        except MissingCellsError:
            continue
    if not parts:
        raise MissingCellsError(
            f"{source}: no attack at two or more eps and no task at two or more reverse eps "
            f"(run with --attack-eps / --reverse-eps)"
        )
    n = board.cells[0].clean.n
    head = (
        f"`{md(source)}`: {n} images, device {md(board.environment.device_name)}, preset {md(board.preset)}; "
        f"worst case = an image counts only if defended against every attack at that ε."
    )
    return "\n\n".join([head, *("\n".join(p) for p in parts)])
