"""Tasks side by side across leaderboards: clean cost, Adv+Rev gain and worst case, on the same images.

Leaderboards of different tasks are often run separately (other sizes, other attacks). Every number
here is recomputed from the stored per-image flags on the first N images that every file evaluated,
so rows are comparable; a worst case is given only over attacks every row has, or marked missing.
Files evaluated at different batch sizes are named in the caption: a reverse attack may depend on its
batch (the contrastive task takes its negatives from it), which the per-image flags cannot undo.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..core.plaintext import md
from ..core.stats import ALPHA, holm
from ..leaderboard.compare import Effect, paired_effect
from ..leaderboard.schema import Leaderboard

GAINS = ("fgsm", "pgd2")  # attack configs whose Adv+Rev gain is shown
ADAPTIVE = ("pgd10", "bpda-pgd10", "ssl-aware-pgd10")  # added to GAINS for the adaptive worst case


def _shown(effect: Effect | str) -> str:
    """A table entry: an effect in points, starred when significant after correction, or a dash."""
    if isinstance(effect, str):
        return effect
    return f"{effect.points:+.1f}{'*' if effect.significant else ''}"


def _batches(boards: list[tuple[str, Leaderboard]]) -> str:
    """The caption's sentence naming each file's evaluation batch, empty when they all agree."""
    by_batch: dict[str, list[str]] = {}
    for name, board in boards:
        batch = (board.config.get("preset") or {}).get("eval_batch_size", "unrecorded")
        by_batch.setdefault(md(batch), []).append(f"`{md(name)}`")
    if len(by_batch) < 2:
        return ""
    return (
        " Evaluation batches differ: "
        + "; ".join(f"{b} images ({', '.join(n)})" for b, n in by_batch.items())
        + " -- a reverse attack that depends on its batch (contrastive: negatives from the batch) is compared "
        "at different batches."
    )


def markdown(boards: list[tuple[str, Leaderboard]]) -> str:
    if not boards:
        raise ValueError("name at least one leaderboard")
    n = min(b.dataset.eval_images for _, b in boards)
    found: dict[tuple[str, str], dict] = {}  # (task config, mode) -> attack -> (cell, file), first file wins
    for name, board in boards:
        for c in board.cells:
            if c.seed == board.seed:
                found.setdefault((c.task.name, c.mode), {}).setdefault(c.attack.name, (c, name))
    rows = []
    for (task, mode), by_attack in found.items():
        any_cell = next(iter(by_attack.values()))[0]
        clean, clean_rev = any_cell.clean.flags()[:n], any_cell.clean_rev.flags()[:n]
        gains = [
            paired_effect(by_attack[a][0].adv.flags()[:n], by_attack[a][0].adv_rev.flags()[:n])
            if a in by_attack
            else "—"
            for a in GAINS
        ]

        def worst(attacks):
            if not all(a in by_attack for a in attacks):
                return None
            return float(np.logical_and.reduce([by_attack[a][0].defended_flags()[:n] for a in attacks]).mean() * 100)

        common, adaptive = worst(GAINS), worst(GAINS + ADAPTIVE)
        used = [by_attack[a] for a in GAINS + ADAPTIVE if a in by_attack]
        files = sorted({f for _, f in used})
        same = len({c.weights_sha256 for c, _ in used}) == 1
        rows.append(
            (
                (adaptive if adaptive is not None else -1.0, common or 0.0),
                [
                    task,
                    mode,
                    f"{100 * clean.mean():.1f}",
                    paired_effect(clean, clean_rev),
                    *gains,
                    "—" if common is None else f"{common:.1f}",
                    "—" if adaptive is None else f"{adaptive:.1f}",
                    ", ".join(f"`{f}`" for f in files) + ("" if same else " †"),
                ],
            )
        )
    rows.sort(key=lambda r: (-r[0][0], -r[0][1]))
    effects = [e for _, r in rows for e in r if isinstance(e, Effect)]
    adjusted = iter(holm([e.p_value for e in effects]))
    rows = [
        (key, [replace(e, p_adjusted=next(adjusted)) if isinstance(e, Effect) else e for e in r]) for key, r in rows
    ]
    head = (
        "task",
        "mode",
        "Clean",
        "clean cost",
        *(f"{a} gain" for a in GAINS),
        f"worst case: {', '.join(GAINS)}",
        f"worst case: + {', '.join(ADAPTIVE)}",
        "from",
    )
    lines = ["| " + " | ".join(head) + " |", "|---|---|" + "---:|" * (len(head) - 3) + "---|"]
    lines += ["| " + " | ".join(md(_shown(e)) for e in r) + " |" for _, r in rows]  # names from the files, as text
    lines += [
        "",
        f"On the first {n} test images, the images every file evaluated; accuracy %. Clean cost = Clean+Rev "
        f"− Clean, gain = Adv+Rev − Adv, points, * = paired McNemar p < {ALPHA:g}, Holm-adjusted over the table's "
        f"{len(effects)} effects. Worst case = defended "
        f"accuracy when an image must survive every listed attack (a randomised defense: every draw); — = "
        f"an attack not run for that row. Ranked by the adaptive worst case, then the other. † = the row's "
        f"cells come from different trainings of the same configuration (other weights)." + _batches(boards),
    ]
    return "\n".join(lines)
