"""The source report's Table I beside a leaderboard: cell by cell, paired tests, and its four findings.

The report's numbers are the only typed-in numbers here; everything else is read from the leaderboard,
so the docs section made from this cannot drift from the committed run.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..core.plaintext import md
from ..core.stats import mcnemar_exact
from ..leaderboard.compare import ALPHA  # one significance level for every paired test
from ..leaderboard.schema import Accuracy, Cell, Leaderboard
from .findings import FINDINGS, SMALL_GAIN, Estimate, judge

MATCH_POINTS = 5.0  # "matched" = within this many accuracy points of the report
COLUMNS = ("Clean", "Clean+Rev", "Adv", "Adv+Rev")


@dataclass(frozen=True)
class ReportRow:
    mode: str
    attack: str  # "fgsm" or "pgd2": what the report ran, matched by attack kind and steps, not config name
    label: str
    values: tuple[float, float, float, float]  # Clean, Clean+Rev, Adv, Adv+Rev (percent)

    @property
    def clean_effect(self) -> float:
        """The reverse attack's effect on clean images, Clean -> Clean+Rev, in points."""
        return self.values[1] - self.values[0]

    @property
    def adv_effect(self) -> float:
        """The reverse attack's effect on adversarial images, Adv -> Adv+Rev, in points."""
        return self.values[3] - self.values[2]


# Table I of the source report (inpainting, CIFAR-10)
TABLE_I = (
    ReportRow("multitask", "fgsm", "multitask, FGSM", (61.25, 44.32, 1.26, 12.61)),
    ReportRow("multitask", "pgd2", "multitask, PGD 2 iters", (61.25, 44.32, 0.02, 2.45)),
    ReportRow("classifier-first", "fgsm", "classifier-first, FGSM", (71.42, 55.13, 10.72, 17.35)),
)
TASK = "inpaint"  # the task kind; any named config of it (e.g. another reverse budget) qualifies


def report_row(mode: str, attack: str) -> ReportRow:
    """Table I's row for ``mode`` and ``attack``, so other code reads the report's numbers instead of retyping them."""
    return next(r for r in TABLE_I if r.mode == mode and r.attack == attack)


def _is(c: Cell, attack: str) -> bool:
    if attack == "fgsm":
        return c.attack.kind == "fgsm"
    return c.attack.kind == "pgd" and c.threat is not None and c.threat.steps == 2


def _accs(c: Cell) -> tuple[Accuracy, Accuracy, Accuracy, Accuracy]:
    return c.clean, c.clean_rev, c.adv, c.adv_rev


def _cell(board: Leaderboard, mode: str, attack: str) -> Cell | None:
    found = [c for c in board.cells if c.task.kind == TASK and c.mode == mode and _is(c, attack)]
    if len(found) > 1:
        raise ValueError(
            f"several {attack} cells for {mode} ({', '.join(c.attack.name for c in found)}): "
            "keep one per mode, e.g. with `ssrbench run --attacks`"
        )
    return found[0] if found else None


def _p(p: float) -> str:
    return f"{p:.2g}" if p >= 1e-4 else f"{p:.0e}"


def _paired(before: Accuracy, after: Accuracy) -> tuple[float, int, int, float]:
    lost, gained, p = mcnemar_exact(before.flags(), after.flags())
    return after.percent - before.percent, lost, gained, p


def cell_table(board: Leaderboard) -> list[str]:
    lines = ["| mode / attack | | " + " | ".join(COLUMNS) + " |", "|---|---|" + "---:|" * len(COLUMNS)]
    for row in TABLE_I:
        c = _cell(board, row.mode, row.attack)
        lines.append(f"| {row.label} | report | " + " | ".join(f"{v:.2f}" for v in row.values) + " |")
        if c is None:
            lines.append(f"| | ssrbench | {' | '.join(['not evaluated'] * 4)} |")
            continue
        ours = _accs(c)
        lines.append(
            "| | ssrbench | " + " | ".join(f"{a.percent:.2f} [{a.ci95[0]:.1f}, {a.ci95[1]:.1f}]" for a in ours) + " |"
        )
        diffs = [a.percent - v for a, v in zip(ours, row.values)]
        lines.append(
            "| | difference | " + " | ".join(f"{d:+.2f} {'✓' if abs(d) <= MATCH_POINTS else '✗'}" for d in diffs) + " |"
        )
    return lines


def effect_table(board: Leaderboard) -> list[str]:
    lines = [
        "| mode / attack | reverse attack on | report Δ | ssrbench Δ | lost / gained | p |",
        "|---|---|---:|---:|---:|---:|",
    ]
    for row in TABLE_I:
        c = _cell(board, row.mode, row.attack)
        if c is None:
            continue
        for what, (b, a), reported in (
            ("clean images", (c.clean, c.clean_rev), row.clean_effect),
            ("adversarial images", (c.adv, c.adv_rev), row.adv_effect),
        ):
            d, lost, gained, p = _paired(b, a)
            star = "*" if p < ALPHA else ""
            lines.append(f"| {row.label} | {what} | {reported:+.2f} | {d:+.2f}{star} | {lost} / {gained} | {_p(p)} |")
    return lines


