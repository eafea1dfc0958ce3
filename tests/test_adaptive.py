"""Adaptive attacks see the defense; the benchmark reports the worst case and flags flattering setups."""

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from ssrbench.adversarial.adaptive import BPDA, DetectorAware, SSLAware, Unrolled
from ssrbench.adversarial.pgd import PGD, linf_pgd
from ssrbench.core.budget import ThreatModel
from ssrbench.defense.gate import gate_score
from ssrbench.defense.reverse import Defense
from ssrbench.leaderboard import store
from ssrbench.leaderboard.robustness import sanity_warnings, worst_case
from ssrbench.leaderboard.schema import Accuracy
from ssrbench.models.ssr_model import SSRModel
from ssrbench.pretext.rotation import RotationTask
from ssrbench.run.config import ReverseConfig

from .conftest import TINY_BACKBONE
from .helpers import FIXTURE

BUDGET = {"eps": 8 / 255, "step_size": 2 / 255, "steps": 10, "random_start": False}


@pytest.fixture(scope="module")
def trained():
    """A tiny model that really classifies: 4 classes told apart by a colour tint, learnt in a few steps."""
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(0)
    y = torch.arange(64) % 4
    tint = torch.tensor([[0.3, 0, 0], [0, 0.3, 0], [0, 0, 0.3], [0.3, 0.3, 0]])[y][:, :, None, None]
    x = (0.35 * torch.rand(64, 3, 32, 32, generator=g) + tint).clamp(0, 1)
    task = RotationTask()
    model = task.attach(SSRModel(TINY_BACKBONE, (0.5,) * 3, (0.25,) * 3, 4))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(60):
        loss = F.cross_entropy(model(x), y) + task.training_loss(model, x, g).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    assert (model(x).argmax(1) == y).float().mean() > 0.9  # the premise of the comparisons below
    return model, task, x, y


def _defended_acc(defense, x_adv, y):
    with torch.no_grad():
        return (defense.model(defense.purify(x_adv)).argmax(1) == y).float().mean().item()


def test_adaptive_attacks_do_no_worse_than_the_blind_one(trained):
    """A small budget keeps the blind attack off the floor (at 8/255 every attack reaches ~0% on this toy
    model and the comparison would say nothing); here the margins are several images wide."""
    model, task, x, y = trained
    defense = Defense(model, task, ReverseConfig(eps=4 / 255, step_size=1 / 255, steps=5))
    small = {"eps": 1 / 255, "step_size": 0.25 / 255, "steps": 10, "random_start": False}
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    blind = _defended_acc(defense, PGD(small)(model, x, y, gen()), y)
    bpda = _defended_acc(defense, BPDA({**small, "eot_samples": 1})(model, x, y, gen(), defense=defense), y)
    unrolled = _defended_acc(defense, Unrolled({**small, "eot_samples": 1})(model, x, y, gen(), defense=defense), y)
    assert 0.3 < blind < _defended_acc(defense, x, y)  # not degenerate: the blind attack works, and is not at the floor
    assert bpda <= blind and unrolled <= blind


def test_unrolled_defense_matches_and_passes_gradients(trained):
    model, task, x, _ = trained
    defense = Defense(model, task, ReverseConfig(eps=8 / 255, step_size=2 / 255, steps=4))
    z = x[:8].clone().requires_grad_(True)
    purified = defense.purify_differentiably(z)
    assert torch.allclose(purified, defense.purify(x[:8]), atol=1e-6)  # the same forward values as the defense
    (g,) = torch.autograd.grad(model(purified).logsumexp(1).sum(), z)
    assert (g.flatten(1).abs().sum(1) > 0).all()  # non-zero for every image: the sign surrogate works


def test_eot_with_one_sample_equals_the_plain_attack(trained):
    model, task, x, y = trained
    defense = Defense(model, task, ReverseConfig(eps=8 / 255, step_size=2 / 255, steps=3, random_start=True))
    assert defense.randomized
    eot1 = BPDA({**BUDGET, "steps": 3, "eot_samples": 1})(
        model, x[:8], y[:8], torch.Generator().manual_seed(5), defense=defense
    )
    gen = torch.Generator().manual_seed(5)

    def plain(z):  # BPDA written out by hand: one draw of the defense per step
        with torch.no_grad():
            p = defense.purify(z.detach(), gen)
        return F.cross_entropy(model(z + (p - z).detach()), y[:8], reduction="none")

    ref = linf_pgd(
        plain, x[:8], eps=8 / 255, step_size=2 / 255, steps=3, random_start=False, maximize=True, generator=gen
    )
    assert torch.equal(eot1, ref)
    eot3 = BPDA({**BUDGET, "steps": 3, "eot_samples": 3})(
        model, x[:8], y[:8], torch.Generator().manual_seed(5), defense=defense
    )
    assert not torch.equal(eot1, eot3)  # more samples do change a randomised defense's gradient


