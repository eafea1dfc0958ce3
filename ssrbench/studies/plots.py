"""Figures from a leaderboard (matplotlib, extra ``plot``): robustness read as curves, not single points.

eps      accuracy against the attack's eps: Clean, Adv, Adv+Rev of each attack (a randomised defense: every
         draw) and their worst case, with 95% Wilson bands, one panel per (task config, mode)
reverse  the reverse attack's gain on attacked images and its cost on clean ones against its own eps,
         one panel per task
pareto   clean accuracy of the defended model against its worst case, one point per (task config,
         mode), with the Pareto front
roc      the per-image pretext metric as a detector of attacked images, one curve per cell

Every figure names its leaderboard, commit, preset and image count in a caption, and carries the
leaderboard file's SHA-256 in its metadata, so a figure can be traced to (and checked against) its file.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from ..core.extras import require
from ..core.fileio import atomic_write, read_regular_file
from ..leaderboard.schema import Leaderboard
from .curves import MissingCellsError, eps_groups, eps_series, reverse_gain, reverse_groups, select, series_order

KINDS = ("eps", "reverse", "pareto", "roc")


def _pyplot():
    matplotlib = require("plot", "ssrbench plot")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _band(ax, x, accs, label, style="-"):
    order = np.argsort(x)
    x = np.asarray(x)[order]
    accs = [accs[i] for i in order]
    ax.plot(x, [a.percent for a in accs], style, marker="o", label=label)
    ax.fill_between(x, [a.ci95[0] for a in accs], [a.ci95[1] for a in accs], alpha=0.15)


def _grid(plt, n: int, width: float = 4.8, height: float = 3.8):
    cols = min(2, n)
    rows = -(-n // cols)
    fig, axes = plt.subplots(rows, cols, figsize=(width * cols, height * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes.flat


def _eps(board: Leaderboard, plt):
    groups = eps_groups(board)
    fig, axes = _grid(plt, len(groups))
    for ax, ((task, mode), cells) in zip(axes, groups.items()):
        ax.axhline(cells[0].clean.percent, color="grey", ls=":", label="Clean")
        ax.axhline(cells[0].clean_rev.percent, color="grey", ls="-.", lw=0.8, label="Clean+Rev")
        series = eps_series(cells)
        for name, (x, accs) in sorted(series.items(), key=lambda kv: series_order(kv[0])):
            _band(ax, x, accs, name, "-" if name.startswith("Adv (") else ("-." if name == "worst case" else "--"))
        ticks = sorted({x for xs, _ in series.values() for x in xs})
        if ticks[0] > 0 and ticks[-1] / ticks[0] >= 8:  # budgets that double: equal steps on a log axis
            ax.set_xscale("log", base=2)
            ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.set(title=f"{task} · {mode}", xlabel="attack ε (/255)", ylabel="accuracy (%)", ylim=(0, 100))
        ax.legend(fontsize=7)
    return fig


def _reverse(board: Leaderboard, plt):
    groups = reverse_groups(board)
    tasks = sorted({task for task, _, _ in groups})
    # one panel per task, and one legend beside them (the same lines, in the same colours, in every panel)
    fig, axes = plt.subplots(
        1,
        len(tasks) + 1,
        figsize=(5.0 * len(tasks) + 4.2, 4.6),
        squeeze=False,
        gridspec_kw={"width_ratios": [5.0] * len(tasks) + [4.2]},
    )
    for ax, task in zip(axes[0], tasks):
        costs = set()
        for (t, mode, attack), cells in groups.items():
            if t != task:
                continue
            gains = [(255 * c.reverse.eps, reverse_gain(board, c)) for c in cells]
            ax.plot(
                [x for x, g in gains if g is not None],
                [g for _, g in gains if g is not None],
                marker="o",
                label=f"{mode} · {attack}: gain on attacked",
            )
            if mode not in costs:  # the clean cost is the same for every attack of a (task, mode)
                costs.add(mode)
                ax.plot(
                    [255 * c.reverse.eps for c in cells],
                    [c.clean_rev.percent - c.clean.percent for c in cells],
                    ls=":",
                    marker=".",
                    color="black" if mode == "multitask" else "dimgrey",
                    label=f"{mode}: cost on clean",
                )
        ax.axhline(0, color="grey", lw=0.8)
        ax.set(title=task, xlabel="reverse-attack ε (/255)", ylabel="accuracy change (points)")
    legend = axes[0][-1]
    legend.axis("off")
    legend.legend(*axes[0][0].get_legend_handles_labels(), loc="center left", fontsize=7, frameon=False)
    return fig


def _pareto(board: Leaderboard, plt):
    clean = {(c.task.name, c.mode, c.seed): c.clean_rev.percent for c in board.cells}
    points = [(clean[(w.task, w.mode, w.seed)], w.defended.percent, f"{w.task} · {w.mode}") for w in board.worst_case]
    bases = {}  # the static base: the classifier trained alone, no reverse attack (one per seed)
    for v in board.versus_base:
        cell = next(c for c in board.cells if (c.task.name, c.mode, c.seed) == (v.task, "classifier-first", v.seed))
        bases[v.seed] = (cell.clean.percent, v.base.percent, "static base (no reverse attack)")
    points += list(bases.values())
    if len(points) < 2:
        raise MissingCellsError("kind pareto needs two or more (task, mode) models")
    fig, ax = plt.subplots(figsize=(6, 4.5))
    for x, y, name in points:
        ax.scatter(x, y)
        ax.annotate(name, (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    front, best = [], -1.0
    for x, y, _ in sorted(points, key=lambda p: (-p[0], -p[1])):  # no other point is better on both axes
        if y > best:
            front.append((x, y))
            best = y
    ax.plot(*zip(*sorted(front)), color="black", lw=1, label="Pareto front")
    ax.margins(x=0.2, y=0.1)
    ax.set(
        xlabel="clean accuracy (%): with the reverse attack; the base without",
        ylabel="worst-case accuracy over the attacks (%)",
    )
    ax.legend(fontsize=8)
    return fig


def _roc(board: Leaderboard, plt):
    cells = [c for c in board.cells if c.pretext.per_image is not None and not (c.threat and c.threat.probe)]
    if not cells:
        raise MissingCellsError(
            "kind roc needs per-image pretext values (leaderboards written by ssrbench with schema 3 and later)"
        )
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for c in cells:
        sign = -1.0 if c.pretext.higher_is_better else 1.0
        neg, pos = sign * c.pretext.per_image.values("clean"), sign * c.pretext.per_image.values("adversarial")
        thr = np.unique(np.concatenate([neg, pos, [np.inf]]))[::-1]
        ax.plot(
            [(neg >= t).mean() for t in thr],
            [(pos >= t).mean() for t in thr],
            label=f"{c.task.name} · {c.mode} · {c.attack.name}",
        )
    ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=0.8)
    ax.set(xlabel="false-positive rate (clean images flagged)", ylabel="true-positive rate (attacked images flagged)")
    ax.legend(fontsize=6)
    return fig


def plot(
    board: Leaderboard,
    source: Path,
    kind: str,
    out: Path,
    *,
    tasks: list[str] | None = None,
    attacks: list[str] | None = None,
    digest: str | None = None,
) -> None:
    """Draw ``kind`` from ``board`` (read from ``source``; only the named task / attack configs when
    given) into ``out`` (.png or .svg). ``digest``: the SHA-256 of the bytes ``board`` was parsed from, so the
    figure names what it shows even if ``source`` changed since; by default ``source`` is read again."""
    if out.suffix.lower() not in (".png", ".svg"):
        raise ValueError(f"--out {out}: write a .png or .svg file")
    board = select(board, tasks, attacks)
    plt = _pyplot()
    fig = {"eps": _eps, "reverse": _reverse, "pareto": _pareto, "roc": _roc}[kind](board, plt)
    digest = digest or hashlib.sha256(read_regular_file(source)).hexdigest()
    fig.text(
        0.01,
        0.005,
        f"{source.name}: commit {(board.git_commit or 'unknown')[:7]}, preset {board.preset}, "
        f"{board.dataset.eval_images} images, device {board.environment.device_name}",
        fontsize=7,
        color="dimgrey",
        va="bottom",
    )
    fig.tight_layout(rect=(0, 0.04, 1, 1))
    meta = {"Title": f"ssrbench {kind}", "Description": f"{source.as_posix()} sha256={digest}"}
    fmt = out.suffix.lower().lstrip(".")
    atomic_write(out, lambda fh: fig.savefig(fh, format=fmt, metadata=meta, dpi=110))  # never half a figure
    plt.close(fig)


def source_of(figure: Path) -> tuple[str, str] | None:
    """(leaderboard path, sha256) recorded in a PNG figure's metadata, or None."""
    from PIL import Image

    text = Image.open(figure).text.get("Description", "")
    path, sep, digest = text.rpartition(" sha256=")
    return (path, digest) if sep else None