def _verdict(ok: bool, partly: bool = False) -> str:
    return "**reproduces**" if ok else ("**partly reproduces**" if partly else "**does not reproduce**")


def _one_model(before: Accuracy, after: Accuracy) -> Estimate:
    """The effect ``before`` -> ``after`` on this model's images, with its exact paired test."""
    d, _, _, p = _paired(before, after)
    return Estimate(d, p=p)


def findings(board: Leaderboard) -> list[str]:
    """The report's four qualitative findings, each judged on this leaderboard with its numbers (``judge``: the
    same rule as across seeds)."""
    modes = [
        m for m in ("multitask", "classifier-first") if any(c.mode == m and c.task.kind == TASK for c in board.cells)
    ]
    out = []

    def line(key: str, evidence, parts, also=None, claim: str | None = None) -> str:
        f = FINDINGS[key]
        every, some = judge(f, evidence, also)
        return f"({key}) {claim or f.claim}: {_verdict(every, some)} — {'; '.join(parts)}."

    def shown(m: str, e: Estimate | None, extra: str = "") -> str:
        return f"{m} not evaluated" if e is None else f"{m} {e.value:+.2f} points (p = {_p(e.p)}){extra}"

    # (a) on clean images: any cell of the mode (they share the clean images and the defense)
    a = [_one_model(c.clean, c.clean_rev) for m in modes for c in [_first(board, m)]]
    out.append(line("a", a, [shown(m, e) for m, e in zip(modes, a)]))
    # (b) under FGSM
    fgsm = {m: _cell(board, m, "fgsm") for m in modes}
    b = [None if fgsm[m] is None else _one_model(fgsm[m].adv, fgsm[m].adv_rev) for m in modes]
    out.append(line("b", b, [shown(m, e) for m, e in zip(modes, b)]))
    # (c) under 2-step PGD: below SMALL_GAIN points and below the FGSM gain (the report's multitask numbers)
    pgd2 = {m: _cell(board, m, "pgd2") for m in modes}
    c = [None if pgd2[m] is None else _one_model(pgd2[m].adv, pgd2[m].adv_rev) for m in modes]
    below = [e is not None and (f is None or e.value < f.value) for e, f in zip(c, b)]
    parts = [shown(m, e, f" against {f.value:+.2f} under FGSM" if e and f else "") for m, e, f in zip(modes, c, b)]
    claim = (
        f"{FINDINGS['c'].claim} (below {SMALL_GAIN:g} points and below the FGSM gain, as the report's "
        f"{report_row('multitask', 'pgd2').adv_effect:+.2f} against {report_row('multitask', 'fgsm').adv_effect:+.2f})"
    )
    out.append(line("c", c, parts, below, claim))
    # (d) classifier-first against multitask on the same clean images (paired)
    mt, cf = _first(board, "multitask"), _first(board, "classifier-first")
    if mt is None or cf is None:
        out.append(f"(d) {FINDINGS['d'].claim}: not evaluated (needs both modes).")
    else:
        d = _one_model(mt.clean, cf.clean)
        every, _ = judge(FINDINGS["d"], [d])
        out.append(
            f"(d) {FINDINGS['d'].claim}: {_verdict(every)} — "
            f"{cf.clean.percent:.2f} vs {mt.clean.percent:.2f} ({d.value:+.2f} points, p = {_p(d.p)})."
        )
    return out


def _first(board: Leaderboard, mode: str) -> Cell | None:
    return next((c for c in board.cells if c.mode == mode and c.task.kind == TASK), None)


def matched_cells(board: Leaderboard) -> tuple[int, int]:
    """(cells within MATCH_POINTS of the report, cells compared)."""
    hits = total = 0
    for row in TABLE_I:
        c = _cell(board, row.mode, row.attack)
        if c is None:
            continue
        for a, v in zip(_accs(c), row.values):
            total += 1
            hits += abs(a.percent - v) <= MATCH_POINTS
    return hits, total


def markdown(board: Leaderboard, source: str) -> str:
    first = next((c for c in board.cells if c.task.kind == TASK), None)
    if first is None:
        raise ValueError(f"{source} has no cells of the {TASK!r} task: Table I is about inpainting")
    hits, total = matched_cells(board)
    head = (
        f"`{md(source)}` · {md(first.backbone)} · preset {md(board.preset)} · seed {board.seed} · "
        f"{first.clean.n} test images · commit `{md((board.git_commit or 'unknown')[:7])}`"
        f"{' (dirty)' if board.git_dirty else ''} · `{md(' '.join(board.command))}`"
    )
    parts = [
        head,
        "",
        f"Accuracy in %, ours with its 95% interval; difference = ours − report, ✓ within {MATCH_POINTS:g} points "
        f"({hits} of {total} cells).",
        "",
        *cell_table(board),
        "",
        "The reverse attack's own effect in each cell, paired on the same images (lost / gained = images it made "
        f"wrong / right; exact McNemar test, * = p < {ALPHA:g}). The report gives no per-image data, so its Δ has "
        "no test.",
        "",
        *effect_table(board),
        "",
        *[f"- {f}" for f in findings(board)],
    ]
    return "\n".join(parts)