def test_adaptive_attack_needs_the_defense(trained):
    model, _, x, y = trained
    with pytest.raises(ValueError, match="needs the defense"):
        SSLAware(BUDGET)(model, x, y, torch.Generator())


def test_pgd_keeps_each_images_first_success():
    """``keep``: an image that reached the goal returns that iterate; the others step as plain PGD."""
    x = torch.full((3, 1, 2, 2), 0.5)
    loss = lambda z: z.flatten(1).sum(1)  # noqa: E731 - ascent pushes every pixel up by a step each time
    kw = dict(eps=0.3, step_size=0.1, steps=3, random_start=False, maximize=True)
    plain = linf_pgd(loss, x, **kw)
    goal = lambda z: z.flatten(1).mean(1) >= torch.tensor([0.5, 0.65, 9.0])  # noqa: E731 - start, step 2, never
    kept = linf_pgd(loss, x, **kw, keep=goal)
    assert torch.allclose(kept[0], x[0]) and torch.allclose(kept[1], x[1] + 0.2) and torch.equal(kept[2], plain[2])


def _gated(defense, threshold):
    return Defense(defense.model, defense.task, defense.reverse, gate=threshold)


def test_detector_aware_attack_fools_the_classifier_behind_a_shut_gate(trained):
    model, task, x, y = trained
    base = Defense(model, task, ReverseConfig(eps=4 / 255, step_size=1 / 255, steps=5))
    small = {"eps": 2 / 255, "step_size": 0.5 / 255, "steps": 10, "random_start": False}
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    with torch.no_grad():
        clean_scores = gate_score(task, model, x, None)
    threshold = float(clean_scores.quantile(0.95))
    blind = PGD(small)(model, x, y, gen())
    aware = DetectorAware(small)(model, x, y, gen(), defense=_gated(base, threshold))

    def fooled_unseen(z):
        with torch.no_grad():
            return ((model(z).argmax(1) != y) & (gate_score(task, model, z, None) <= threshold)).sum().item()

    assert 0 < fooled_unseen(blind) < fooled_unseen(aware)  # the gate catches some of the blind attack's images
    # a gate that never fires: the attack is PGD that keeps its first success, so it fools every image PGD does
    never = DetectorAware(small)(model, x, y, gen(), defense=_gated(base, float("inf")))
    with torch.no_grad():
        assert ((model(blind).argmax(1) != y) <= (model(never).argmax(1) != y)).all()
    # a gate that always fires: only the task loss is descended, the gate cannot be shut
    always = DetectorAware(small)(model, x, y, gen(), defense=_gated(base, float("-inf")))
    with torch.no_grad():
        assert (task.reverse_loss(model, always) < task.reverse_loss(model, x)).float().mean() > 0.9


def test_detector_aware_attack_needs_a_gate(trained):
    model, task, x, y = trained
    with pytest.raises(ValueError, match="needs a gated defense"):
        DetectorAware(BUDGET)(model, x, y, torch.Generator(), defense=Defense(model, task, ReverseConfig()))


def test_masked_gradients_are_measured():
    class Rounding(nn.Module):  # a "defense" that hides its gradient: round() has zero derivative
        def forward(self, x):
            return x.round().flatten(1)[:, :10] * 10

    pgd = PGD(BUDGET)
    pgd(Rounding().eval(), torch.rand(4, 3, 8, 8), torch.zeros(4, dtype=torch.long), torch.Generator())
    assert pgd.stats["zero_grad_fraction"] == 1.0


def _cell(
    c, attack, flags_adv, flags_rev, adaptive=False, params=None, kind=None, zero=None, probe=False, threat="linf"
):
    params = params if params is not None else c.attack.params
    a = c.attack.model_copy(update={"name": attack, "kind": kind or c.attack.kind, "params": params})
    declared = (
        None
        if threat is None
        else ThreatModel(norm=threat, eps=params["eps"], steps=params.get("steps", 1), probe=probe)
    )
    return c.model_copy(
        update={
            "attack": a,
            "adv": Accuracy.from_flags(np.array(flags_adv, bool)),
            "adv_rev": Accuracy.from_flags(np.array(flags_rev, bool)),
            "adaptive": adaptive,
            "zero_grad_fraction": zero,
            "threat": declared,
        }
    )


