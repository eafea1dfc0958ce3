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
from ssrbench.pretext.base import PretextTask
from ssrbench.run.cascade import evaluate_cascade, ordered
from ssrbench.run.evaluate import evaluate

from .helpers import error_line, toy_setup


class PullToGray(PretextTask):
    """A deterministic toy defense: the reverse attack pulls every pixel towards gray."""

    name, version, metric_name, higher_is_better = "gray", "1", "none", True

    def build_heads(self, spec):
        return {"none": torch.nn.Identity()}

    def training_loss(self, model, x, generator):
        raise NotImplementedError

    def reverse_loss(self, model, x, generator=None):
        return ((x - 0.5) ** 2).flatten(1).sum(1)

    def pretext_metric(self, model, x, generator=None):
        return torch.zeros(len(x))


class TinyConv(torch.nn.Module):
    def __init__(self, seed: int):
        super().__init__()
        torch.manual_seed(seed)
        self.body = torch.nn.Sequential(
            torch.nn.Conv2d(3, 8, 3, padding=1),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(4),
            torch.nn.Flatten(),
            torch.nn.Linear(128, 10),
        )

    def forward(self, x):
        return self.body(x)


def _attacks():
    pgd = {"eps": 4 / 255, "step_size": 1 / 255, "steps": 3, "random_start": True}
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
