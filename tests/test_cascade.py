"""``run --cascade``: each attack on the images still robust gives the grid's worst case, image for image, for less
attack work; what a cascade did not measure, its file does not hold; bad combinations are exit 2."""

from __future__ import annotations

import inspect
import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from ssrbench.adversarial.adaptive import BPDA
from ssrbench.adversarial.fgsm import FGSM
from ssrbench.adversarial.pgd import PGD
from ssrbench.cli import cli
from ssrbench.core.budget import ReverseConfig
from ssrbench.core.progress import Reporter
from ssrbench.leaderboard import store
from ssrbench.run.cascade import evaluate_cascade, ordered
from ssrbench.run.evaluate import evaluate
from ssrbench.training.cache import ModelCache

from .helpers import KeptBatches, PullToGray, TinyConv, error_line, toy_setup

PGD3 = {"eps": 4 / 255, "step_size": 1 / 255, "steps": 3, "random_start": True}


def _attacks():
    pgd = PGD3
    return {
        "fgsm": FGSM({"eps": 4 / 255}),
        "pgd3": PGD(pgd),
        "pgd3-again": PGD({**pgd, "steps": 2}),
        "bpda3": BPDA({**pgd, "eot_samples": 2}),
    }


def _grid_worst(out) -> tuple[np.ndarray, np.ndarray]:
    defended, undefended = [], []
    for o in out.attacks.values():
        cat = np.concatenate
        defended.append(cat(o.adv_rev_all) if o.adv_rev_all else cat(o.adv_rev))
        if o.from_base:
            defended.append(cat(o.from_base_all) if o.from_base_all else cat(o.from_base))
        undefended.append(cat(o.adv))
    return np.logical_and.reduce(defended), np.logical_and.reduce(undefended)


@pytest.mark.parametrize("random_start", [False, True], ids=["deterministic defense", "random-start defense"])
@pytest.mark.parametrize("with_base", [False, True], ids=["own classifier", "judged against a base"])
def test_the_cascades_worst_case_is_the_grids_image_for_image(random_start, with_base):
    model, x, y = toy_setup(48, model=TinyConv(0))
    y[::3] = (y[::3] + 1) % 10  # some images wrong from the start, so every attack has something to do
    base = TinyConv(1).eval() if with_base else None
    reverse = ReverseConfig(eps=8 / 255, step_size=4 / 255, steps=2, random_start=random_start)
    common = dict(batch_size=16, seed=5, reporter=Reporter(None, quiet=True), description="toy", base=base)
    grid = evaluate(model, PullToGray(), _attacks(), reverse, x, y, **common)
    attacks = _attacks()
    order = ordered(attacks, "cost", reverse_passes=reverse.steps + 1)
    cascade = evaluate_cascade(model, PullToGray(), attacks, order, reverse, x, y, **common)
    defended, undefended = _grid_worst(grid)
    assert cascade.randomized == random_start == grid.randomized
    assert np.array_equal(cascade.defended, defended) and np.array_equal(cascade.undefended, undefended)
    assert np.array_equal(cascade.clean, grid.clean) and np.array_equal(cascade.clean_rev, grid.clean_rev)
    stages = [cascade.stages[n] for n in order]
    assert stages[0].ran_on == len(x) and all(a.ran_on >= b.ran_on for a, b in zip(stages, stages[1:]))
    assert sum(s.fooled_defended for s in stages) == len(x) - defended.sum()
    assert sum(s.fooled_undefended for s in stages) == len(x) - undefended.sum()
    assert sum(s.ran_on for s in stages) < len(attacks) * len(x)  # the saving: later attacks ran on fewer images


def test_the_cost_order_is_cheapest_first_and_given_is_as_listed():
    attacks = _attacks()
    assert ordered(attacks, "given", 3) == list(attacks)
    assert ordered(attacks, "cost", 3) == ["fgsm", "pgd3-again", "pgd3", "bpda3"]  # 1, 2, 3 steps, then adaptive


@pytest.mark.parametrize(
    "args, reason",
    [
        (["--attacks", "fgsm,fgsm-eps16"], "--cascade: the attacks have different threat models"),
        (["--attacks", "fgsm,pgd2", "--attack-eps", "2/255,4/255"], "--cascade with --attack-eps"),
        (["--attacks", "fgsm,pgd2", "--cascade-order", "fastest"], "'fastest' is not one of"),
    ],
)
def test_a_cascade_that_cannot_be_one_is_exit_2(tmp_path, args, reason):
    res = CliRunner().invoke(cli, ["run", "--preset", "smoke", "--cascade", *args, "--out", str(tmp_path / "o.json")])
    assert res.exit_code == 2 and reason in error_line(res), res.output


