"""Does the reverse attack beat its robust base? (Croce et al. 2022's question for test-time defenses.)

Per (task, mode, seed): the defended worst case over every attack (an image counts only if it survives all
of them) against the static base -- the classifier trained alone, undefended -- attacked alike: its own
attacks, the standard AutoAttack when run, and every image crafted against its defended models; a
randomised defense read with one draw (b) and with every draw (c); exact McNemar p-values, Holm-corrected
over every verdict of the file. The verdicts are the leaderboard's ``versus_base`` view (recomputed at
another ``alpha``); nothing here judges anything of its own.
"""

from __future__ import annotations

import numpy as np

from ..core.plaintext import md
from ..core.stats import ALPHA
from ..leaderboard.records import VersusBase
from ..leaderboard.robustness import versus_base
from ..leaderboard.schema import Leaderboard

WORDS = {
    "beats its base": "**yes**, beats its base",
    "worse than its base": "**no**, worse than its base",
    "no significant difference": "no significant difference from its base",
}


def answer(row: VersusBase) -> str:
    """The verdict of one (task, mode, seed), in words."""
    return WORDS[row.verdict]


def _sources(row: VersusBase) -> str:
    return "; ".join(f"{s.source} {s.accuracy.percent:.1f}% ({s.decided} alone)" for s in row.base_sources)


def verdict_columns(several_seeds: bool) -> list[str]:
    return [
        "task",
        "mode",
        *(["seed"] if several_seeds else []),
        "static base",
        "base by source",
        "defended (b)",
        "defended (c)",
        "difference (b) / (c)",
        "p (b) / (c)",
        "Holm p",
        "the reverse attack beats its base?",
    ]


def verdict_row(r: VersusBase, several_seeds: bool) -> list[str]:
    """One verdict as the table shows it (Markdown emphasis in the answer): the docs' and the site's rows."""
    return [
        r.task,
        r.mode,
        *([str(r.seed)] if several_seeds else []),
        f"{r.base.percent:.1f}%",
        _sources(r),
        f"{r.defended_one_draw.percent:.1f}%",
        f"{r.defended.percent:.1f}%",
        f"{r.points_one_draw:+.1f} / {r.points:+.1f}",
        f"{r.p_one_draw:.2g} / {r.p_value:.2g}",
        f"{r.p_adjusted:.2g}",
        answer(r),
    ]


def markdown(board: Leaderboard, source: str, alpha: float = ALPHA) -> str:
    rows = versus_base(board.cells, alpha=alpha)
    if not rows:
        raise ValueError(
            f"{source}: no (task, mode) has a static base to compare with; run both modes "
            f"(classifier-first trains the base) on the same images"
        )
    adaptive = sorted({md(c.attack.name) for c in board.cells if c.adaptive})
    has_aa = any(s.source == "autoattack" for r in rows for s in r.base_sources)
    several = len({r.seed for r in rows}) > 1
    lines = [
        f"`{md(source)}`: {rows[0].defended.n} images, device {md(board.environment.device_name)}, "
        f"preset {md(board.preset)}"
        f"{f', seeds {sorted({r.seed for r in rows})}' if several else ''}. Static base = the classifier trained "
        f"alone (classifier-first's), undefended, per image over its own attacks"
        f"{', standard AutoAttack' if has_aa else ' (no AutoAttack in this run)'} and every image crafted "
        f'against its defended models (transfer; "alone" = images only that source fooled); defended = the '
        f"worst case of the reverse attack's output over every attack, adaptive ones "
        f"({', '.join(adaptive) or 'none'}) and the base's images included, with one draw (b) and every draw "
        f"(c) of a randomised defense. Paired McNemar p; the verdict's p Holm-adjusted over the file's "
        f"{len(rows)} verdicts: beats its base only if even (c) is above it, worse only if even (b) is below "
        f"(adjusted p < {alpha:g}).",
        "",
        "| " + " | ".join(verdict_columns(several)) + " |",
        "|---|---|" + ("---:|" if several else "") + "---:|---|---:|---:|---:|---:|---:|---|",
    ]
    lines += [
        "| " + " | ".join(md(x) if i < 2 else x for i, x in enumerate(verdict_row(r, several))) + " |" for r in rows
    ]
    wins = sum(r.verdict == "beats its base" for r in rows)
    losses = sum(r.verdict == "worse than its base" for r in rows)
    lines += [
        "",
        f"In {wins} of {len(rows)} verdicts the defense is significantly above its static base, in "
        f"{losses} significantly below (Holm-adjusted p < {alpha:g}).",
    ]
    if several:
        lines += ["", *_across_seeds(rows)]
    if not adaptive:
        lines.append("No attack saw the defense: these defended numbers are upper bounds, not a worst case.")
    return "\n".join(lines)


def _across_seeds(rows: list[VersusBase]) -> list[str]:
    """Per (task, mode): the spread of (c) minus base over seeds, and whether one verdict holds for all of them
    (only then is it the method's, not one trained model's)."""
    groups: dict[tuple[str, str], list[VersusBase]] = {}
    for r in rows:
        groups.setdefault((r.task, r.mode), []).append(r)
    out = [
        "| task | mode | seeds | difference (c), mean ± sd | verdicts | holds across seeds? |",
        "|---|---|---:|---:|---|---|",
    ]
    for (task, mode), rs in groups.items():
        pts = np.array([r.points for r in rs])
        sd = float(pts.std(ddof=1)) if len(pts) > 1 else 0.0
        verdicts = [r.verdict for r in rs]
        holds = (
            f"yes: {verdicts[0]}" if len(set(verdicts)) == 1 and len(rs) > 1 else "no" if len(rs) > 1 else "one seed"
        )
        out.append(
            f"| {md(task)} | {md(mode)} | {len(rs)} | {pts.mean():+.1f} ± {sd:.1f} | "
            f"{', '.join(f'{r.seed}: {r.verdict}' for r in rs)} | {holds} |"
        )
    return out
