"""Leaderboards and comparisons as rich tables, Markdown or JSON.

Every string of a leaderboard is printed as text (``ssrbench.core.plaintext``): a rich table's cells, titles and
captions are ``Text``, never markup; a Markdown cell is escaped; control characters are shown, not sent.
"""

from __future__ import annotations

import json
import sys

import numpy as np
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from ..core.budget import format_budget
from ..core.plaintext import md, printable, text
from .compare import ALPHA, METRICS, CellComparison, Effect, effect_key, reverse_effects
from .records import seeded
from .schema import Accuracy, Cell, Leaderboard
from .seeds import Spread

COLUMNS = ("task", "attack", "Clean", "Clean+Rev", "Δ", "Adv", "Adv+Rev", "Δ", "pretext")


def wide_console() -> Console:
    """A terminal keeps its width; files and pipes get full rows instead of rich's 80 columns."""
    return Console(width=None if sys.stdout.isatty() else 160)


def _acc(a: Accuracy) -> str:
    lo, hi = a.ci95
    return f"{a.percent:.2f}±{(hi - lo) / 2:.1f}"


def _delta(effects: dict[tuple, Effect], c: Cell, clean: bool) -> tuple[float, bool]:
    effect = effects[effect_key(c, clean)]
    return effect.points, effect.significant


def _pretext(c: Cell) -> str:
    p = c.pretext
    return f"{p.clean:.3g} → {p.adversarial:.3g} → {p.adversarial_reversed:.3g}"


def _aggregated(board: Leaderboard, per_seed: bool) -> bool:
    return len(board.seeds) > 1 and not per_seed


def _spread(s: Spread) -> str:
    return f"{s.mean:.2f}±{s.sd:.2f} [{s.ci95[0]:.1f}, {s.ci95[1]:.1f}]"


def _rows(board: Leaderboard, mode: str, per_seed: bool, effects: dict[tuple, Effect] | None) -> list[tuple]:
    """``effects``: the file's reverse effects (``reverse_effects``, one family), computed once per render;
    None when the view is aggregated over seeds."""
    rows = []
    if _aggregated(board, per_seed):
        pretexts = {}
        for c in board.cells:
            pretexts.setdefault((c.task.name, c.attack.name, c.mode), []).append(c.pretext)
        for a in (a for a in board.aggregates if a.mode == mode):
            m = a.metrics
            ps = pretexts[(a.task, a.attack, a.mode)]
            pre = " → ".join(
                f"{sum(getattr(p, f) for p in ps) / len(ps):.3g}"
                for f in ("clean", "adversarial", "adversarial_reversed")
            )
            rows.append(
                (
                    a.task,
                    a.attack,
                    _spread(m["clean"]),
                    _spread(m["clean_rev"]),
                    (m["clean_effect"].mean, m["clean_effect"].excludes_zero),
                    _spread(m["adv"]),
                    _spread(m["adv_rev"]),
                    (m["adv_effect"].mean, m["adv_effect"].excludes_zero),
                    pre,
                )
            )
        return rows
    several = len(board.seeds) > 1
    for c in (c for c in board.cells if c.mode == mode):
        attack = seeded(c.attack.name, c.seed, several)
        rows.append(
            (
                c.task.name,
                attack,
                _acc(c.clean),
                _acc(c.clean_rev),
                _delta(effects, c, True),
                _acc(c.adv),
                _acc(c.adv_rev),
                _delta(effects, c, False),
                _pretext(c),
            )
        )
    return rows


def _title(board: Leaderboard, mode: str) -> str:
    cell = next(c for c in board.cells if c.mode == mode)
    seeds = f" · seeds {','.join(map(str, board.seeds))}" if len(board.seeds) > 1 else ""
    return f"{mode} · {cell.backbone} · {board.dataset.name} · preset {board.preset} · {cell.clean.n} images{seeds}"