@pytest.fixture(scope="module")
def cascade_file(tmp_path_factory, cifar_dir):
    """One smoke run with --cascade, both modes (multitask is judged against classifier-first's classifier)."""
    root = tmp_path_factory.mktemp("cascade")
    out = root / "cascade.json"
    args = ["run", "--preset", "smoke", "--tasks", "rotation", "--attacks", "fgsm,pgd2", "--cascade"]
    args += ["--attack-memory", "4MiB"]  # the attacks split to fit (the images are the same: test_attack_memory)
    where = ["--data-dir", str(cifar_dir), "--cache-dir", str(root / "c"), "--out", str(out)]
    res = CliRunner().invoke(cli, [*args, *where, "--progress", "none"])
    assert res.exit_code == 0, res.output
    return out


def test_a_cascade_run_writes_what_it_measured_and_show_reads_it(cascade_file):
    board = store.load(cascade_file)
    assert not board.cells and len(board.cascades) == 2 and board.config["cascade"] == "cost"
    for c in board.cascades:
        assert [s.attack.name for s in c.stages] == ["fgsm", "pgd2"] and c.stages[0].ran_on == c.clean.n
        assert c.clean.n - c.defended.correct == sum(s.fooled_defended for s in c.stages)
    assert len({c.base_weights_sha256 for c in board.cascades}) == 1  # both judged against the same static base
    firsts = [c.stages[0].split for c in board.cascades]  # the first attack runs on every image: split to fit
    assert all(s is not None and s.images_per_call < c.clean.n for s, c in zip(firsts, board.cascades)), firsts
    splits = [s.split for c in board.cascades for s in c.stages if s.split is not None]  # a later one may fit whole
    assert all(s.reason == "memory-budget" and s.budget_bytes == 4 * 2**20 for s in splits), splits
    assert "--attack-memory" not in json.dumps(board.config) and "attack_memory" not in board.config
    shown = CliRunner().invoke(cli, ["show", str(cascade_file)])
    assert shown.exit_code == 0 and "cascade worst case" in shown.output and "ran on" in shown.output, shown.output


@pytest.mark.parametrize(
    "where, change, reason",
    [
        ("stages.1.fooled_defended", 1, "fooled"),
        ("stages.1.ran_on", 10_000, "ran on more images"),
        ("stages.0.ran_on", -1, "not on every one"),
    ],
)
def test_a_doctored_cascade_is_refused(cascade_file, tmp_path, where, change, reason):
    doc = json.loads(cascade_file.read_text())
    item = doc["cascades"][0]
    *path, last = where.split(".")
    for key in path:
        item = item[int(key)] if key.isdigit() else item[key]
    item[last] += change
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    with pytest.raises(store.LeaderboardError, match=reason):
        store.load(bad)


def test_a_cascade_file_is_shown_on_the_site_and_never_merged(cascade_file, tmp_path):
    res = CliRunner().invoke(cli, ["site", str(cascade_file), "--out", str(tmp_path / "site")])
    assert res.exit_code == 0, res.output
    pages = "".join(p.read_text(encoding="utf-8") for p in (tmp_path / "site").rglob("*.html"))
    assert "cascade worst case" in pages and "cascade attacks" in pages
    other = tmp_path / "other.json"
    other.write_bytes(cascade_file.read_bytes())
    res = CliRunner().invoke(cli, ["merge", str(cascade_file), str(other), "--out", str(tmp_path / "m.json")])
    assert res.exit_code == 2 and "holds a cascade" in error_line(res)


def test_adaptive_with_cascade_sets_the_sanity_probe_aside_and_orders_by_cost():
    from ssrbench.adversarial.base import ATTACKS
    from ssrbench.cli.run_command import command_spec, run, run_spec
    from ssrbench.core.presets import preset_fields

    spec = command_spec(["ssrbench", "run", "--preset", "smoke", "--adaptive", "--cascade"])
    assert spec.cascade == "cost" and "sanity-pgd10-eps128" not in [a.name for a in spec.attacks]
    attacks = {a.name: ATTACKS.get(a.kind)(a.params) for a in spec.attacks}
    order = ordered(attacks, "cost", spec.tasks[0].reverse.steps)
    assert order[:3] == ["fgsm", "pgd2", "pgd10"] and order.index("bpda-pgd10") < order.index("unrolled-pgd10")
    if "autoattack" in order:  # with its extra: AutoAttack's four parts cost more than APGD-CE alone
        assert order.index("apgd-ce") < order.index("autoattack")
    ctx = run.make_context("run", ["--preset", "smoke", "--adaptive", "--cascade"])
    keep = set(inspect.signature(run_spec).parameters) | {f.name for f in preset_fields() if f.name != "backbone"}
    notes = run_spec(**{k: v for k, v in ctx.params.items() if k in keep})[1]
    assert any("--cascade leaves out the sanity probe sanity-pgd10-eps128" in n for n in notes), notes


