"""APGD and AutoAttack from a library, either engine: pyautoattack (``reference``, the default; the `autoattack`
extra) and torchattacks (the `attacks` extra), both in the test extra: the attack contract, agreement with each
library called directly, the BPDA and EOT positions, the missing extras, the adaptive suite, and a smoke-preset
run through the defense. The reference AutoAttack's own tests are in test_autoattack_reference.py."""

from __future__ import annotations

import pyautoattack
import pytest
import torch
import torchattacks
from click.testing import CliRunner

from ssrbench.adversarial import autoattack as lib
from ssrbench.adversarial.base import ATTACKS
from ssrbench.adversarial.pgd import PGD
from ssrbench.cli import cli
from ssrbench.core.budget import ReverseConfig
from ssrbench.core.extras import MissingExtraError
from ssrbench.defense.reverse import Defense
from ssrbench.leaderboard import store
from ssrbench.pretext.rotation import RotationTask
from ssrbench.run import suites
from ssrbench.run.config import load_attack_config
from ssrbench.run.testing import _tiny_model, check_attack_contract

from .helpers import TINY, make_cifar

CONFIGS = [
    "apgd-ce",
    "apgd-dlr",
    "apgd-t",
    "autoattack",
    "autoattack-rand",
    "autoattack-torchattacks",
    "bpda-apgd-ce",
    "bpda-apgd-dlr",
    "bpda-apgd-t",
    "bpda-autoattack",
    "eot-apgd-ce",
    "eot-apgd-dlr",
    "eot-autoattack-rand",
    "eot4-apgd-ce",
]
FAST = {"steps": 3}  # the contract does not need 100 iterations


def _fast(cfg) -> dict:
    params = dict(cfg.params) | FAST
    if cfg.kind == "autoattack":
        params |= {"n_queries": 20}
    return params


@pytest.mark.parametrize("name", CONFIGS)
def test_every_library_config_keeps_the_attack_contract(name):
    cfg = load_attack_config(name)
    assert cfg.kind in ("apgd", "autoattack")
    attack = ATTACKS.get(cfg.kind)(cfg.params)
    assert attack.adaptive == name.startswith(("bpda-", "eot"))
    assert (
        attack.threat_model().eps == pytest.approx(8 / 255)
        and attack.threat_model().steps == attack.params.steps == 100
    )
    check_attack_contract(ATTACKS.get(cfg.kind), _fast(cfg))


def _setup(n=8, seed=0):
    torch.manual_seed(seed)
    model = _tiny_model("test_efficientnet", 32).eval()
    g = torch.Generator().manual_seed(seed)
    x = torch.rand(n, 3, 32, 32, generator=g)
    with torch.no_grad():
        y = model(x).argmax(1)  # the model's own predictions: 100% clean accuracy, so there is something to lose
    return model, x, y


def _cells_seed(seed: int) -> int:
    return int(torch.randint(0, 2**31 - 1, (1,), generator=torch.Generator().manual_seed(seed)))


def test_apgd_is_torchattacks_apgd_with_the_cells_seed_and_leaves_the_global_rng_alone():
    model, x, y = _setup()
    attack = lib.APGD({"eps": 8 / 255, "steps": 10, "loss": "ce", "engine": "torchattacks"})
    gen = torch.Generator().manual_seed(5)
    state = torch.random.get_rng_state()
    ours = attack(model, x, y, gen)
    assert torch.equal(torch.random.get_rng_state(), state), "torchattacks reseeded the global RNG"
    seed = _cells_seed(5)
    theirs = torchattacks.APGD(model, norm="Linf", eps=8 / 255, steps=10, n_restarts=1, seed=seed, loss="ce")(x, y)
    assert torch.equal(ours, theirs.clamp(0, 1))
    again = attack(model, x, y, torch.Generator().manual_seed(5))
    assert torch.equal(ours, again)


