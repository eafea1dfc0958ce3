"""Seeds as an axis: per-seed cells, aggregates across seeds, and comparisons that know whether the
weights are the same (an exact paired test applies) or not (seed variation must be accounted for)."""

from __future__ import annotations

import numpy as np
import pytest
from click.testing import CliRunner

from ssrbench.cli import cli
from ssrbench.leaderboard import store
from ssrbench.leaderboard.compare import compare
from ssrbench.leaderboard.merge import merge
from ssrbench.leaderboard.schema import Accuracy

from .conftest import consistent_board
from .helpers import FIXTURE, TINY, make_cifar


def _wide(n=400):
    """The fixture with every cell widened to ``n`` images, 40% right, so effects can be significant."""
    board = store.load(FIXTURE)
    flags = np.random.default_rng(0).random(n) < 0.4
    cells = [
        c.model_copy(update={m: Accuracy.from_flags(flags) for m in ("clean", "clean_rev", "adv", "adv_rev")})
        for c in board.cells
    ]
    return consistent_board(board, cells)


def _seeded(board, seed, weights, shift=0):
    """``board``'s cells as trained with ``seed`` (weights named ``weights``), Adv+Rev moved by ``shift``
    images to the right -- a retrained model is right on other images."""
    cells = []
    for c in board.cells:
        flags = np.roll(c.adv_rev.flags(), shift)
        cells.append(
            c.model_copy(update={"seed": seed, "weights_sha256": weights * 64, "adv_rev": Accuracy.from_flags(flags)})
        )
    return board.model_copy(update={"seed": seed, "cells": cells})


def _big_change(board, seed, weights):
    """Every cell's Adv+Rev made all-wrong: a large drop."""
    cells = [
        c.model_copy(
            update={
                "seed": seed,
                "weights_sha256": weights * 64,
                "adv_rev": Accuracy.from_flags(np.zeros(c.adv_rev.n, bool)),
            }
        )
        for c in board.cells
    ]
    return board.model_copy(update={"seed": seed, "cells": cells})


def test_same_weights_are_judged_by_mcnemar_on_the_same_images():
    base = _wide()
    old, new = _seeded(base, 0, "a"), _big_change(base, 0, "a")
    res = compare(old, new, threshold=0)
    assert all(r.weights == "same" for r in res)
    adv_rev = [ch for r in res for ch in r.changes if ch.metric == "adv_rev"]
    assert all(ch.test == "McNemar, same weights" for ch in adv_rev)
    assert all(ch.verdict == "worse" and ch.lost > 100 and ch.gained == 0 for ch in adv_rev)


def test_different_weights_with_one_seed_are_not_judged():
    base = _wide()
    old, new = _seeded(base, 0, "a"), _big_change(base, 0, "b")
    res = compare(old, new, threshold=0)
    assert all(r.weights == "differ" for r in res)
    changed = [ch for r in res for ch in r.changes if ch.metric == "adv_rev" and ch.old != ch.new]
    assert changed and all(ch.verdict == "undecided" and "not enough" in ch.test for ch in changed)
    assert not any(r.regressed for r in res)
    rendered = CliRunner().invoke(cli, ["compare", "--help"])
    assert rendered.exit_code == 0


def test_different_weights_with_several_seeds_use_seed_variation():
    base = _wide()
    old = merge([_seeded(base, s, w, shift=s) for s, w in ((0, "a"), (1, "b"), (2, "c"))], ["0", "1", "2"], [])
    same = merge([_seeded(base, s, w, shift=s + 3) for s, w in ((0, "d"), (1, "e"), (2, "f"))], ["0", "1", "2"], [])
    res = compare(old, same, threshold=0)
    assert all(r.weights == "differ" for r in res)
    tests = {ch.test for r in res for ch in r.changes if ch.metric == "adv_rev"}
    assert tests == {"hierarchical bootstrap over seeds (3 old, 3 new) and images"}
    assert {ch.test for r in res for ch in r.changes if ch.metric == "clean"} == {"identical per-image results"}
    assert not any(r.regressed for r in res)  # the same accuracy, other images: no verdict of worse
    worse = merge([_big_change(base, s, w) for s, w in ((0, "d"), (1, "e"), (2, "f"))], ["0", "1", "2"], [])
    flagged = [ch for r in compare(old, worse, threshold=0) for ch in r.changes if ch.metric == "adv_rev"]
    assert flagged and all(ch.verdict == "worse" for ch in flagged)


