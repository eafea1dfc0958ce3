"""Attacks that fit in memory (``run --attack-memory``, CUDA out of memory): an attack call split into chunks gives the
unsplit call's images, every flag of the evaluation the same; the split is recorded, never hashed; bad sizes exit 2."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ssrbench.adversarial.adaptive import BPDA, Unrolled
from ssrbench.adversarial.fgsm import FGSM
from ssrbench.adversarial.pgd import PGD
from ssrbench.cli import cli
from ssrbench.core.budget import ReverseConfig
from ssrbench.core.linf import drawn_as_batch, random_start_point
from ssrbench.core.progress import Reporter
from ssrbench.defense.reverse import Defense
from ssrbench.leaderboard.records import AttackSplit
from ssrbench.run.cascade import evaluate_cascade, ordered
from ssrbench.run.evaluate import evaluate
from ssrbench.run.memory import AttackMemory, parse_bytes
from ssrbench.run.spec import recorded_config
from ssrbench.run.units import split_notes

from .helpers import PullToGray, TinyConv, error_line, toy_setup

PGD3 = {"eps": 4 / 255, "step_size": 1 / 255, "steps": 3, "random_start": True}


def _attacks():
    return {
        "fgsm": FGSM({"eps": 4 / 255}),
        "pgd3": PGD(PGD3),
        "bpda3": BPDA({**PGD3, "eot_samples": 2}),
        "unrolled2": Unrolled({**PGD3, "steps": 2}),  # second order: the one that needs the memory
    }


def _every_flag(out) -> dict[str, np.ndarray]:
    flags = {"clean": out.clean, "clean_rev": out.clean_rev, "pretext_clean": out.pretext_clean}
    for name, o in out.attacks.items():
        for field in ("adv", "adv_rev", "adv_rev_fixed", "adv_rev_all", "to_base", "from_base", "from_base_all"):
            if getattr(o, field):
                flags[f"{name}/{field}"] = np.concatenate(getattr(o, field))
    return flags


def _setup(random_start: bool):
    model, x, y = toy_setup(24, model=TinyConv(0))
    y[::3] = (y[::3] + 1) % 10
    reverse = ReverseConfig(eps=8 / 255, step_size=4 / 255, steps=2, random_start=random_start)
    common = dict(
        batch_size=12, seed=3, reporter=Reporter(None, quiet=True), description="toy", base=TinyConv(1).eval()
    )
    return model, x, y, reverse, common


@pytest.mark.parametrize("random_start", [False, True], ids=["deterministic defense", "random-start defense"])
def test_attacks_split_to_a_budget_give_the_unsplit_evaluation_image_for_image(random_start):
    model, x, y, reverse, common = _setup(random_start)
    whole = evaluate(model, PullToGray(), _attacks(), reverse, x, y, **common)
    memory = AttackMemory(600_000)
    split = evaluate(model, PullToGray(), _attacks(), reverse, x, y, memory=memory, **common)
    assert not whole.splits
    a, b = _every_flag(whole), _every_flag(split)
    assert a.keys() == b.keys() and len(a) > 3 + 4 * 3
    assert all(np.array_equal(a[k], b[k]) for k in a), [k for k in a if not np.array_equal(a[k], b[k])]
    assert {o.zero_grad == s.zero_grad for o, s in zip(whole.attacks.values(), split.attacks.values())} == {True}
    # the budget split the second-order attack (and the others' estimates are on record where they split too)
    unrolled = split.splits["unrolled2"]
    assert unrolled.reason == "memory-budget" and 1 <= unrolled.images_per_call < 12
    assert unrolled.budget_bytes == 600_000 and unrolled.per_image_bytes > 0
    per_image = {name: s.per_image_bytes for name, s in split.splits.items()}
    assert all(per_image["unrolled2"] > v for k, v in per_image.items() if k != "unrolled2"), per_image


class RunsOutAbove(PGD):
    """PGD on a device that holds ``limit`` images per call: more raise CUDA's out-of-memory error."""

    limit = 5

    def perturb(self, model, x, y, generator, **kw):
        if len(x) > self.limit:
            raise torch.cuda.OutOfMemoryError(f"CUDA out of memory (simulated: {len(x)} images)")
        return super().perturb(model, x, y, generator, **kw)


def test_out_of_memory_halves_the_call_until_it_fits_with_the_same_images():
    model, x, y, reverse, common = _setup(True)
    whole = evaluate(model, PullToGray(), {"pgd3": PGD(PGD3)}, reverse, x, y, **common)
    tight = evaluate(model, PullToGray(), {"pgd3": RunsOutAbove(PGD3)}, reverse, x, y, **common)
    a, b = _every_flag(whole), _every_flag(tight)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
    assert tight.splits["pgd3"].reason == "cuda-out-of-memory"
    assert tight.splits["pgd3"].images_per_call == 3  # 12 -> 6 -> 3: the first chunk that fits