@pytest.mark.parametrize("params", [{"loss": "ce"}, {"loss": "dlr"}, {"loss": "dlr", "targeted": True, "steps": 3}])
def test_apgd_is_pyautoattack_apgd_with_the_cells_seed_and_leaves_the_global_rng_alone(params):
    model, x, y = _setup()
    params = {"eps": 8 / 255, "steps": 10} | params
    attack = lib.APGD(params)
    assert attack.params.engine == "reference"  # the default
    state = torch.random.get_rng_state()
    ours = attack(model, x, y, torch.Generator().manual_seed(5))
    assert torch.equal(torch.random.get_rng_state(), state), "pyautoattack reseeded the global RNG"
    base = pyautoattack.autopgd_base
    common = dict(n_iter=params["steps"], norm="Linf", eps=8 / 255, seed=_cells_seed(5), device=x.device)
    if params.get("targeted"):
        theirs = base.APGDAttack_targeted(model, n_target_classes=9, **common).perturb(x, y)
    else:
        theirs = base.APGDAttack(model, loss=params["loss"], **common).perturb(x, y)
    assert torch.equal(ours, theirs.clamp(0, 1))
    assert torch.equal(ours, attack(model, x, y, torch.Generator().manual_seed(5)))


@pytest.mark.parametrize("engine", ["reference", "torchattacks"])
def test_apgd_fools_what_it_attacks(engine):
    model, x, y = _setup(n=16)  # clean accuracy 100% by construction; 16/255 is enough for this tiny model
    eps = 16 / 255
    pgd = PGD({"eps": eps, "step_size": eps / 4, "steps": 10, "random_start": True})(
        model, x, y, torch.Generator().manual_seed(0)
    )
    apgd = lib.APGD({"eps": eps, "steps": 10, "engine": engine})(model, x, y, torch.Generator().manual_seed(0))
    with torch.no_grad():
        acc_pgd = (model(pgd).argmax(1) == y).float().mean().item()
        acc_apgd = (model(apgd).argmax(1) == y).float().mean().item()
    assert acc_apgd == 0.0 and acc_apgd <= acc_pgd


def _defense(model, **reverse) -> Defense:
    task = RotationTask()
    return Defense(
        task.attach(model), task, ReverseConfig(**{"eps": 8 / 255, "step_size": 2 / 255, "steps": 2} | reverse)
    )


@pytest.mark.parametrize("engine", ["reference", "torchattacks"])
def test_bpda_through_a_no_op_defense_is_the_attack_on_the_classifier(engine):
    model, x, y = _setup()
    defense = _defense(model, eps=0.0, steps=0)  # purify(x) == x: the defended model is the classifier
    model.eval()
    p = {"steps": 5, "engine": engine}
    plain = lib.APGD(p)(model, x, y, torch.Generator().manual_seed(3))
    through = lib.APGD(p | {"through": "bpda"})(model, x, y, torch.Generator().manual_seed(3), defense=defense)
    assert torch.equal(plain, through)


@pytest.mark.parametrize("engine", ["reference", "torchattacks"])
def test_bpda_calls_the_defense_and_eot_draws_only_a_randomised_one(monkeypatch, engine):
    model, x, y = _setup(n=4)
    calls = []
    for random_start, expect in ((False, 1), (True, 4)):
        defense = _defense(model, random_start=random_start)
        model.eval()
        purify = defense.purify
        monkeypatch.setattr(defense, "purify", lambda z, g=None, purify=purify: calls.append(1) or purify(z, g))
        calls.clear()
        eot = lib.APGD({"steps": 2, "through": "bpda", "eot_iter": 4, "engine": engine})
        eot(model, x, y, torch.Generator().manual_seed(0), defense=defense)
        assert eot.stats["eot_iter"] == expect and len(calls) >= 2 * expect
        bpda = lib.APGD({"steps": 2, "through": "bpda", "engine": engine})
        bpda(model, x, y, torch.Generator().manual_seed(0), defense=defense)
        assert bpda.stats["eot_iter"] == 1
    with pytest.raises(ValueError, match="needs the defense"):
        lib.APGD({"through": "bpda"})(model, x, y, torch.Generator())


def test_bad_params_are_named():
    with pytest.raises(ValueError, match="DLR"):
        lib.APGDParams(targeted=True, loss="ce")
    for bad in ({"eps": 0}, {"eps": 2}, {"steps": 0}, {"through": "purifier"}, {"rho": 1.5}):
        with pytest.raises(ValueError):
            lib.APGDParams(**bad)
    with pytest.raises(ValueError):
        lib.AutoAttackParams(version="plus")


