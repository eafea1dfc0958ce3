"""The example plugin (examples/ssrbench-example-plugin), really installed: a dist-info folder written
from its own pyproject.toml, its package copied into a site folder that importlib.metadata reads."""

import importlib.util
import warnings
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from ssrbench.cli import cli
from ssrbench.core.errors import UnknownNameError
from ssrbench.core.registry import PluginWarning, SkippedPluginError, reset_all
from ssrbench.leaderboard import store
from ssrbench.pretext.base import TASKS
from ssrbench.run.config import load_attack_config, load_task_config, named_files, shadowed_builtins, shadows_builtin
from ssrbench.run.testing import check_task_contract, quick_task_check

from .distributions import install_fake_distribution, install_project
from .helpers import install_plugin

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "ssrbench-example-plugin"


@pytest.fixture
def example_plugin(site):
    install_project(site, EXAMPLE)
    reset_all()
    return site


def test_plugin_is_listed_with_its_distribution(example_plugin):
    res = CliRunner().invoke(cli, ["list", "tasks"])
    assert res.exit_code == 0 and "vflip" in res.output and "ssrbench-example-plugin" in res.output
    assert TASKS.origin("vflip").version == "0.2.0"
    res = CliRunner().invoke(cli, ["list", "attacks"])
    assert "uniform-noise" in res.output


def test_plugin_conforms(example_plugin):
    check_task_contract(TASKS.get("vflip"))
    assert quick_task_check(TASKS.get("vflip")) is None


def test_example_plugins_own_tests_pass(example_plugin):
    spec = importlib.util.spec_from_file_location("example_plugin_tests", EXAMPLE / "tests" / "test_example_plugin.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    tests = [getattr(module, n) for n in dir(module) if n.startswith("test_")]
    assert len(tests) == 3
    for test in tests:
        test()


def test_plugin_configs_are_found_by_name_and_listed(example_plugin):
    folder = example_plugin / "ssrbench_example_plugin" / "configs"
    rev16 = load_task_config("vflip-rev16")
    assert rev16.source == str(folder / "tasks" / "vflip-rev16.toml")
    assert rev16.kind == "vflip" and rev16.reverse.eps == pytest.approx(16 / 255)
    assert rev16.description.startswith("vflip with the reverse attack at 16/255")
    assert load_attack_config("uniform-noise-eps16").kind == "uniform-noise"
    files = named_files("tasks")
    assert files["vflip"].origin == "ssrbench-example-plugin 0.2.0" and files["inpaint"].origin == "ssrbench"
    res = CliRunner().invoke(cli, ["list", "tasks"])
    row = next(line for line in res.output.splitlines() if "vflip-rev16" in line)
    assert "ssrbench-example-plugin 0.2.0:" in row
    res = CliRunner().invoke(cli, ["list", "attacks"])
    row = next(line for line in res.output.splitlines() if "uniform-noise-eps16" in line)
    assert "ssrbench-example-plugin 0.2.0:" in row


def test_user_folders_come_before_plugin_folders(example_plugin, tmp_path):
    (tmp_path / "mine" / "tasks").mkdir(parents=True)
    (tmp_path / "mine" / "tasks" / "vflip.toml").write_text('kind = "vflip"\n[reverse]\nsteps = 3\n')
    cfg = load_task_config("vflip-rev16", [tmp_path / "mine"])  # extends the user's vflip now
    assert cfg.reverse.steps == 3 and cfg.reverse.eps == pytest.approx(16 / 255)
    assert load_task_config("vflip", [tmp_path / "mine"]).source == str(tmp_path / "mine" / "tasks" / "vflip.toml")
    assert shadows_builtin(cfg) is None  # a plugin's name is not a built-in one


def test_plugin_config_shadowing_a_builtin_is_noticeable(site):
    pkg = site / "ssr_plugin_mod"
    (pkg / "tasks").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "tasks" / "inpaint.toml").write_text('extends = "inpaint"\n[reverse]\nsteps = 2\n')
    install_fake_distribution(site, "ssr-shadower", "1.0", {"ssrbench.configs": {"x": "ssr_plugin_mod"}}, {})
    reset_all()
    cfg = load_task_config("inpaint")
    assert cfg.source == str(pkg / "tasks" / "inpaint.toml") and cfg.reverse.steps == 2
    assert cfg.params == load_task_config("inpaint-rev16").params  # the built-in inpaint's, by extends
    assert shadows_builtin(cfg).endswith("inpaint.toml")
    [notice] = shadowed_builtins([cfg, load_task_config("jigsaw")])
    assert "'inpaint'" in notice and cfg.source in notice