def _caption(board: Leaderboard, mode: str, per_seed: bool, effects: dict[tuple, Effect] | None) -> str:
    metrics = ", ".join(dict.fromkeys(f"{c.task.name}: {c.pretext.metric}" for c in board.cells if c.mode == mode))
    if _aggregated(board, per_seed):
        return (
            f"accuracy % as mean±sd across {len(board.seeds)} training seeds [95% interval: bootstrap over seeds, "
            f"then images]; Δ = mean effect of the reverse attack, * = its interval excludes 0\npretext = mean "
            f"over seeds of clean → adversarial → adversarial+rev ({metrics}); --per-seed shows each seed"
        )
    n_tests = len(effects)
    return (
        f"accuracy % ± 95% interval half-width; Δ = effect of the reverse attack, * = significant (paired "
        f"McNemar, Holm-adjusted over the file's {n_tests} effects, p < {ALPHA})\npretext = clean → adversarial → "
        f"adversarial+rev ({metrics})"
    )


def _modes(board: Leaderboard) -> list[str]:
    return list(dict.fromkeys(c.mode for c in board.cells))


def _effects(board: Leaderboard, per_seed: bool) -> dict[tuple, Effect] | None:
    """The file's reverse effects, Holm-corrected as one family (every effect of the file, not only one mode's);
    None for the view aggregated over seeds, which reads the aggregates instead."""
    return None if _aggregated(board, per_seed) else reverse_effects(board.cells)


def _table(title: str, caption: str) -> Table:
    """A table whose title and caption (made of the file's names) are shown as text, never read as markup."""
    return Table(title=text(title), caption=text(caption, keep="\n"))


def _add_row(t: Table, cells) -> None:
    t.add_row(*[c if isinstance(c, Text) else text(c, keep="\n") for c in cells])


def tables(board: Leaderboard, per_seed: bool = False) -> list[Table]:
    out = []
    effects = _effects(board, per_seed)
    for mode in _modes(board):
        t = _table(_title(board, mode), _caption(board, mode, per_seed, effects))
        for col in COLUMNS:
            t.add_column(col, justify="left" if col in ("task", "attack", "pretext") else "right", no_wrap=True)
        for r in _rows(board, mode, per_seed, effects):
            cells = list(r)
            for i in (4, 7):
                d, sig = cells[i]
                colour = "dim" if not sig else "green" if d > 0 else "red"
                cells[i] = Text(f"{d:+.2f}{'*' if sig else ''}", style=colour)
            _add_row(t, cells)
        out.append(t)
    return out


def _versus(v) -> str:
    if v is None:
        return "—"
    sig = "*" if v.verdict != "no significant difference" else ""
    one = f"(b) {v.points_one_draw:+.2f}, " if v.randomized else ""
    return f"{one}{v.points:+.2f}{sig} (Holm p={v.p_adjusted:.2g})"


def ranking(board: Leaderboard, per_seed: bool = False) -> list[tuple[str, ...]]:
    """Rows (task, mode, defended worst case, undefended worst case, versus the static base, attacks),
    ranked by the defended worst case's gain over the static base (then by the defended worst case);
    over several seeds, mean ± sd across them (``per_seed``: a row per seed)."""
    base = {(v.task, v.mode, v.seed): v for v in board.versus_base}
    if _aggregated(board, per_seed):
        groups: dict[tuple[str, str], list] = {}
        for w in board.worst_case:
            groups.setdefault((w.task, w.mode), []).append(w)
        stats = []

        def sd(v: np.ndarray) -> float:
            return float(v.std(ddof=1)) if len(v) > 1 else 0.0

        for (task, mode), ws in groups.items():
            d = np.array([w.defended.percent for w in ws])
            u = np.array([w.undefended.percent for w in ws])
            vs = [base.get((w.task, w.mode, w.seed)) for w in ws]
            pts = np.array([v.points for v in vs if v is not None])
            versus = f"{pts.mean():+.2f}±{sd(pts):.2f}" if len(pts) == len(ws) else "—"
            key = (float(pts.mean()) if len(pts) == len(ws) else float("-inf"), float(d.mean()))
            stats.append(
                (
                    key,
                    (
                        task,
                        f"{mode} ({len(ws)} seeds)",
                        f"{d.mean():.2f}±{sd(d):.2f}",
                        f"{u.mean():.2f}±{sd(u):.2f}",
                        versus,
                        ", ".join(ws[0].attacks),
                    ),
                )
            )
        return [row for _, row in sorted(stats, key=lambda t: (-t[0][0], -t[0][1]))]

    def key(w):
        v = base.get((w.task, w.mode, w.seed))
        return (-(v.points if v is not None else float("-inf")), -w.defended.percent)

    several = len(board.seeds) > 1
    return [
        (
            w.task,
            seeded(w.mode, w.seed, several),
            _acc(w.defended),
            _acc(w.undefended),
            _versus(base.get((w.task, w.mode, w.seed))),
            ", ".join(w.attacks),
        )
        for w in sorted(board.worst_case, key=key)
    ]


