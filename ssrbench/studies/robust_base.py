"""Does the reverse attack beat its robust base? (Croce et al. 2022's question for test-time defenses.)

Per (task, mode): the defended worst case over every attack (an image counts only if it survives all
of them) against the static base -- the classifier trained alone, undefended, under the attacks that
see it -- on the same images, with the exact McNemar p-value. The answer is read off the leaderboard's
``versus_base`` view; nothing here recomputes it.
"""

from __future__ import annotations

from ..leaderboard.schema import Leaderboard

ALPHA = 0.05


def answer(points: float, p_value: float) -> str:
    """The verdict of one (task, mode), in words."""
    if p_value >= ALPHA:
        return "no significant difference from its base"
    return "**yes**, beats its base" if points > 0 else "**no**, worse than its base"


def markdown(board: Leaderboard, source: str) -> str:
    rows = board.versus_base
    if not rows:
        raise ValueError(f"{source}: no (task, mode) has a static base to compare with; run both modes "
                         f"(classifier-first trains the base) on the same images")
    adaptive = sorted({c.attack.name for c in board.cells if c.adaptive})
    n_images = rows[0].defended.n
    lines = [f"`{source}`: {n_images} images, device {board.environment.device_name}, preset {board.preset}. "
             f"Static base = the classifier trained alone (classifier-first's), undefended, under the attacks that "
             f"see it; defended = the worst case of the reverse attack's output over every attack, adaptive ones "
             f"({', '.join(adaptive) or 'none'}) included; both per image on the same images, McNemar p.", "",
             "| task | mode | static base | defended worst case | difference | p | the reverse attack beats its base? |",
             "|---|---|---:|---:|---:|---:|---|"]
    for r in rows:
        lines.append(f"| {r.task} | {r.mode} | {r.base.percent:.1f}% | {r.defended.percent:.1f}% | {r.points:+.1f} | "
                     f"{r.p_value:.2g} | {answer(r.points, r.p_value)} |")
    wins = sum(r.points > 0 and r.p_value < ALPHA for r in rows)
    losses = sum(r.points < 0 and r.p_value < ALPHA for r in rows)
    lines += ["", f"In {wins} of {len(rows)} (task, mode) pairs the defended worst case is significantly above the "
                  f"static base, in {losses} significantly below (p < {ALPHA:g})."]
    if not adaptive:
        lines.append("No attack saw the defense: these defended numbers are upper bounds, not a worst case.")
    return "\n".join(lines)