@pytest.mark.parametrize(
    "target, source",
    [
        ("ssr_plugin_mod:CONFIGS", "from pathlib import Path\nCONFIGS = Path(__file__).parent / 'cfg'\n"),
        (
            "ssr_plugin_mod:configs",
            "from pathlib import Path\ndef configs():\n    return Path(__file__).parent / 'cfg'\n",
        ),
    ],
)
def test_configs_entry_point_may_name_a_path_or_a_function(site, target, source):
    (site / "cfg" / "attacks").mkdir(parents=True)
    (site / "cfg" / "attacks" / "fgsm-tiny.toml").write_text('kind = "fgsm"\n[params]\neps = "1/255"\n')
    install_plugin(site, {"ssrbench.configs": {"tiny": target}}, source)
    assert load_attack_config("fgsm-tiny").params["eps"] == pytest.approx(1 / 255)
    assert named_files("attacks")["fgsm-tiny"].origin == "ssr-test-plugin 0.5"


@pytest.mark.parametrize(
    "target, source, reason",
    [
        ("ssr_plugin_mod", "raise ImportError('missing dependency foo')\n", "missing dependency foo"),
        ("ssr_plugin_mod", "", "is a module, not a package"),
        ("ssr_plugin_mod:WHERE", "WHERE = '/nonexistent/configs'\n", "is not a folder"),
        ("ssr_plugin_mod:WHERE", "WHERE = 3\n", "expected a package"),
    ],
)
def test_broken_configs_entry_point_is_a_warning_naming_the_plugin(site, target, source, reason):
    install_plugin(site, {"ssrbench.configs": {"broken": target}}, source)
    with pytest.warns(PluginWarning, match=f"ssr-test-plugin 0.5: named configs 'broken'.*{reason}"):
        assert load_task_config("inpaint").kind == "inpaint"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert CliRunner().invoke(cli, ["list", "tasks"]).exit_code == 0


@pytest.mark.parametrize(
    "source, reason",
    [
        ("raise ImportError(\"No module named 'kornia'\")\n", "ImportError: No module named 'kornia'"),
        (
            "from ssrbench.pretext.base import PretextTask\nclass VFlipTask(PretextTask):\n    name = 'vflip'\n",
            "does not define version",
        ),
    ],
)
def test_installed_but_skipped_says_so(site, source, reason):
    install_plugin(
        site,
        {"ssrbench.tasks": {"vflip": "ssr_plugin_mod:VFlipTask"}},
        source,
        name="ssrbench-example-plugin",
        version="0.2.0",
    )
    expected = "task 'vflip' is installed (ssrbench-example-plugin 0.2.0) but skipped: "
    with pytest.warns(PluginWarning):
        with pytest.raises(SkippedPluginError) as err:
            load_task_config("vflip")
    assert str(err.value).startswith(expected) and reason in str(err.value)
    assert isinstance(err.value, UnknownNameError) and err.value.exit_code == 2
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = CliRunner().invoke(cli, ["check-plugin", "vflip"])
    assert res.exit_code == 2 and expected in res.output and "unknown" not in res.output


BATCH_MEAN = """
from ssrbench.pretext.rotation import RotationTask

class MeanRev(RotationTask):
    name = "meanrev"

    def reverse_loss(self, model, x):
        return super().reverse_loss(model, x).mean()  # one number for the whole batch: breaks the contract
"""