def test_one_image_that_does_not_fit_is_the_error_it_was():
    model, x, y, reverse, common = _setup(False)
    attack = RunsOutAbove(PGD3)
    attack.limit = 0
    with pytest.raises(torch.cuda.OutOfMemoryError, match="simulated: 1 images"):
        evaluate(model, PullToGray(), {"pgd3": attack}, reverse, x, y, **common)


def test_a_cascade_split_to_a_budget_is_the_unsplit_cascade():
    model, x, y, reverse, common = _setup(True)
    attacks = _attacks()
    order = ordered(attacks, "cost", reverse.steps)
    whole = evaluate_cascade(model, PullToGray(), attacks, order, reverse, x, y, **common)
    split = evaluate_cascade(
        model, PullToGray(), _attacks(), order, reverse, x, y, memory=AttackMemory(600_000), **common
    )
    assert np.array_equal(whole.defended, split.defended) and np.array_equal(whole.undefended, split.undefended)
    assert [vars(s) | {"seconds": 0} for s in whole.stages.values()] == [
        vars(s) | {"seconds": 0} for s in split.stages.values()
    ]
    assert "unrolled2" in split.splits and not whole.splits


def test_a_chunk_of_a_chunk_draws_as_the_outermost_batch():
    x = torch.rand(10, 3, 4, 4)
    full = random_start_point(x, 0.1, torch.Generator().manual_seed(1))
    outer = torch.tensor([1, 4, 5, 8, 9])
    with drawn_as_batch(outer, 10), drawn_as_batch(torch.tensor([2, 3]), 5):
        picked = random_start_point(x[[5, 8]], 0.1, torch.Generator().manual_seed(1))
    assert torch.equal(picked, full[[5, 8]])


@pytest.mark.parametrize(
    "text, size", [("4GiB", 4 * 2**30), ("512MiB", 512 * 2**20), ("2.5GB", 2_500_000_000), ("1000", 1000)]
)
def test_memory_sizes_read_as_people_write_them(text, size):
    assert parse_bytes(text) == size


@pytest.mark.parametrize(
    "value, reason",
    [
        ("-1GiB", "'-1GiB' is not a memory size: write it as 4GiB"),
        ("0", "'0' is not a memory size of at least one byte"),
        ("lots", "'lots' is not a memory size"),
        ("4 parsecs", "'4 parsecs' is not a memory size"),
    ],
)
def test_a_bad_memory_budget_is_exit_2_naming_it(tmp_path, value, reason):
    res = CliRunner().invoke(cli, ["run", "--preset", "smoke", "--attack-memory", value, "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "--attack-memory" in error_line(res) and reason in error_line(res), res.output


def test_the_budget_is_how_the_work_is_cut_not_the_config():
    from ssrbench.cli.run_command import command_spec

    plain = command_spec(["ssrbench", "run", "--preset", "smoke"])
    budget = command_spec(["ssrbench", "run", "--preset", "smoke", "--attack-memory", "1MiB"])
    assert budget.attack_memory == 2**20 and plain.attack_memory is None
    assert recorded_config(budget) == recorded_config(plain)


def test_a_chunk_fitted_on_a_small_call_still_splits_and_records_a_larger_one():
    """A cascade's first call of an attack may be on the few images still robust: the budget's chunk is not theirs."""
    model, x, y, reverse, _ = _setup(False)
    x = x.float() / 255
    attack, memory = Unrolled({**PGD3, "steps": 2}), AttackMemory(600_000)
    defense = Defense(model, PullToGray(), reverse)
    memory("u", attack, model, x[:2], y[:2], torch.Generator().manual_seed(0), defense)
    assert "u" not in memory.splits  # two images fit
    whole = attack(model, x, y, torch.Generator().manual_seed(1), defense=defense)
    split = memory("u", attack, model, x, y, torch.Generator().manual_seed(1), defense)
    assert torch.equal(whole, split) and memory.splits["u"].images_per_call == 2


def test_a_budget_under_one_image_is_said_in_the_notes():
    over = AttackSplit(
        images_per_call=1, reason="memory-budget", budget_bytes=2**20, per_image_bytes=2**20, fixed_bytes=1
    )
    fits = over.model_copy(update={"images_per_call": 3, "budget_bytes": 4 * 2**20})
    notes = split_notes("multitask/inpaint", {"unrolled": over, "bpda": fits})
    assert notes == [
        "multitask/inpaint/unrolled: one image of the attack keeps about 1.0 MiB for autograd, over --attack-memory "
        "1.0 MiB: it ran one image per call"
    ]