RANK_COLUMNS = ("task", "mode", "worst case Adv+Rev", "worst case Adv", "vs static base", "over attacks")
RANK_CAPTION = (
    "per image: robust only if it survives every attack; vs static base = worst case Adv+Rev minus the "
    "classifier trained alone (classifier-first's, no reverse attack) attacked alike -- its own attacks, "
    "AutoAttack when run, the images crafted against its defended models -- same images; a randomised "
    "defense every draw (c), and one draw (b) beside it; * = two-sided verdict at Holm-adjusted McNemar "
    "p < 0.05 over the file's verdicts; ranked by it"
)


def _rank_caption(board: Leaderboard, per_seed: bool) -> str:
    return RANK_CAPTION + ("; over seeds: mean ± sd of each seed's worst case" if _aggregated(board, per_seed) else "")


RANDOM_COLUMNS = (
    "task",
    "mode",
    "attack",
    "EOT",
    "(a) fixed draw",
    "(b) one draw",
    "(c) every draw",
    "(b) − (c)",
    "Clean+Rev (c)",
)
RANDOM_CAPTION = (
    "randomised defense, Adv+Rev three ways: (a) its randomness fixed and known to the attacker, "
    "(b) one fresh draw (the tables' Adv+Rev), (c) robust only if all {draws} fresh draws are correct "
    "-- the worst case reads (c); EOT = draws the adaptive attack averaged per step"
)


def randomized_rows(board: Leaderboard) -> list[tuple[str, ...]]:
    """One row per cell of a randomised defense (none when every defense is deterministic)."""
    rows = []
    for c in board.cells:
        r = c.randomized
        if r is None:
            continue
        spread = c.adv_rev.percent - r.all_draws.percent
        rows.append(
            (
                c.task.name,
                seeded(c.mode, c.seed, len(board.seeds) > 1),
                c.attack.name,
                str(r.eot_samples) if r.eot_samples else "—",
                _acc(r.fixed_draw),
                _acc(c.adv_rev),
                _acc(r.all_draws),
                f"{spread:+.2f}",
                _acc(r.clean_all_draws),
            )
        )
    return rows


DETECT_COLUMNS = ("task", "mode", "attack", "score", "AUROC", "TPR at 5% FPR")
DETECT_CAPTION = (
    "the per-image pretext metric as a detector of attacked images (clean vs attacked, same images): "
    "AUROC 0.5 = blind, 1 = perfect; TPR = attacked images flagged at the threshold that flags 5% of "
    "clean ones; [95% paired bootstrap interval]"
)


def detection_rows(board: Leaderboard) -> list[tuple[str, ...]]:
    several = len(board.seeds) > 1
    return [
        (
            d.task,
            seeded(d.mode, d.seed, several),
            d.attack,
            d.score,
            f"{d.auroc:.3f} [{d.auroc_ci95[0]:.3f}, {d.auroc_ci95[1]:.3f}]",
            f"{100 * d.tpr_at_5fpr:.1f}% [{100 * d.tpr_ci95[0]:.1f}, {100 * d.tpr_ci95[1]:.1f}]",
        )
        for d in board.detection
    ]


