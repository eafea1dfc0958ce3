"""A third-party distribution, really installed (a dist-info folder that importlib.metadata reads)."""

import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from ssrbench.cli import cli
from ssrbench.leaderboard import store
from ssrbench.registry import ATTACKS, TASKS
from ssrbench.testing import check_task_contract

from .distributions import install_fake_distribution

PLUGIN_DIR = Path(__file__).parent / "plugins"


@pytest.fixture
def example_plugin(tmp_path):
    install_fake_distribution(
        tmp_path / "site", "ssrbench-example-plugin", "0.2.0",
        {"ssrbench.tasks": {"vflip": "ssrbench_example_plugin:VFlipTask"},
         "ssrbench.attacks": {"uniform-noise": "ssrbench_example_plugin:UniformNoise"}},
        {},
    )
    sys.path.insert(0, str(PLUGIN_DIR))
    TASKS.reset()
    ATTACKS.reset()
    yield
    sys.path[:] = [p for p in sys.path if p not in (str(PLUGIN_DIR), str(tmp_path / "site"))]
    TASKS.reset()
    ATTACKS.reset()


def test_plugin_is_listed_with_its_distribution(example_plugin):
    res = CliRunner().invoke(cli, ["list", "tasks"])
    assert res.exit_code == 0 and "vflip" in res.output and "ssrbench-example-plugin" in res.output
    assert TASKS.origin("vflip").version == "0.2.0"
    res = CliRunner().invoke(cli, ["list", "attacks"])
    assert "uniform-noise" in res.output


def test_plugin_conforms(example_plugin):
    check_task_contract(TASKS.get("vflip"))


@pytest.mark.integration
def test_plugin_runs_by_name_and_is_recorded(example_plugin, cifar_dir, tmp_path):
    out = tmp_path / "plugin.json"
    res = CliRunner().invoke(cli, ["run", "--preset", "smoke", "--tasks", "vflip,inpaint", "--attacks", "uniform-noise,fgsm",
                                   "--modes", "classifier-first", "--data-dir", str(cifar_dir), "--no-download",
                                   "--out", str(out), "--cache-dir", str(tmp_path / "cache"), "--quiet"])
    assert res.exit_code == 0, res.output + repr(res.exception)
    board = store.load(out)
    vflip = [c for c in board.cells if c.task.name == "vflip"]
    assert len(vflip) == 2 and len(board.cells) == 4
    assert vflip[0].task.distribution == "ssrbench-example-plugin" and vflip[0].task.distribution_version == "0.2.0"
    noise = next(c for c in board.cells if c.attack.name == "uniform-noise")
    assert noise.attack.distribution == "ssrbench-example-plugin"
    # the classifier is trained once and shared by both tasks in classifier-first mode
    assert [r.stage for r in board.training].count("classifier") == 2
    assert sum(not r.cached for r in board.training if r.stage == "classifier") == 1