def test_a_missing_extra_is_exit_2_naming_it(without_module, tmp_path):
    without_module("torchattacks")
    needs = (
        r"engine = \"torchattacks\"\) needs torchattacks, which is not installed: pip install 'ssrbench\[attacks\]'$"
    )
    with pytest.raises(MissingExtraError, match=needs):
        lib.AutoAttack({"engine": "torchattacks"})
    lib.APGD({})  # the default engine needs pyautoattack only
    without_module("pyautoattack")
    for kind in (lib.APGD, lib.AutoAttack):
        with pytest.raises(MissingExtraError, match=r"needs pyautoattack.*install 'ssrbench\[autoattack\]'$") as info:
            kind({})
        assert info.value.exit_code == 2
    data = make_cifar(tmp_path / "data")
    res = CliRunner().invoke(
        cli,
        [
            "run",
            *TINY,
            "--attacks",
            "apgd-ce",
            "--data-dir",
            str(data),
            "--no-download",
            "--cache-dir",
            str(tmp_path / "cache"),
            "--out",
            str(tmp_path / "x.json"),
        ],
    )
    assert res.exit_code == 2 and "pip install 'ssrbench[autoattack]'" in res.output
    assert len(res.output.strip().splitlines()) == 1 and not (tmp_path / "x.json").exists()
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.pt"))  # nothing trained


def test_the_adaptive_suite_adds_apgd_with_the_extra_and_names_it_without(without_module):
    suite = suites.load_suite("adaptive")
    assert set(suite.extras) == {"autoattack"}  # its configs run the default engine: torchattacks is not needed
    apgd = suite.extras["autoattack"]
    assert {"apgd-ce", "bpda-apgd-ce"} <= set(apgd)
    assert suite.available() == suite.attacks + apgd  # pyautoattack is installed here
    assert suite.left_out() == []
    without_module("pyautoattack")
    assert suite.available() == suite.attacks
    (line,) = suite.left_out()
    assert "apgd-ce" in line and "pip install 'ssrbench[autoattack]'" in line


def test_apgd_through_bpda_on_the_smoke_preset(tmp_path):
    """A whole run: APGD-CE on the classifier and through the defense, recorded as cells."""
    data = make_cifar(tmp_path / "data")
    configs = tmp_path / "configs" / "attacks"
    configs.mkdir(parents=True)
    for name in ("apgd-ce", "bpda-apgd-ce"):
        (configs / f"{name}-5.toml").write_text(f'extends = "{name}"\n\n[params]\nsteps = 5\n')
    out = tmp_path / "apgd.json"
    res = CliRunner().invoke(
        cli,
        [
            "run",
            *TINY,
            "--attacks",
            "apgd-ce-5,bpda-apgd-ce-5",
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
    cells = {(c.mode, c.attack.name): c for c in board.cells}
    for mode in ("multitask", "classifier-first"):
        plain, bpda = cells[(mode, "apgd-ce-5")], cells[(mode, "bpda-apgd-ce-5")]
        assert plain.attack.kind == bpda.attack.kind == "apgd"
        assert not plain.adaptive and bpda.adaptive
        assert bpda.attack.params["through"] == "bpda" and bpda.attack.params["steps"] == 5
        assert bpda.threat.eps == pytest.approx(8 / 255) and bpda.threat.steps == 5
        assert plain.adv.n == plain.clean.n == 16
    assert board.worst_case  # the BPDA cells enter the worst case of each (task, mode)


def test_autoattack_runs_every_stage_on_channels_last_images_the_run_gives_it():
    """The run's images are channels-last (``pixels``); torchattacks' FAB views its gradients as contiguous, so on
    a model robust enough that FAB and Square get images (here: a budget too small to fool anything) it crashed."""
    model = _tiny_model("test_efficientnet", 32).eval()
    x = torch.rand(6, 3, 32, 32, generator=torch.Generator().manual_seed(0)).contiguous(
        memory_format=torch.channels_last
    )
    with torch.no_grad():
        y = model(x).argmax(1)
    attack = ATTACKS.get("autoattack")({**_fast(load_attack_config("autoattack")), "eps": 1e-6})
    adv = attack(model, x, y, torch.Generator().manual_seed(1))
    assert adv.shape == x.shape and (adv - x).abs().max() <= 1e-6 + 1e-7
