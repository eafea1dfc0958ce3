"""A randomised defense evaluated three ways: one fresh draw, the draws fixed and known to the attacker,
and every one of several fresh draws correct -- the last is what the worst case reads."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ssrbench.adversarial.adaptive import BPDA
from ssrbench.adversarial.pgd import PGD
from ssrbench.cli import cli
from ssrbench.core.budget import ReverseConfig
from ssrbench.core.progress import Reporter
from ssrbench.defense.reverse import Defense
from ssrbench.leaderboard import schema, store
from ssrbench.leaderboard.records import Accuracy
from ssrbench.run.evaluate import DRAWS, evaluate

from .helpers import FIXTURE, TINY, NoisyMetricTask, NoisyTask, OnePixel, make_cifar, toy_setup


def test_single_draw_flatters_a_randomised_defense_and_worst_of_n_does_not():
    model, x, y = toy_setup(model=OnePixel())
    reverse = ReverseConfig(eps=24 / 255, step_size=24 / 255, steps=1)
    out = evaluate(
        model,
        NoisyTask(),
        {"pgd": PGD({"eps": 1 / 255, "steps": 1, "step_size": 1 / 255})},
        reverse,
        x,
        y,
        batch_size=32,
        seed=0,
        reporter=Reporter(None, quiet=True),
        description="toy",
    )
    assert out.clean_rev_all is not None and out.clean_rev_fixed is not None
    single, every = out.clean_rev, out.clean_rev_all
    assert (every <= single).all()  # every draw includes the single one
    assert every.mean() < single.mean(), "the toy defense should fail some images in some draws"
    a = out.attacks["pgd"]
    assert np.concatenate(a.adv_rev_all).mean() < np.concatenate(a.adv_rev).mean()
    assert len(np.concatenate(a.adv_rev_fixed)) == len(x)


def test_fixed_draws_make_the_defense_one_deterministic_function():
    model, x, y = toy_setup(8)
    defense = Defense(model, NoisyTask(), ReverseConfig(eps=8 / 255, step_size=8 / 255, steps=1))
    xf = x.float() / 255
    assert defense.randomized
    a, b = defense.purify(xf, torch.Generator().manual_seed(1)), defense.purify(xf, torch.Generator().manual_seed(2))
    assert not torch.equal(a, b)
    fixed = defense.with_fixed_draws(0)
    assert not fixed.randomized and fixed.draws_randomness
    assert torch.equal(
        fixed.purify(xf, torch.Generator().manual_seed(1)), fixed.purify(xf, torch.Generator().manual_seed(2))
    )


def test_eot_averages_a_randomised_defense_and_not_a_fixed_one(monkeypatch):
    model, x, y = toy_setup(4)
    defense = Defense(model, NoisyTask(), ReverseConfig(eps=8 / 255, step_size=8 / 255, steps=1))
    calls = []
    purify = Defense.purify
    monkeypatch.setattr(Defense, "purify", lambda self, z, g=None: calls.append(1) or purify(self, z, g))
    attack = BPDA({"eps": 4 / 255, "step_size": 1 / 255, "steps": 2, "eot_samples": 3})
    attack(model, x.float() / 255, y, torch.Generator().manual_seed(0), defense=defense)
    assert len(calls) == 2 * 3
    calls.clear()
    attack(model, x.float() / 255, y, torch.Generator().manual_seed(0), defense=defense.with_fixed_draws(0))
    assert len(calls) == 2


def test_a_cells_pretext_draws_do_not_depend_on_the_other_attacks_evaluated():
    """Each attack (and the clean images) has its own pretext stream: adding an attack to a run leaves the
    pretext columns of the cells already there as they were."""
    model, x, y = toy_setup(16, model=OnePixel())
    reverse = ReverseConfig(eps=8 / 255, step_size=8 / 255, steps=1)
    pgd = {"eps": 1 / 255, "steps": 1, "step_size": 1 / 255}

    def run(names):
        return evaluate(
            model,
            NoisyMetricTask(),
            {n: PGD(pgd) for n in names},
            reverse,
            x,
            y,
            batch_size=8,
            seed=0,
            reporter=Reporter(None, quiet=True),
            description="toy",
        )

    alone, beside = run(["a"]), run(["a", "b"])
    np.testing.assert_array_equal(alone.pretext_clean, beside.pretext_clean)
    for column in ("pretext_adv", "pretext_adv_rev"):
        np.testing.assert_array_equal(
            np.concatenate(getattr(alone.attacks["a"], column)), np.concatenate(getattr(beside.attacks["a"], column))
        )
    # the same images under two attacks with the same settings still draw differently: streams per attack
    assert not np.array_equal(
        np.concatenate(beside.attacks["a"].pretext_adv), np.concatenate(beside.attacks["b"].pretext_adv)
    )


def test_a_doctored_all_draws_count_is_refused():
    board = store.load(FIXTURE)
    c = board.cells[0]
    flags = c.adv_rev.flags().copy()
    wrong = ~flags  # "correct in every draw" where the single draw was wrong: impossible
    if not wrong.any():
        pytest.skip("fixture cell has every image correct")  # pragma: no cover - the fixture has errors
    from ssrbench.leaderboard.records import RandomizedDefense

    r = RandomizedDefense(
        draws=DRAWS,
        fixed_draw=c.adv_rev,
        all_draws=Accuracy.from_flags(wrong),
        clean_fixed_draw=c.clean_rev,
        clean_all_draws=c.clean_rev,
    )
    with pytest.raises(ValueError, match="subset"):
        type(c).model_validate({**c.model_dump(), "reverse_randomized": True, "randomized": r.model_dump()})


def test_a_run_with_a_random_start_reverse_attack_records_the_three_evaluations(tmp_path):
    """A reverse attack with a random start is a randomised defense: the run records (a), (b), (c) per
    cell, the worst case reads (c), and the file round-trips."""
    data = make_cifar(tmp_path / "data")
    tasks = tmp_path / "configs" / "tasks"
    tasks.mkdir(parents=True)
    (tasks / "rotation-rs.toml").write_text('extends = "rotation"\n\n[reverse]\nrandom_start = true\n')
    attacks = tmp_path / "configs" / "attacks"
    attacks.mkdir()
    (attacks / "bpda-pgd2.toml").write_text('extends = "bpda-pgd10"\n\n[params]\nsteps = 2\n')  # EOT over 4 draws kept
    out = tmp_path / "rs.json"
    args = list(TINY)
    args[args.index("--tasks") + 1] = "rotation-rs"
    args[args.index("--attacks") + 1] = "fgsm,bpda-pgd2"
    res = CliRunner().invoke(
        cli,
        [
            "run",
            *args,
            "--modes",
            "classifier-first",
            "--config-dir",
            str(tmp_path / "configs"),
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
    for c in board.cells:
        assert c.reverse_randomized and c.randomized is not None and c.randomized.draws == DRAWS
        assert c.randomized.all_draws.correct <= c.adv_rev.correct
        assert c.randomized.eot_samples == (4 if c.adaptive else None)
    (wc,) = board.worst_case
    expected = np.logical_and.reduce([c.randomized.all_draws.flags() for c in board.cells])
    assert wc.defended.correct == int(expected.sum())
    text = CliRunner().invoke(cli, ["show", str(out), "--format", "markdown"]).output
    assert "**randomised defense**" in text and "(c) every draw" in text and f"all {DRAWS} fresh draws" in text


def test_a_version_2_leaderboard_migrates_to_deterministic_defenses():
    from .conftest import REPO

    board = store.load(REPO / "leaderboards" / "quick-robust.json")  # committed at schema 2
    assert board.source_schema_version == 2 and board.schema_version == schema.SCHEMA_VERSION
    assert all(c.randomized is None for c in board.cells)
    assert [w.defended.correct for w in board.worst_case] == [
        int(
            np.logical_and.reduce(
                [
                    c.adv_rev.flags()
                    for c in board.cells
                    if (c.task.name, c.mode) == (w.task, w.mode) and not c.threat.probe
                ]
            ).sum()
        )
        for w in board.worst_case
    ]