def _board_with(cells):
    b = store.load(FIXTURE)
    return b.model_copy(update={"cells": cells})


def test_worst_case_is_the_per_image_minimum():
    base = store.load(FIXTURE).cells[0]
    n = base.adv.n
    f1 = np.zeros(n, bool)
    f1[:6] = True  # noqa: E702
    f2 = np.zeros(n, bool)
    f2[3:9] = True  # noqa: E702
    board = _board_with(
        [_cell(base, "a1", f1, f1, params={"eps": 0.03}), _cell(base, "a2", f2, f2, params={"eps": 0.03})]
    )
    wc = worst_case(board)
    assert len(wc) == 1 and wc[0].defended.correct == 3  # images 3, 4, 5 survive both
    assert wc[0].defended.percent < min(c.adv_rev.percent for c in board.cells)


def test_each_sanity_check_fires_on_a_constructed_case():
    base = store.load(FIXTURE).cells[0]
    n = base.adv.n
    some = np.zeros(n, bool)
    some[:2] = True  # noqa: E702
    many = np.zeros(n, bool)
    many[:10] = True  # noqa: E702
    cells = [
        _cell(base, "pgd2", some, some, params={"eps": 8 / 255, "steps": 2}, kind="pgd", zero=0.5),
        _cell(base, "pgd20", many, many, params={"eps": 8 / 255, "steps": 20}, kind="pgd"),  # stronger, yet higher
        _cell(base, "huge", many, many, params={"eps": 0.5, "steps": 10}, kind="pgd", probe=True),  # yet 60% left
        _cell(base, "bpda", some, many, adaptive=True, params={"eps": 8 / 255, "steps": 10}, kind="bpda"),
    ]
    text = "\n".join(sanity_warnings(_board_with(cells)))
    assert "zero or non-finite input gradient" in text
    assert "should not rise with budget" in text
    assert "should reach about 0%" in text
    assert "adaptive bpda" in text and "not working" in text
    clean = [
        _cell(base, "pgd2", many, many, params={"eps": 8 / 255, "steps": 2}, kind="pgd"),
        _cell(base, "pgd20", some, some, params={"eps": 8 / 255, "steps": 20}, kind="pgd"),
    ]
    assert sanity_warnings(_board_with(clean)) == []


def test_checks_read_the_declared_threat_model_not_parameter_names():
    """An L2 attack with a large eps is no probe, a plugin's `epsilon` field is no reason to drop out, and
    an attack that declares nothing is said to be in no budget check -- but stays in the worst case."""
    base = store.load(FIXTURE).cells[0]
    n = base.adv.n
    some = np.zeros(n, bool)
    some[:2] = True  # noqa: E702
    many = np.zeros(n, bool)
    many[:10] = True  # noqa: E702
    l2 = _cell(base, "l2-pgd", many, many, params={"eps": 0.5, "steps": 10}, kind="l2pgd", threat="l2")
    plugin = _cell(base, "mine", some, some, params={"epsilon": 0.03}, kind="mine", threat=None)
    none = np.zeros(n, bool)
    probe = _cell(base, "probe", none, none, params={"eps": 0.5, "steps": 10}, kind="pgd", probe=True)
    (wc,) = worst_case([l2, plugin, probe])
    assert wc.attacks == ["l2-pgd", "mine"]  # the probe alone is left out
    text = "\n".join(sanity_warnings([l2, plugin, probe]))
    assert "should reach about 0%" not in text  # the L2 attack is not taken for a probe
    assert "mine: the attack declares no threat model" in text
    # more steps at the same L2 budget but higher accuracy: compared only within one norm
    l2_more = _cell(base, "l2-pgd20", many, many, params={"eps": 0.5, "steps": 20}, kind="l2pgd", threat="l2")
    l2_less = _cell(base, "l2-pgd5", some, some, params={"eps": 0.5, "steps": 5}, kind="l2pgd", threat="l2")
    assert "should not rise with budget" in "\n".join(sanity_warnings([l2_more, l2_less]))
    linf_same_kind = _cell(base, "linf", some, some, params={"eps": 0.5, "steps": 5}, kind="l2pgd")
    assert "should not rise with budget" not in "\n".join(sanity_warnings([l2_more, linf_same_kind]))


@pytest.mark.parametrize("kind", ["bpda", "unrolled", "ssl-aware", "detector-aware"])
def test_adaptive_kinds_keep_the_attack_contract(kind):
    from ssrbench.adversarial.base import ATTACKS
    from ssrbench.run.testing import check_attack_contract

    check_attack_contract(ATTACKS.get(kind), {**BUDGET, "steps": 2})
