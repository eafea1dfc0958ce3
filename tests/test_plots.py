"""Figures from leaderboards: each kind draws from the cells it needs, refuses without them, names the
extra when matplotlib is missing, and records its leaderboard's hash; the README's figures match theirs."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from ssrbench.cli import cli
from ssrbench.leaderboard import store
from ssrbench.leaderboard.records import PerImage, SweepPoint
from ssrbench.studies.plots import source_of

from .conftest import consistent_pretext
from .helpers import FIXTURE


def _sweep_like(tmp_path):
    """The fixture's cells copied to two attack eps and two reverse eps, with per-image pretext values, as a
    sweep writes them (each point's coordinates on its components)."""
    board = store.load(FIXTURE)
    cells = []
    for c in board.cells:
        n = c.clean.n
        per = PerImage.from_arrays(np.linspace(0, 1, n), np.linspace(0.5, 1.5, n), np.linspace(0, 1, n))
        for eps in (2, 8):
            for rev in (0, 8):
                cells.append(
                    c.model_copy(
                        update={
                            "attack": c.attack.model_copy(
                                update={
                                    "name": f"{c.attack.name}@eps={eps}/255",
                                    "params": {**c.attack.params, "eps": eps / 255},
                                    "point": SweepPoint(of=c.attack.name, eps=eps / 255),
                                }
                            ),
                            "task": c.task.model_copy(
                                update={
                                    "name": f"{c.task.name}@rev={rev}/255",
                                    "point": SweepPoint(of=c.task.name, eps=rev / 255),
                                }
                            ),
                            "threat": c.threat.model_copy(update={"eps": eps / 255}),
                            "reverse": c.reverse.model_copy(update={"eps": rev / 255}),
                            "pretext": consistent_pretext(c.pretext, per),
                        }
                    )
                )
    path = tmp_path / "sweep.json"
    store.save(board.model_copy(update={"cells": cells}), path)
    return path


@pytest.mark.parametrize("kind", ["eps", "reverse", "pareto", "roc"])
def test_each_kind_draws_and_records_its_source(tmp_path, kind):
    path = _sweep_like(tmp_path)
    out = tmp_path / f"{kind}.png"
    res = CliRunner().invoke(cli, ["plot", str(path), "--kind", kind, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert source_of(out) == (path.as_posix(), hashlib.sha256(path.read_bytes()).hexdigest())
    svg = tmp_path / f"{kind}.svg"
    assert CliRunner().invoke(cli, ["plot", str(path), "--kind", kind, "--out", str(svg)]).exit_code == 0
    assert svg.read_text().lstrip().startswith("<?xml")


def test_missing_cells_and_a_missing_extra_are_exit_2(tmp_path, without_module):
    for kind, needs in (("eps", "--attack-eps"), ("reverse", "--reverse-eps"), ("roc", "per-image")):
        res = CliRunner().invoke(cli, ["plot", str(FIXTURE), "--kind", kind, "--out", str(tmp_path / "x.png")])
        assert res.exit_code == 2 and needs in res.output and not (tmp_path / "x.png").exists()
    bad = CliRunner().invoke(cli, ["plot", str(FIXTURE), "--kind", "pareto", "--out", str(tmp_path / "x.jpg")])
    assert bad.exit_code == 2 and ".png or .svg" in bad.output
    without_module("matplotlib")
    res = CliRunner().invoke(
        cli, ["plot", str(_sweep_like(tmp_path)), "--kind", "eps", "--out", str(tmp_path / "y.png")]
    )
    assert res.exit_code == 2 and "pip install 'ssrbench[plot]'" in res.output


def test_the_eps_curves_hold_the_worst_case_of_the_attacks_at_each_eps(tmp_path):
    from ssrbench.studies.curves import eps_series

    board = store.load(_sweep_like(tmp_path))
    task = board.cells[0].task.name
    cells = [c for c in board.cells if c.task.name == task and c.mode == board.cells[0].mode]
    series = eps_series(cells)
    attacks = sorted({c.attack.swept for c in cells})
    assert len(attacks) > 1 and set(series) >= {f"Adv+Rev ({a})" for a in attacks} | {"worst case"}
    xs, worst = series["worst case"]
    assert xs == [2.0, 8.0]
    for i, eps in enumerate(xs):
        at = [c for c in cells if round(255 * c.threat.eps) == eps]
        flags = np.logical_and.reduce([c.defended_flags() for c in at])
        assert worst[i].correct == int(flags.sum()) <= min(c.adv_rev.correct for c in at)


def test_plot_draws_only_the_named_configs_and_names_the_ones_it_lacks(tmp_path):
    path = _sweep_like(tmp_path)
    board = store.load(path)
    task = board.cells[0].task.name
    out = tmp_path / "one.png"
    res = CliRunner().invoke(cli, ["plot", str(path), "--kind", "eps", "--tasks", task, "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert out.exists()
    from ssrbench.studies.curves import select

    assert {c.task.name for c in select(board, [task]).cells} == {task}
    bad = CliRunner().invoke(cli, ["plot", str(path), "--kind", "eps", "--attacks", "pgd99", "--out", str(out)])
    assert (
        bad.exit_code == 2
        and "--attacks pgd99: no such cell" in bad.output
        and board.cells[0].attack.name in bad.output
    )


def test_curves_prints_the_numbers_the_figures_draw(tmp_path):
    from ssrbench.studies.curves import eps_groups, eps_series

    path = _sweep_like(tmp_path)
    board = store.load(path)
    res = CliRunner().invoke(cli, ["curves", str(path), "--format", "markdown"])
    assert res.exit_code == 0, res.output
    (task, mode), cells = next(iter(eps_groups(board).items()))
    worst = eps_series(cells)["worst case"][1]
    row = next(r for r in res.output.splitlines() if r.startswith(f"| {task} | {mode} |") and "| 8/255 |" in r)
    *_, worst_col, gain_col, _ = row.split("|")
    assert worst_col.strip() == f"{worst[-1].percent:.1f}"  # the worst case, then its gain over the undefended model
    at = [c for c in cells if round(255 * c.threat.eps) == 8]
    base = np.logical_and.reduce([c.adv.flags() for c in at])  # the fixture's attacks are blind: all give a baseline
    assert gain_col.strip().startswith(f"{worst[-1].percent - 100 * base.mean():+.1f} (")
    assert "defended − undefended under" in res.output and "cost on clean" in res.output
    only = CliRunner().invoke(cli, ["curves", str(path), "--format", "markdown", "--tasks", task])
    assert only.exit_code == 0 and "against its own ε" not in only.output  # one reverse point: no reverse table
    none = CliRunner().invoke(cli, ["curves", str(FIXTURE), "--format", "markdown"])
    assert none.exit_code == 2 and "--attack-eps" in none.output


def test_an_adaptive_attacks_gain_is_read_against_the_undefended_model_not_its_own_adv(tmp_path):
    """An adaptive attack's Adv is the bare classifier on images aimed at the defense: its gain is its
    defended accuracy against the blind attacks' Adv at the same eps."""
    from ssrbench.studies.curves import reverse_gain

    board = store.load(_sweep_like(tmp_path))
    cell = board.cells[0]
    twin = cell.model_copy(update={"adaptive": True, "attack": cell.attack.model_copy(update={"name": "bpda@x"})})
    board = board.model_copy(update={"cells": [*board.cells, twin]})
    same = [
        c
        for c in board.cells
        if (c.task.name, c.mode, c.threat.eps) == (cell.task.name, cell.mode, cell.threat.eps) and not c.adaptive
    ]
    base = 100 * np.logical_and.reduce([c.adv.flags() for c in same]).mean()
    assert reverse_gain(board, twin) == pytest.approx(twin.adv_rev.percent - base)
    alone = board.model_copy(update={"cells": [twin]})
    assert reverse_gain(alone, twin) is None  # no blind attack at that eps: no baseline, no number


def test_sweep_panels_and_rows_are_in_numeric_order_of_the_reverse_budget():
    """quick-sweep's reverse budgets are 0, 4, 8, 16/255: as names they would sort 0, 16, 4, 8."""
    from ssrbench.studies.curves import eps_groups

    board = store.load(Path(__file__).resolve().parents[1] / "leaderboards" / "quick-sweep.json")
    groups = eps_groups(board)
    budgets = [(cells[0].task.swept, mode, cells[0].reverse.eps * 255) for (task, mode), cells in groups.items()]
    assert [b for t, m, b in budgets if (t, m) == ("inpaint", "multitask")] == [0, 4, 8, 16]
    assert budgets == sorted(budgets, key=lambda b: (b[0], b[2], b[1]))
    from ssrbench.studies.curves import reverse_groups

    attacks = [attack for (task, mode, attack) in reverse_groups(board) if (task, mode) == ("inpaint", "multitask")]
    assert attacks[:5] == [f"bpda-pgd10@eps={e}/255" for e in (1, 2, 4, 8, 16)], attacks
