"""The reference engine of the ``autoattack`` kind (pyautoattack, the authors' code): the same images and robust
accuracy, stage by stage, as the package called directly; reproducible from the cell's generator and leaving the
global RNG alone; in all three positions (classifier, BPDA, EOT through a randomised defense); and which
committed leaderboards ran the older engine. A small convolutional model keeps the published settings
(100 iterations, 9 targets) affordable; only Square's queries are cut, on both sides alike."""

from __future__ import annotations

import json
import logging
import re
import sys

import pyautoattack
import pytest
import torch
from torch import nn

from ssrbench.adversarial import autoattack as lib
from ssrbench.core.budget import ReverseConfig
from ssrbench.defense.reverse import Defense
from ssrbench.leaderboard import store
from ssrbench.pretext.rotation import RotationTask
from ssrbench.run.config import load_attack_config
from ssrbench.run.testing import _tiny_model

from .conftest import REPO

EPS, QUERIES = 4 / 255, 100  # at 4/255 this model loses images to APGD-CE and to APGD-T: more than one stage counts


def _small(n=16):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(8 * 64, 10)).eval()
    x = torch.rand(n, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = model(x).argmax(1)
    y[0] = (y[0] + 1) % 10  # one image misclassified before any attack
    return model, x, y


def _cells_seed(seed: int) -> int:
    return int(torch.randint(0, 2**31 - 1, (1,), generator=torch.Generator().manual_seed(seed)))


def test_the_reference_engine_is_pyautoattack_called_directly_stage_by_stage(caplog):
    model, x, y = _small()
    attack = lib.AutoAttack({"eps": EPS, "n_queries": QUERIES})
    assert attack.params.engine == "reference" and attack.version == "2"
    state = torch.random.get_rng_state()
    ours = attack(model, x, y, torch.Generator().manual_seed(7))
    assert torch.equal(torch.random.get_rng_state(), state), "pyautoattack reseeded the global RNG"
    assert torch.equal(ours, attack(model, x, y, torch.Generator().manual_seed(7))), "not reproducible"
    # ...and the seed is the cell's: the package given the seed drawn from the same generator makes the same images
    stages = {k.removeprefix("robust_"): v for k, v in attack.stats.items() if k.startswith("robust_")}

    caplog.set_level(logging.DEBUG, logger="auto-attack")  # the package's own count after each stage
    direct = pyautoattack.AutoAttack(model, norm="Linf", eps=EPS, version="standard", seed=_cells_seed(7))
    direct.square.n_queries = QUERIES
    theirs, predicted = direct.run_standard_evaluation(x, y, batch_size=len(x))
    logged = {
        m.group(1).lower(): float(m.group(2)) / 100
        for r in caplog.records
        if (m := re.match(r"robust accuracy after (\S+): ([\d.]+)%", r.getMessage()))
    }

    assert torch.equal(ours, theirs)
    with torch.no_grad():
        robust = (model(ours).argmax(1) == y).float().mean().item()
    assert robust == (predicted == y).float().mean().item() == stages["square"]
    assert list(stages) == ["apgd-ce", "apgd-t", "fab-t", "square"] and stages == pytest.approx(logged, abs=1e-4)
    assert 1 > stages["apgd-ce"] > stages["square"] > 0  # the test exercises more than the first stage


def test_the_torchattacks_engine_counts_its_stages_too():
    model, x, y = _small()
    attack = lib.AutoAttack({"eps": EPS, "n_queries": QUERIES, "steps": 20, "engine": "torchattacks"})
    adv = attack(model, x, y, torch.Generator().manual_seed(7))
    with torch.no_grad():
        robust = (model(adv).argmax(1) == y).float().mean().item()
    counts = [attack.stats[f"robust_{s}"] for s in lib.STAGES["standard"]]
    assert counts == sorted(counts, reverse=True) and counts[-1] == robust < counts[0] < 1


def _tiny(n=4):
    torch.manual_seed(0)
    model = _tiny_model("test_efficientnet", 32).eval()
    x = torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = model(x).argmax(1)
    return model, x, y


def test_the_reference_engine_through_bpda_is_the_classifier_s_when_the_defense_does_nothing():
    model, x, y = _tiny()
    task = RotationTask()
    defense = Defense(task.attach(model), task, ReverseConfig(eps=0.0, steps=0))  # purify(x) == x
    model.eval()
    p = {"eps": 16 / 255, "steps": 3, "n_queries": 20}
    plain = lib.AutoAttack(p)
    a = plain(model, x, y, torch.Generator().manual_seed(3))
    before = sys.gettrace()
    tracer = lambda frame, event, arg: None  # noqa: E731 - a tracer that pyautoattack's dynamic check must not drop
    sys.settrace(tracer)
    try:
        through = lib.AutoAttack(p | {"through": "bpda"})
        b = through(model, x, y, torch.Generator().manual_seed(3), defense=defense)
        assert sys.gettrace() is tracer
    finally:
        sys.settrace(before)
    assert through.adaptive and not plain.adaptive
    assert torch.equal(a, b) and plain.stats == through.stats


def test_the_rand_version_draws_a_randomised_defense_eot_iter_times_per_gradient(monkeypatch):
    model, x, y = _tiny()
    task = RotationTask()
    defense = Defense(
        task.attach(model), task, ReverseConfig(eps=8 / 255, step_size=2 / 255, steps=2, random_start=True)
    )
    model.eval()
    calls = []
    purify = defense.purify
    monkeypatch.setattr(defense, "purify", lambda z, g=None: calls.append(len(z)) or purify(z, g))
    attack = lib.AutoAttack({"version": "rand", "steps": 2, "eot_iter": 3, "through": "bpda"})
    with pytest.warns(UserWarning, match="pyautoattack: it seems to be a dynamic defense"):  # its checks, said once
        adv = attack(model, x, y, torch.Generator().manual_seed(0), defense=defense)
    assert attack.stats["eot_iter"] == 3 and set(attack.stats) == {"eot_iter", "robust_apgd-ce", "robust_apgd-dlr"}
    assert len(calls) >= 3 * 3  # APGD-CE's first gradient and two iterations, 3 draws each
    assert (adv - x).abs().max() <= 8 / 255 + 1e-6
    again = lib.AutoAttack(attack.params)(model, x, y, torch.Generator().manual_seed(0), defense=defense)
    assert torch.equal(adv, again)  # the defense's draws come from the cell's generator too


def test_configs_record_the_engine_and_committed_leaderboards_that_lack_it_ran_torchattacks():
    engines = {"autoattack": "reference", "apgd-ce": "reference", "autoattack-torchattacks": "torchattacks"}
    for name, engine in engines.items():
        assert load_attack_config(name).params["engine"] == engine  # in the params, so in every cell and hash
    page = (REPO / "docs" / "concepts" / "attacks.md").read_text()
    listed = set(re.findall(r"`(leaderboards/[\w/.-]+\.json)`", page.split("## Which implementation")[1]))
    found = set()
    for path in sorted((REPO / "leaderboards").rglob("*.json")):
        doc = json.loads(path.read_text())
        if any(a.get("kind") in ("apgd", "autoattack") for a in doc["config"]["attacks"]):
            board = store.load(path)  # still loads
            library = [c.attack for c in board.cells if c.attack.kind in ("apgd", "autoattack")]
            assert library and all(a.version == "1" and "engine" not in a.params for a in library), path
            found.add(str(path.relative_to(REPO)))
    assert listed == found
