"""Budget sweeps: the grid's parsing, its expansion into configs, and a run over it on the same models."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from ssrbench.cli import cli
from ssrbench.core.errors import ConfigError
from ssrbench.leaderboard import store
from ssrbench.run.config import load_attack_config, load_task_config
from ssrbench.run.sweep import Grid, expand, label, parse_budgets, parse_steps

from .helpers import TINY, make_cifar


def test_lists_and_ranges_parse_and_bad_values_are_named():
    assert parse_budgets("1/255, 2/255,0.5") == (1 / 255, 2 / 255, 0.5)
    assert parse_steps("1..3,10", 1) == (1, 2, 3, 10) and parse_steps("0,5", 0) == (0, 5)
    for bad, match in (("", "no value"), ("abc", "'abc'"), ("-1/255", "outside"), ("2", "outside"), ("1/0", "1/0")):
        with pytest.raises(ValueError, match=match):
            parse_budgets(bad)
    with pytest.raises(ValueError, match="below the minimum"):
        parse_steps("0,1", 1)
    with pytest.raises(ValueError, match="'x..y'"):
        parse_steps("x..y", 0)
    assert label(8 / 255) == "8/255" and label(0.1) == "0.1"


def test_each_point_is_its_config_with_the_swept_value_and_a_scaled_step():
    (rot,), (pgd,) = [load_task_config("rotation")], [load_attack_config("pgd10")]
    tasks, attacks = expand([rot], [pgd], Grid(attack_eps=(4 / 255, 16 / 255), reverse_eps=(0.0, 16 / 255)))
    assert [a.name for a in attacks] == ["pgd10@eps=4/255", "pgd10@eps=16/255"]
    assert attacks[1].params["step_size"] == pytest.approx(4 / 255) and attacks[1].params["steps"] == 10
    assert [t.name for t in tasks] == ["rotation@rev=0/255", "rotation@rev=16/255"]
    assert tasks[0].reverse.eps == 0 and tasks[1].reverse.step_size == pytest.approx(4 / 255)
    assert tasks[1].params == rot.params  # the same task: the same trained model
    assert expand([rot], [pgd], Grid()) == ([rot], [pgd])
    with pytest.raises(ConfigError, match="apgd-ce@eps=0/255"):
        expand([rot], [load_attack_config("apgd-ce")], Grid(attack_eps=(0.0,)))
    with pytest.raises(ConfigError, match="has no steps"):
        expand([rot], [load_attack_config("fgsm")], Grid(attack_steps=(1, 2)))


def test_a_sweep_run_is_one_leaderboard_of_paired_points_on_the_same_models(tmp_path):
    data = make_cifar(tmp_path / "data")
    out = tmp_path / "sweep.json"
    args = list(TINY)
    args[args.index("--attacks") + 1] = "pgd2"
    res = CliRunner().invoke(
        cli,
        [
            "run",
            *args,
            "--modes",
            "classifier-first",
            "--attack-eps",
            "1/255,8/255",
            "--reverse-eps",
            "0,8/255",
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
    assert sorted((c.task.name, c.attack.name) for c in board.cells) == sorted(
        (f"rotation@rev={r}", f"pgd2@eps={e}") for r in ("0/255", "8/255") for e in ("1/255", "8/255")
    )
    assert len({c.model_key for c in board.cells}) == 1  # every point on the one trained model
    assert board.config["sweep"] == {"attack_eps": [1 / 255, 8 / 255], "reverse_eps": [0.0, 8 / 255]}
    for c in board.cells:
        assert c.threat.eps == pytest.approx(float(c.attack.name.split("=")[1].split("/")[0]) / 255)
        if c.task.name.endswith("rev=0/255"):  # no reverse attack: Adv+Rev is Adv, image for image
            assert c.adv_rev.per_image == c.adv.per_image and c.clean_rev.per_image == c.clean.per_image
    bad = CliRunner().invoke(cli, ["run", *args, "--attack-eps", "1/255,-2/255", "--data-dir", str(data)])
    assert bad.exit_code == 2 and "'-2/255'" in bad.output and "--attack-eps" in bad.output