def test_cascade_order_without_cascade_is_exit_2(tmp_path):
    res = CliRunner().invoke(
        cli, ["run", "--preset", "smoke", "--cascade-order", "given", "--out", str(tmp_path / "o")]
    )
    assert res.exit_code == 2 and "--cascade-order orders a cascade: add --cascade" in error_line(res)


def test_a_batch_fooled_whole_still_advances_the_later_attacks_streams(tmp_path):
    """Batches of two, the first four images wrong from the start: two batches have nothing left for the second
    attack, whose random starts must still meet the next batch as in the grid."""
    model, x, y = toy_setup(24, model=TinyConv(0))
    y[:4] = (y[:4] + 1) % 10
    reverse = ReverseConfig(eps=8 / 255, step_size=4 / 255, steps=2, random_start=True)

    def attacks():
        return {"fgsm16": FGSM({"eps": 16 / 255}), "pgd3": PGD({**PGD3, "steps": 3})}

    common = dict(batch_size=2, seed=5, reporter=Reporter(None, quiet=True), description="toy")
    grid_kept, cascade_kept = ModelCache(tmp_path / "grid"), ModelCache(tmp_path / "cascade")
    grid = evaluate(model, PullToGray(), attacks(), reverse, x, y, kept=KeptBatches(grid_kept), **common)
    order = ["fgsm16", "pgd3"]
    cascade = evaluate_cascade(
        model, PullToGray(), attacks(), order, reverse, x, y, kept=KeptBatches(cascade_kept), **common
    )
    first = grid.attacks["fgsm16"]
    standing = np.concatenate(first.adv_rev_all) | np.concatenate(first.adv)  # after the first attack
    assert (~standing.reshape(-1, 2).any(1)).any(), "no batch was fooled whole: the test would test nothing"
    defended, undefended = _grid_worst(grid)
    assert np.array_equal(cascade.defended, defended) and np.array_equal(cascade.undefended, undefended)
    # and every stream of the second attack ends where the grid's does (a random start rarely changes a flag)
    ends = [kept.load_progress("k")["streams"] for kept in (grid_kept, cascade_kept)]
    for name in ("attack/pgd3", "reverse/pgd3", "redraw/pgd3"):
        assert torch.equal(ends[0][name], ends[1][name]), name


def test_a_killed_cascade_resumes_after_its_last_batch_with_the_numbers_of_an_uninterrupted_one(tmp_path):
    model, x, y = toy_setup(48, model=TinyConv(0))
    y[::3] = (y[::3] + 1) % 10
    reverse = ReverseConfig(eps=8 / 255, step_size=4 / 255, steps=2, random_start=True)
    quiet = Reporter(None, quiet=True)
    common = dict(batch_size=16, seed=5, reporter=quiet, description="toy", base=TinyConv(1).eval())
    order = ordered(_attacks(), "cost", reverse.steps)
    whole = evaluate_cascade(model, PullToGray(), _attacks(), order, reverse, x, y, **common)
    cache = ModelCache(tmp_path)

    def cascade(kept, order=order):
        return evaluate_cascade(model, PullToGray(), _attacks(), order, reverse, x, y, kept=kept, **common)

    with pytest.raises(KeyboardInterrupt):
        cascade(KeptBatches(cache, stop_after=2))
    rest = KeptBatches(cache)
    resumed = cascade(rest)
    assert resumed.resumed_after == 32 and rest.saves == 1  # only the third batch was attacked again
    assert np.array_equal(resumed.defended, whole.defended) and np.array_equal(resumed.undefended, whole.undefended)
    assert np.array_equal(resumed.clean_rev, whole.clean_rev)
    strip = lambda c: [(s.ran_on, s.fooled_defended, s.fooled_undefended) for s in c.stages.values()]  # noqa: E731
    assert strip(resumed) == strip(whole)
    with pytest.warns(UserWarning, match="do not fit this cascade"):  # another order: kept batches not used
        other = cascade(KeptBatches(cache), order=order[::-1])
    assert other.resumed_after == 0