GATE_COLUMNS = (
    "task",
    "mode",
    "threshold",
    "clean reversed",
    "Clean+Rev gated",
    "ungated",
    "worst case gated",
    "ungated",
    "over attacks",
)
GATE_CAPTION = (
    "the detection-gated reverse attack: only images whose pretext score exceeds a threshold fixed at 5% "
    "false positives on clean training images are reversed; clean reversed = % of clean test images the "
    "gate fires on; worst case = an image must survive every attack, each evaluated against both"
)


def gated_rows(board: Leaderboard) -> list[tuple[str, ...]]:
    several = len(board.seeds) > 1
    never = "gate cannot fire"
    return [
        (
            g.task,
            seeded(g.mode, g.seed, several),
            f"{g.threshold:.4g}",
            f"{g.clean_flagged:.1f}%",
            _acc(g.clean) if g.can_fire else never,
            _acc(g.clean_ungated),
            _acc(g.worst_case) if g.can_fire else never,
            _acc(g.worst_case_ungated),
            ", ".join(g.attacks),
        )
        for g in board.gated
    ]


COST_COLUMNS = ("task", "mode", "reverse attack", "passes / image", "ms / image", "device")
COST_CAPTION = (
    "what each defense costs per defended image, measured in the run: backbone passes (forward and "
    "backward) of one reverse attack -- steps x views -- and its wall-clock milliseconds"
)


def cost_rows(board: Leaderboard) -> list[tuple[str, ...]]:
    """One row per defense (task config, mode): every cell of it carries the same measurement."""
    rows = {}
    for c in board.cells:
        if c.cost is not None and (c.task.name, c.mode) not in rows:
            r = c.reverse
            rows[(c.task.name, c.mode)] = (
                c.task.name,
                c.mode,
                f"{r.steps} x {format_budget(r.eps)}",
                f"{c.cost.passes_per_image:.0f}",
                f"{1000 * c.cost.seconds_per_image:.1f}",
                board.environment.device_name or board.environment.device,
            )
    return list(rows.values())


def _random_caption(board: Leaderboard) -> str:
    draws = sorted({c.randomized.draws for c in board.cells if c.randomized is not None})
    return RANDOM_CAPTION.format(draws="/".join(map(str, draws)))


CASCADE_COLUMNS = ("task", "mode", "Clean", "Clean+Rev", "worst case", "undefended", "defended − undefended")
CASCADE_CAPTION = (
    "run --cascade: each attack on the images still robust, so these are the worst cases over every attack "
    "(defended: Adv+Rev; undefended: Adv), image for image the grid's; no attack saw every image, so no "
    "per-attack accuracy exists"
)
STAGE_COLUMNS = ("task", "mode", "#", "attack", "ran on", "fooled defended", "fooled undefended", "s")
STAGE_CAPTION = "the cascade's attacks in their order: images each ran on (those still robust) and fooled"


def cascade_rows(board: Leaderboard) -> list[tuple[str, ...]]:
    several = len(board.seeds) > 1
    return [
        (
            c.task.name,
            seeded(c.mode, c.seed, several),
            _acc(c.clean),
            _acc(c.clean_rev),
            _acc(c.defended),
            _acc(c.undefended),
            f"{c.defended.percent - c.undefended.percent:+.1f}",
        )
        for c in board.cascades
    ]


def stage_rows(board: Leaderboard) -> list[tuple[str, ...]]:
    several = len(board.seeds) > 1
    return [
        (
            c.task.name,
            seeded(c.mode, c.seed, several),
            str(i),
            s.attack.name,
            f"{s.ran_on} of {c.clean.n}",
            str(s.fooled_defended),
            str(s.fooled_undefended),
            f"{s.seconds:.1f}",
        )
        for c in board.cascades
        for i, s in enumerate(c.stages, 1)
    ]


