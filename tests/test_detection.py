"""The pretext metric as a detector of attacked images: a perfect case, a blind case, ties, storage."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from ssrbench.cli import cli
from ssrbench.core.stats import detection_scores, pack_float16, unpack_float16
from ssrbench.leaderboard import store
from ssrbench.leaderboard.records import PerImage

from .conftest import consistent_pretext
from .helpers import FIXTURE, TINY, make_cifar


def test_a_perfect_detector_and_a_blind_one():
    rng = np.random.default_rng(0)
    clean = rng.normal(size=300)
    perfect = detection_scores(clean, clean + 100)
    assert perfect["auroc"] == 1.0 and perfect["tpr"] == 1.0 and perfect["auroc_ci95"] == (1.0, 1.0)
    blind = detection_scores(clean, rng.permutation(clean))  # the same distribution: chance
    assert abs(blind["auroc"] - 0.5) < 0.06 and blind["auroc_ci95"][0] < 0.5 < blind["auroc_ci95"][1]
    assert blind["tpr"] <= 0.1
    same = detection_scores(clean, clean)
    assert same["auroc"] == 0.5 and same["tpr"] <= 0.05


def test_auroc_counts_ties_as_half_like_the_definition():
    rng = np.random.default_rng(1)
    neg, pos = rng.integers(0, 3, 40) / 4, rng.integers(0, 5, 40) / 4
    brute = np.mean([(p > q) + 0.5 * (p == q) for p in pos for q in neg])
    assert detection_scores(neg, pos)["auroc"] == pytest.approx(brute)


def test_per_image_values_round_trip_compactly_and_refuse_nan():
    v = np.array([0.0, 0.25, 1.0, 0.0618, 1e6])
    back = unpack_float16(pack_float16(v), 5)
    assert np.allclose(back[:4], v[:4], atol=1e-3) and back[4] == np.finfo(np.float16).max
    with pytest.raises(ValueError):
        pack_float16([0.1, float("nan")])
    with pytest.raises(ValueError):
        PerImage(n=4, clean=pack_float16(v), adversarial=pack_float16(v), adversarial_reversed=pack_float16(v))


def _with_per_image(cell, clean, adv):
    return cell.model_copy(update={"pretext": consistent_pretext(cell.pretext, PerImage.from_arrays(clean, adv, adv))})


def test_the_leaderboard_view_orients_the_score_and_is_checked_on_load():
    board = store.load(FIXTURE)
    n = board.cells[0].clean.n
    clean = np.linspace(0.2, 0.4, n)
    first = board.cells[0]
    worse = clean - 0.5 if first.pretext.higher_is_better else clean + 0.5  # the attack always spoils the task
    cells = [_with_per_image(first, clean, worse), _with_per_image(board.cells[1], clean, clean), *board.cells[2:]]
    board = board.model_copy(update={"cells": cells})
    d = {(x.task, x.mode, x.attack): x for x in board.detection}
    perfect, blind = (
        d[(first.task.name, first.mode, first.attack.name)],
        d[(cells[1].task.name, cells[1].mode, cells[1].attack.name)],
    )
    assert perfect.auroc == 1.0 and perfect.tpr_at_5fpr == 1.0 and blind.auroc == 0.5
    assert perfect.score == ("minus " if first.pretext.higher_is_better else "") + first.pretext.metric
    doc = json.loads(store.dumps(board))
    assert store.loads(json.dumps(doc), "x.json").detection == board.detection
    doc["detection"][0]["auroc"] = 0.9
    with pytest.raises(Exception, match="detection"):
        store.loads(json.dumps(doc), "x.json")
    from ssrbench.leaderboard.render import markdown

    assert "**detection**" in markdown(board) and "1.000 [1.000, 1.000]" in markdown(board)


def test_a_run_stores_per_image_pretext_values_and_scores_them(tmp_path):
    data = make_cifar(tmp_path / "data")
    out = tmp_path / "d.json"
    res = CliRunner().invoke(
        cli,
        [
            "run",
            *TINY,
            "--modes",
            "classifier-first",
            "--data-dir",
            str(data),
            "--no-download",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    board = store.load(out)
    (c,) = board.cells
    assert c.pretext.per_image is not None and c.pretext.per_image.n == c.clean.n
    assert abs(c.pretext.per_image.values("clean").mean() - c.pretext.clean) < 1e-2
    (d,) = board.detection
    assert 0 <= d.auroc <= 1 and d.attack == "fgsm"
    # the cost of the defense: rotation's reverse attack runs 10 steps over 4 rotations of every image
    steps = c.reverse.steps
    assert c.cost.passes_per_image == 4 * steps and c.cost.seconds_per_image > 0
    text = CliRunner().invoke(cli, ["show", str(out), "--format", "markdown"]).output
    assert "**cost**" in text and f"| {4 * steps} |" in text


def test_the_gate_reverses_only_what_it_flags():
    """A perfect detector: the gated defense keeps clean accuracy (nothing reversed) and defends attacked
    images exactly as the ungated one; a gate that never fires would be the undefended model, so it is
    reported as a gate that cannot fire, with no gated number."""
    from ssrbench.leaderboard.records import Gate

    board = store.load(FIXTURE)
    n = board.cells[0].clean.n
    cells = []
    for c in board.cells:
        sign = -1.0 if c.pretext.higher_is_better else 1.0
        clean, adv = np.zeros(n), np.ones(n)  # oriented scores: attacked images score higher
        c = _with_per_image(c, sign * clean, sign * adv)
        cells.append(c.model_copy(update={"gate": Gate(threshold=0.5, calibration="test", target_fpr=0.05)}))
    gated = board.model_copy(update={"cells": cells}).gated
    assert gated
    for g in gated:
        assert g.clean_flagged == 0.0
        group = [c for c in cells if (c.task.name, c.mode) == (g.task, g.mode)]
        assert g.clean.per_image == group[0].clean.per_image  # nothing reversed: clean accuracy kept
        assert g.worst_case == g.worst_case_ungated  # every attacked image reversed, as ungated
    never = [c.model_copy(update={"gate": Gate(threshold=5.0, calibration="test", target_fpr=0.05)}) for c in cells]
    for g in board.model_copy(update={"cells": never}).gated:
        assert not g.can_fire and g.clean is None and g.worst_case is None
        assert g.threshold == 5.0 and g.clean_flagged == 0.0


def test_a_run_fixes_the_gate_on_training_images(tmp_path):
    data = make_cifar(tmp_path / "data", train=256)
    out = tmp_path / "g.json"
    res = CliRunner().invoke(
        cli,
        [
            "run",
            *TINY,
            "--modes",
            "classifier-first",
            "--data-dir",
            str(data),
            "--no-download",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--out",
            str(out),
        ],
    )
    assert res.exit_code == 0, res.output
    board = store.load(out)
    (c,) = board.cells
    assert c.gate.calibration == "the last 1000 training images" and c.gate.target_fpr == 0.05  # 5 x 256 here
    (g,) = board.gated
    assert g.clean_ungated == c.clean_rev and 0 <= g.clean_flagged <= 100
    assert "**gated defense**" in CliRunner().invoke(cli, ["show", str(out), "--format", "markdown"]).output
