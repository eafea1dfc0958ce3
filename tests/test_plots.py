"""Figures from leaderboards: each kind draws from the cells it needs, refuses without them, names the
extra when matplotlib is missing, and records its leaderboard's hash; the README's figures match theirs."""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest
from click.testing import CliRunner

from ssrbench.cli import cli
from ssrbench.leaderboard import store
from ssrbench.leaderboard.records import PerImage
from ssrbench.studies.plots import source_of

from .conftest import REPO
from .test_leaderboard import FIXTURE


def _sweep_like(tmp_path):
    """The fixture's cells copied to two attack eps and two reverse eps, with per-image pretext values."""
    board = store.load(FIXTURE)
    cells = []
    for c in board.cells:
        n = c.clean.n
        per = PerImage.from_arrays(np.linspace(0, 1, n), np.linspace(0.5, 1.5, n), np.linspace(0, 1, n))
        for eps in (2, 8):
            for rev in (0, 8):
                cells.append(c.model_copy(update={
                    "attack": c.attack.model_copy(update={"name": f"{c.attack.name}@eps={eps}/255"}),
                    "task": c.task.model_copy(update={"name": f"{c.task.name}@rev={rev}/255"}),
                    "threat": c.threat.model_copy(update={"eps": eps / 255}),
                    "reverse": {**c.reverse, "eps": rev / 255},
                    "pretext": c.pretext.model_copy(update={"per_image": per})}))
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
    res = CliRunner().invoke(cli, ["plot", str(_sweep_like(tmp_path)), "--kind", "eps", "--out", str(tmp_path / "y.png")])
    assert res.exit_code == 2 and "pip install 'ssrbench[plot]'" in res.output


def test_readme_figures_were_drawn_from_the_committed_leaderboards_as_they_are():
    readme = (REPO / "README.md").read_text()
    figures = re.findall(r"!\[[^\]]*\]\((docs/figures/[^)]+\.png)\)", readme)
    assert figures, "the README shows no figure"
    for fig in figures:
        path, digest = source_of(REPO / fig)
        assert hashlib.sha256((REPO / path).read_bytes()).hexdigest() == digest, \
            f"{fig} was drawn from another version of {path}: regenerate it (README, 'Figures')"