def _extra_tables(board: Leaderboard) -> list[tuple[str, tuple[str, ...], list, str, int]]:
    """(title, columns, rows, caption, how many leading columns are text) of each table after the worst
    case that this leaderboard has rows for -- one list for the terminal and for Markdown."""
    tables = [
        ("cascade worst case", CASCADE_COLUMNS, cascade_rows(board), lambda b: CASCADE_CAPTION, 2),
        ("cascade attacks", STAGE_COLUMNS, stage_rows(board), lambda b: STAGE_CAPTION, 4),
        ("randomised defense", RANDOM_COLUMNS, randomized_rows(board), _random_caption, 3),
        ("detection", DETECT_COLUMNS, detection_rows(board), lambda b: DETECT_CAPTION, 4),
        ("gated defense", GATE_COLUMNS, gated_rows(board), lambda b: GATE_CAPTION, 2),
        ("cost", COST_COLUMNS, cost_rows(board), lambda b: COST_CAPTION, 3),
    ]
    return [(title, cols, rows, caption(board), left) for title, cols, rows, caption, left in tables if rows]


def header(board: Leaderboard) -> str:
    return (
        f"ssrbench {board.ssrbench_version}  commit {(board.git_commit or 'unknown')[:10]}"
        f"{' (dirty)' if board.git_dirty else ''}  created {board.created:%Y-%m-%d %H:%M}  "
        f"device {board.environment.device_name or board.environment.device}  {board.seconds_total / 60:.1f} min"
    )


def render(board: Leaderboard, console: Console | None = None, per_seed: bool = False) -> None:
    console = console or wide_console()
    parts = [text(header(board), style="bold"), *tables(board, per_seed)]
    if board.worst_case:
        t = _table("worst case over attacks", _rank_caption(board, per_seed))
        for col in RANK_COLUMNS:
            t.add_column(col, justify="right" if "worst" in col or "base" in col else "left")
        for r in ranking(board, per_seed):
            _add_row(t, r)
        parts.append(t)
    for title, columns, rows, caption, left in _extra_tables(board):
        t = _table(title, caption)
        for i, col in enumerate(columns):
            t.add_column(col, justify="left" if i < left else "right")
        for r in rows:
            _add_row(t, r)
        parts.append(t)
    parts += [text(f"sanity check: {w}", style="yellow", keep="\n\t") for w in board.warnings]
    parts += [text(f"note: {n}", keep="\n\t") for n in board.notes]
    console.print(Group(*parts))


def _md_row(cells) -> str:
    return "| " + " | ".join(md(c) for c in cells) + " |"


def markdown(board: Leaderboard, per_seed: bool = False) -> str:
    # the header is an HTML comment: a "-->" in a file's string must not end it
    lines = [f"<!-- {printable(header(board)).replace('-->', '-- >')} -->", ""]
    effects = _effects(board, per_seed)
    for mode in _modes(board):
        lines += [
            f"**{md(_title(board, mode))}**",
            "",
            "| " + " | ".join(COLUMNS) + " |",
            "|" + "|".join(["---"] * 2 + ["---:"] * 6 + ["---"]) + "|",
        ]
        for r in _rows(board, mode, per_seed, effects):
            cells = list(r)
            for i in (4, 7):
                d, sig = cells[i]
                cells[i] = f"{d:+.2f}{'*' if sig else ''}"
            lines.append(_md_row(cells))
        lines += ["", md(_caption(board, mode, per_seed, effects).replace("\n", "; ")), ""]
    if board.worst_case:
        lines += [
            "**worst case over attacks**",
            "",
            "| " + " | ".join(RANK_COLUMNS) + " |",
            "|---|---|---:|---:|---:|---|",
        ]
        lines += [_md_row(r) for r in ranking(board, per_seed)]
        lines += ["", _rank_caption(board, per_seed), ""]
    for title, columns, rows, caption, left in _extra_tables(board):
        lines += [
            f"**{title}**",
            "",
            "| " + " | ".join(columns) + " |",
            "|" + "---|" * left + "---:|" * (len(columns) - left),
        ]
        lines += [_md_row(r) for r in rows]
        lines += ["", md(caption), ""]
    lines += [f"> sanity check: {md(w)}" for w in board.warnings]
    lines += [f"> note: {md(n)}" for n in board.notes]  # what the run adjusted or how it ran (e.g. resumed)
    return "\n".join(lines)


