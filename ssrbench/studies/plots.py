"""Figures from a leaderboard (matplotlib, extra ``plot``): robustness read as curves, not single points.

eps      accuracy against the attack's eps: Clean, Adv, Adv+Rev (a randomised defense: every draw), with
         95% Wilson bands, one panel per (task, mode)
reverse  the reverse attack's gain on attacked images and its cost on clean ones against its own eps
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

from ..extras import require
from ..fileio import atomic_write
from ..leaderboard.schema import Leaderboard

KINDS = ("eps", "reverse", "pareto", "roc")


class MissingCellsError(ValueError):
    """The leaderboard lacks what the figure needs (the message says what)."""


def _base(name: str) -> str:
    return name.split("@", 1)[0]


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


def _defended(c):
    return c.randomized.all_draws if c.randomized is not None else c.adv_rev


def _eps(board: Leaderboard, plt):
    groups: dict[tuple, list] = {}
    for c in board.cells:
        if c.threat is not None and not c.threat.probe:
            groups.setdefault((c.task.name, c.mode, _base(c.attack.name)), []).append(c)
    groups = {k: v for k, v in groups.items() if len({c.threat.eps for c in v}) > 1}
    if not groups:
        raise MissingCellsError("kind eps needs one attack at two or more eps (run with --attack-eps ...)")
    fig, axes = plt.subplots(1, len(groups), figsize=(4.5 * len(groups), 3.8), squeeze=False)
    for ax, ((task, mode, attack), cells) in zip(axes[0], sorted(groups.items())):
        x = [255 * c.threat.eps for c in cells]
        ax.axhline(cells[0].clean.percent, color="grey", ls=":", label="Clean")
        _band(ax, x, [c.adv for c in cells], f"Adv ({attack})")
        _band(ax, x, [_defended(c) for c in cells], "Adv+Rev", "--")
        ax.set(title=f"{task} · {mode}", xlabel="attack ε (/255)", ylabel="accuracy (%)", ylim=(0, 100))
        ax.legend(fontsize=8)
    return fig


def _reverse(board: Leaderboard, plt):
    groups: dict[tuple, list] = {}
    for c in board.cells:
        groups.setdefault((_base(c.task.name), c.mode, c.attack.name), []).append(c)
    groups = {k: v for k, v in groups.items() if len({c.reverse["eps"] for c in v}) > 1}
    if not groups:
        raise MissingCellsError("kind reverse needs a task at two or more reverse eps (run with --reverse-eps ...)")
    fig, ax = plt.subplots(figsize=(6.5, 4.2))
    for (task, mode, attack), cells in sorted(groups.items()):
        cells = sorted(cells, key=lambda c: c.reverse["eps"])
        x = [255 * c.reverse["eps"] for c in cells]
        line, = ax.plot(x, [_defended(c).percent - c.adv.percent for c in cells], marker="o",
                        label=f"{task} · {mode} · {attack}: gain on attacked")
        ax.plot(x, [c.clean_rev.percent - c.clean.percent for c in cells], ls=":", color=line.get_color(),
                label=f"{task} · {mode}: cost on clean")
    ax.axhline(0, color="grey", lw=0.8)
    ax.set(xlabel="reverse-attack ε (/255)", ylabel="accuracy change (points)")
    ax.legend(fontsize=7)
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
    ax.set(xlabel="clean accuracy (%): with the reverse attack; the base without",
           ylabel="worst-case accuracy over the attacks (%)")
    ax.legend(fontsize=8)
    return fig


def _roc(board: Leaderboard, plt):
    cells = [c for c in board.cells if c.pretext.per_image is not None and not (c.threat and c.threat.probe)]
    if not cells:
        raise MissingCellsError("kind roc needs per-image pretext values (leaderboards written by ssrbench with "
                                "schema 3 and later)")
    fig, ax = plt.subplots(figsize=(5.5, 5))
    for c in cells:
        sign = -1.0 if c.pretext.higher_is_better else 1.0
        neg, pos = sign * c.pretext.per_image.values("clean"), sign * c.pretext.per_image.values("adversarial")
        thr = np.unique(np.concatenate([neg, pos, [np.inf]]))[::-1]
        ax.plot([(neg >= t).mean() for t in thr], [(pos >= t).mean() for t in thr],
                label=f"{c.task.name} · {c.mode} · {c.attack.name}")
    ax.plot([0, 1], [0, 1], color="grey", ls=":", lw=0.8)
    ax.set(xlabel="false-positive rate (clean images flagged)", ylabel="true-positive rate (attacked images flagged)")
    ax.legend(fontsize=6)
    return fig


def plot(board: Leaderboard, source: Path, kind: str, out: Path) -> None:
    """Draw ``kind`` from ``board`` (read from ``source``) into ``out`` (.png or .svg)."""
    if out.suffix.lower() not in (".png", ".svg"):
        raise ValueError(f"--out {out}: write a .png or .svg file")
    plt = _pyplot()
    fig = {"eps": _eps, "reverse": _reverse, "pareto": _pareto, "roc": _roc}[kind](board, plt)
    digest = hashlib.sha256(source.read_bytes()).hexdigest()
    fig.text(0.01, 0.005, f"{source.name}: commit {(board.git_commit or 'unknown')[:7]}, preset {board.preset}, "
                          f"{board.dataset.eval_images} images, device {board.environment.device_name}",
             fontsize=7, color="dimgrey", va="bottom")
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
