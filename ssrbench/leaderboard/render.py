"""Leaderboards as rich tables: one table per training mode, a row per task x attack."""

from __future__ import annotations

import sys

from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from .schema import Accuracy, Cell, Leaderboard


def _acc(a: Accuracy) -> str:
    lo, hi = a.ci95
    return f"{a.percent:.2f}[dim]±{(hi - lo) / 2:.1f}[/dim]"


def _delta(after: Accuracy, before: Accuracy) -> str:
    d = after.percent - before.percent
    colour = "green" if d > 0 else "red" if d < 0 else "dim"
    return f"[{colour}]{d:+.2f}[/{colour}]"


def _pretext(c: Cell) -> str:
    p = c.pretext
    return f"{p.clean:.3g} → {p.adversarial:.3g} → {p.adversarial_reversed:.3g}"


def tables(board: Leaderboard) -> list[Table]:
    out = []
    for mode in dict.fromkeys(c.mode for c in board.cells):
        cells = [c for c in board.cells if c.mode == mode]
        n = cells[0].clean.n
        metrics = ", ".join(dict.fromkeys(f"{c.task.name}: {c.pretext.metric}" for c in cells))
        t = Table(title=f"{mode} · {cells[0].backbone} · {board.dataset.name} · preset {board.preset} · {n} images",
                  caption=f"accuracy % ± 95% interval half-width; Δ = effect of the reverse attack\n"
                          f"pretext = clean → adversarial → adversarial+rev ({metrics})")
        for col in ("task", "attack", "Clean", "Clean+Rev", "Δ", "Adv", "Adv+Rev", "Δ", "pretext"):
            t.add_column(col, justify="left" if col in ("task", "attack", "pretext") else "right", no_wrap=True)
        for c in cells:
            t.add_row(c.task.name, c.attack.name, _acc(c.clean), _acc(c.clean_rev), _delta(c.clean_rev, c.clean),
                      _acc(c.adv), _acc(c.adv_rev), _delta(c.adv_rev, c.adv), _pretext(c))
        out.append(t)
    return out


def wide_console() -> Console:
    """A terminal keeps its width; files and pipes get full rows instead of rich's 80 columns."""
    return Console(width=None if sys.stdout.isatty() else 160)


def render(board: Leaderboard, console: Console | None = None) -> None:
    console = console or wide_console()
    head = Text.assemble(
        ("ssrbench ", "bold"), f"{board.ssrbench_version}  commit {(board.git_commit or 'unknown')[:10]}"
        f"{' (dirty)' if board.git_dirty else ''}  created {board.created:%Y-%m-%d %H:%M}  "
        f"device {board.environment.device}  {board.seconds_total / 60:.1f} min",
    )
    console.print(Group(head, *tables(board)))