# -- comparisons ------------------------------------------------------------------------------------


WEIGHTS_NOTE = {
    "differ": "models retrained: weights differ",
    "unknown": "weights unknown (a file without weight hashes)",
}


def _tests_used(result: list[CellComparison]) -> str:
    return "; ".join(dict.fromkeys(ch.test for r in result for ch in r.changes))


def comparison_rows(result: list[CellComparison]) -> list[dict]:
    rows = []
    for r in result:
        task, attack, mode, backbone, dataset, preset = r.key
        row = {
            "task": task,
            "attack": attack,
            "mode": mode,
            "backbone": backbone,
            "dataset": dataset,
            "preset": preset,
            "status": r.status,
            "reasons": r.reasons,
            "weights": r.weights,
        }
        if r.weights in WEIGHTS_NOTE:
            row["reasons"] = [*r.reasons, WEIGHTS_NOTE[r.weights]]
        for ch in r.changes:
            row[ch.metric] = {
                "old": ch.old,
                "new": ch.new,
                "delta": ch.delta,
                "lost": ch.lost,
                "gained": ch.gained,
                "p_value": ch.p_value,
                "p_adjusted": ch.p_adjusted,
                "verdict": ch.verdict,
                "test": ch.test,
            }
        rows.append(row)
    return rows


def _change_text(row: dict, metric: str, rich: bool) -> str | Text:
    """A metric's change: Markdown (``rich=False``) or a coloured rich ``Text``."""
    if metric not in row:
        return ""
    m = row[metric]
    holm = f", Holm p={m['p_adjusted']:.2g}" if m.get("p_adjusted") is not None else ""
    change = f"{m['old']:.2f} → {m['new']:.2f} ({m['delta']:+.2f}, p={m['p_value']:.2g}{holm})"
    if not rich:
        return change if m["verdict"] == "unchanged" else f"**{m['verdict']}** {change}"
    colour = {"better": "green", "worse": "red"}.get(m["verdict"], "dim")
    return Text.assemble((printable(m["verdict"]), colour), " " + change)


def render_comparison(
    result: list[CellComparison], fmt: str, console: Console | None = None, threshold: float = 1.0, alpha: float = ALPHA
) -> str | None:
    rows = comparison_rows(result)
    if fmt == "json":
        return json.dumps(rows, indent=1)
    header_cols = ["task", "attack", "mode", "status", *METRICS]
    if fmt == "markdown":
        lines = ["| " + " | ".join(header_cols) + " |", "|" + "---|" * len(header_cols)]
        for r in rows:
            status = r["status"] + (f" ({'; '.join(r['reasons'])})" if r["reasons"] else "")
            lines.append(
                _md_row([r["task"], r["attack"], r["mode"], status, *[_change_text(r, m, False) for m in METRICS]])
            )
        return "\n".join([*lines, "", f"tests: {md(_tests_used(result))}"])
    judged = {(ch.threshold, ch.alpha) for r in result for ch in r.changes} or {(threshold, alpha)}
    rule = "; ".join(f"|Δ| ≥ {t:g} points and Holm-adjusted p < {a:g}" for t, a in sorted(judged))
    t = _table("comparison (old → new)", f"a change counts only when {rule}\ntests: {_tests_used(result)}")
    for col in header_cols:
        t.add_column(col)
    for r in rows:
        status = r["status"] + (f"\n{'; '.join(r['reasons'])}" if r["reasons"] else "")
        _add_row(t, [r["task"], r["attack"], r["mode"], status, *[_change_text(r, m, True) for m in METRICS]])
    (console or wide_console()).print(t)
    return None