def test_check_plugin_refuses_a_batch_mean_reverse_loss(site):
    install_plugin(site, {"ssrbench.tasks": {"meanrev": "ssr_plugin_mod:MeanRev"}}, BATCH_MEAN)
    res = CliRunner().invoke(cli, ["check-plugin", "meanrev"])
    assert res.exit_code == 1, res.output
    assert "FAIL" in res.output and "reverse_loss" in res.output and "got shape ()" in res.output
    reason = quick_task_check(TASKS.get("meanrev"))
    assert "reverse_loss" in reason and "got shape ()" in reason


def test_quick_task_check_leaves_the_random_state_alone():
    state = torch.random.get_rng_state()
    assert quick_task_check(TASKS.get("rotation"), {"task_stages": 2}) is None
    assert torch.equal(state, torch.random.get_rng_state())


LEAKY_ATTACK = """
from pydantic import BaseModel
from ssrbench.adversarial.base import Attack
from ssrbench.core.budget import ThreatModel

class P(BaseModel):
    eps: float = 8 / 255

class Leaky(Attack):
    Params = P

    def threat_model(self):
        return ThreatModel(norm="linf", eps=self.params.eps, steps=1)

    def perturb(self, model, x, y, generator):
        return (x + 0.5).clamp(0, 1)  # far outside the eps-ball it declares

class Undeclared(Attack):
    Params = P  # not an LinfBudget, and no threat_model(): the checks could not read its budget

    def perturb(self, model, x, y, generator):
        return x.clone()
"""


def test_check_plugin_passes_the_example_and_refuses_an_attack_outside_its_ball(example_plugin):
    install_plugin(
        example_plugin,
        {"ssrbench.attacks": {"leaky": "ssr_plugin_mod:Leaky", "undeclared": "ssr_plugin_mod:Undeclared"}},
        LEAKY_ATTACK,
    )
    for name in ("vflip", "uniform-noise", "fgsm"):
        res = CliRunner().invoke(cli, ["check-plugin", name])
        assert res.exit_code == 0 and res.output.startswith("PASS"), res.output
    res = CliRunner().invoke(cli, ["check-plugin", "leaky"])
    assert res.exit_code == 1 and "FAIL" in res.output and "left its linf ball" in res.output
    res = CliRunner().invoke(cli, ["check-plugin", "undeclared"])
    assert res.exit_code == 1 and "declares no threat model" in res.output


def test_check_plugin_unknown_name_suggests():
    res = CliRunner().invoke(cli, ["check-plugin", "rotaton"])
    assert res.exit_code == 2 and "did you mean 'rotation'" in res.output.lower()


@pytest.mark.integration
def test_plugin_runs_by_name_and_is_recorded(example_plugin, cifar_dir, tmp_path):
    out = tmp_path / "plugin.json"
    res = CliRunner().invoke(
        cli,
        [
            "run",
            "--preset",
            "smoke",
            "--tasks",
            "vflip,inpaint",
            "--attacks",
            "uniform-noise,fgsm",
            "--modes",
            "classifier-first",
            "--data-dir",
            str(cifar_dir),
            "--no-download",
            "--out",
            str(out),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--quiet",
        ],
    )
    assert res.exit_code == 0, res.output + repr(res.exception)
    board = store.load(out)
    vflip = [c for c in board.cells if c.task.name == "vflip"]
    assert len(vflip) == 2 and len(board.cells) == 4
    assert vflip[0].task.distribution == "ssrbench-example-plugin" and vflip[0].task.distribution_version == "0.2.0"
    noise = next(c for c in board.cells if c.attack.name == "uniform-noise")
    assert noise.attack.distribution == "ssrbench-example-plugin"
    # the classifier is trained once, shared by both tasks in classifier-first mode, and recorded once, as trained
    classifier = [r for r in board.training if r.stage == "classifier"]
    assert len(classifier) == 1 and not classifier[0].cached