def test_aggregates_mean_sd_and_interval_across_seeds():
    base = _wide()
    board = merge([_seeded(base, s, w, shift=s) for s, w in ((0, "a"), (1, "b"), (2, "c"))], ["0", "1", "2"], [])
    assert board.seeds == [0, 1, 2]
    (agg, *_) = [a for a in board.aggregates if a.attack == base.cells[0].attack.name and a.mode == base.cells[0].mode]
    per_seed = [c.adv_rev.percent for c in board.cells if c.group == base.cells[0].group]
    spread = agg.metrics["adv_rev"]
    assert spread.mean == pytest.approx(np.mean(per_seed)) and spread.sd == pytest.approx(np.std(per_seed, ddof=1))
    assert spread.ci95[0] <= spread.mean <= spread.ci95[1]
    effect = agg.metrics["adv_effect"]
    assert effect.mean == pytest.approx(spread.mean - agg.metrics["adv"].mean)
    from ssrbench.leaderboard.render import markdown

    shown = markdown(board)
    assert "(3 seeds)" in shown and "mean ± sd of each seed's worst case" in shown and "(seed 1)" not in shown
    assert "(seed 1)" in markdown(board, per_seed=True)
    again = store.loads(store.dumps(board), "seeds.json")  # a derived view, recomputed and checked on load
    assert again.aggregates == board.aggregates
    shown = CliRunner().invoke(cli, ["show", "-", "--help"])
    assert shown.exit_code == 0 and "--per-seed" in shown.output


@pytest.mark.parametrize(
    "value,reason",
    [
        ("", "give seeds"),
        ("0,,1", "give seeds"),
        ("-1,2", "must not be negative"),
        ("0,1,1", "repeated"),
        ("a,b", "integers"),
        ("0", "at least 1"),
        ("1.5", "integers"),
    ],
)
def test_bad_seeds_exit_2_naming_the_value(tmp_path, value, reason):
    res = CliRunner().invoke(cli, ["run", "--preset", "smoke", "--seeds", value, "--out", str(tmp_path / "o.json")])
    assert res.exit_code == 2 and reason in res.output and "--seeds" in res.output


def test_seeds_run_and_deterministic_training_give_identical_weights(tmp_path):
    data = make_cifar(tmp_path / "data")
    args = [
        "run",
        *TINY,
        "--data-dir",
        str(data),
        "--no-download",
        "--modes",
        "multitask",
        "--seeds",
        "0,1",
        "--deterministic",
        "--threads",
        "1",
    ]
    first = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "a.json"), "--cache-dir", str(tmp_path / "c1")])
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(cli, [*args, "--out", str(tmp_path / "b.json"), "--cache-dir", str(tmp_path / "c2")])
    assert again.exit_code == 0, again.output
    a, b = store.load(tmp_path / "a.json"), store.load(tmp_path / "b.json")
    assert a.seeds == [0, 1] and a.environment.deterministic and a.environment.threads == 1
    assert a.environment.cpu_capability
    assert [r.weights_sha256 for r in a.training] == [r.weights_sha256 for r in b.training]
    assert len({c.weights_sha256 for c in a.cells}) == 2  # one model per seed
    assert all(r.trained_on.get("deterministic") for r in a.training)
    res = compare(a, b)
    assert all(r.weights == "same" for r in res) and all(ch.verdict == "unchanged" for r in res for ch in r.changes)
