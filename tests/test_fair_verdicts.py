"""Fair verdicts: the static base is attacked as the defense is (its own attacks, AutoAttack, transfer both
ways), a randomised defense is read both ways, and many tests are Holm-corrected."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from ssrbench.cli import cli
from ssrbench.core.stats import holm
from ssrbench.leaderboard import store
from ssrbench.leaderboard.compare import compare, reverse_effects
from ssrbench.leaderboard.records import Accuracy, RandomizedDefense, Transfer
from ssrbench.leaderboard.schema import Cell
from ssrbench.studies.robust_base import markdown

from .conftest import consistent_board
from .helpers import FIXTURE, TINY, committed, make_cifar, prose

N = 200


def first(k: int) -> np.ndarray:
    flags = np.zeros(N, bool)
    flags[:k] = True
    return flags


def acc(k: int) -> Accuracy:
    return Accuracy.from_flags(first(k))


TEMPLATE = store.load(FIXTURE)


def cell(
    mode: str,
    attack: str,
    *,
    adv: int,
    adv_rev: int,
    adaptive: bool = False,
    transfer: Transfer | None = None,
    all_draws: int | None = None,
    base_sha: str | None = None,
    clean: int = 120,
) -> Cell:
    """A cell of N images whose correct images are the first ``k`` of each evaluation (so they nest)."""
    t = TEMPLATE.cells[0]
    kind = "bpda" if adaptive else "fgsm"
    randomized = None
    if all_draws is not None:
        randomized = RandomizedDefense(
            draws=5,
            eot_samples=4 if adaptive else None,
            fixed_draw=acc(adv_rev),
            all_draws=acc(all_draws),
            clean_fixed_draw=acc(clean),
            clean_all_draws=acc(clean),
        )
    return Cell.model_validate(
        {
            **t.model_dump(),
            "mode": mode,
            "adaptive": adaptive,
            "reverse_randomized": randomized is not None,
            "attack": {**t.attack.model_dump(), "name": attack, "kind": kind},
            "pretext": {**t.pretext.model_dump(), "per_image": None},
            "clean": acc(clean).model_dump(),
            "clean_rev": acc(clean).model_dump(),
            "adv": acc(adv).model_dump(),
            "adv_rev": acc(adv_rev).model_dump(),
            "transfer": transfer.model_dump() if transfer else None,
            "randomized": randomized.model_dump() if randomized else None,
            "base_weights_sha256": base_sha,
        }
    )


def board(cells: list[Cell]):
    """A leaderboard of these cells, through a file: what a reader of it gets."""
    return store.loads(store.dumps(consistent_board(TEMPLATE, cells)), "toy.json")


def test_holm_adjusts_step_down_in_the_given_order():
    assert holm([0.01, 0.04, 0.03, 0.005]) == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert holm([]) == [] and holm([0.7]) == [0.7] and holm([0.6, 0.9]) == [1.0, 1.0]


def test_a_base_that_looks_better_only_because_it_was_attacked_less():
    """The base's own attack leaves 60 images; the images crafted against its defended versions fool it on
    20 more. Against the base's own attack alone both defenses look significantly worse; attacked alike,
    neither differs from it."""
    cf = [
        cell("classifier-first", "fgsm", adv=60, adv_rev=60),
        cell("classifier-first", "bpda-pgd10", adv=40, adv_rev=40, adaptive=True),
    ]  # Adv: the base, transfer
    mt = [
        cell("multitask", "fgsm", adv=50, adv_rev=45, transfer=Transfer(to_base=acc(60), from_base=acc(45))),
        cell("multitask", "bpda-pgd10", adv=50, adv_rev=45, adaptive=True, transfer=Transfer(to_base=acc(40))),
    ]
    vs = {v.mode: v for v in board(cf + mt).versus_base}
    for v in vs.values():
        assert v.base.correct == 40 and v.verdict == "no significant difference", v
        assert [s.source for s in v.base_sources] == ["attacks", "transfer"]
        assert [s.decided for s in v.base_sources] == [0, 20]  # the transfer alone fooled 20 of the base's images
    assert "transfer: " not in " ".join(vs["multitask"].base_attacks)
    assert "multitask/bpda-pgd10" in " ".join(vs["multitask"].base_attacks)
    # the same cells, but the base only under its own attack (the old protocol): "significantly worse"
    only_own = [c.model_copy(update={"transfer": None}) for c in mt] + cf[:1]
    v_old = {v.mode: v for v in board(only_own).versus_base}["multitask"]
    assert v_old.base.correct == 60 and v_old.verdict == "worse than its base"


def test_the_defense_faces_the_base_s_images_too():
    """Transfer the other way: a defense that resists its own attacks but not the base's images."""
    cf = [cell("classifier-first", "fgsm", adv=40, adv_rev=40)]
    mt = [cell("multitask", "fgsm", adv=100, adv_rev=100, transfer=Transfer(to_base=acc(100), from_base=acc(40)))]
    b = board(cf + mt)
    v = {v.mode: v for v in b.versus_base}["multitask"]
    assert v.defended.correct == 40 and v.verdict == "no significant difference"
    assert {w.mode: w.defended.correct for w in b.worst_case}["multitask"] == 40


def test_a_randomised_defense_is_read_both_ways():
    base = [cell("classifier-first", "fgsm", adv=40, adv_rev=40)]
    # above the base with one draw (b), not with every draw (c): not "beats"
    lucky = cell(
        "multitask",
        "fgsm",
        adv=40,
        adv_rev=70,
        all_draws=45,
        transfer=Transfer(to_base=acc(40), from_base=acc(70), from_base_all_draws=acc(45)),
    )
    v = {v.mode: v for v in board(base + [lucky]).versus_base}["multitask"]
    assert v.randomized and v.p_one_draw < 0.001 and v.p_value > 0.05
    assert v.verdict == "no significant difference"
    # below the base with every draw (c), not with one draw (b): not "worse" either
    base = [cell("classifier-first", "fgsm", adv=60, adv_rev=60)]
    unlucky = cell(
        "multitask",
        "fgsm",
        adv=60,
        adv_rev=58,
        all_draws=30,
        transfer=Transfer(to_base=acc(60), from_base=acc(58), from_base_all_draws=acc(30)),
    )
    v = {v.mode: v for v in board(base + [unlucky]).versus_base}["multitask"]
    assert v.p_value < 0.001 and v.verdict == "no significant difference"
    # even (c) above: beats; even (b) below: worse
    good = cell(
        "multitask",
        "fgsm",
        adv=60,
        adv_rev=100,
        all_draws=90,
        transfer=Transfer(to_base=acc(60), from_base=acc(100), from_base_all_draws=acc(90)),
    )
    assert board(base + [good]).versus_base[1].verdict == "beats its base"


def test_verdicts_are_holm_corrected_and_alpha_is_respected():
    """Two verdicts at raw p = 0.031 each: significant alone, not once corrected for each other."""
    cf = [cell("classifier-first", "fgsm", adv=40, adv_rev=40)]
    tasks = []
    for task in ("inpaint", "rotation"):
        c = cell("multitask", "fgsm", adv=46, adv_rev=46, transfer=Transfer(to_base=acc(40), from_base=acc(46)))
        tasks.append(c.model_copy(update={"task": c.task.model_copy(update={"name": task})}))
    b = board(cf + tasks)
    rows = [v for v in b.versus_base if v.mode == "multitask"]
    assert all(v.p_value == pytest.approx(2 * 0.5**6) for v in rows)
    assert all(v.p_adjusted > 0.05 and v.verdict == "no significant difference" for v in rows)
    text = markdown(b, "toy.json", alpha=0.1)
    assert "Holm p" in text and "**yes**, beats its base" in text  # adjusted 0.0625 < 0.1
    res = CliRunner().invoke(cli, ["base-findings", "--alpha", "0", "x.json"])
    assert res.exit_code == 2


def test_reverse_effect_stars_and_the_regression_gate_are_corrected():
    fixture = store.load(FIXTURE)
    n = fixture.cells[0].adv.n
    same = {"weights_sha256": "a" * 64, "adv_rev": Accuracy.from_flags(np.ones(n, bool))}  # the same models
    old = fixture.model_copy(update={"cells": [c.model_copy(update=same) for c in fixture.cells]})
    # every cell loses 6 images of Adv+Rev: p = 0.031 for each alone
    new = old.model_copy(
        update={"cells": [c.model_copy(update={"adv_rev": Accuracy.from_flags(np.arange(n) >= 6)}) for c in old.cells]}
    )
    changes = [ch for r in compare(old, new) for ch in r.changes if ch.metric == "adv_rev"]
    assert all(ch.p_value < 0.05 for ch in changes) and all(ch.verdict != "worse" for ch in changes)
    assert all(ch.p_adjusted > 0.05 for ch in changes)
    effects = reverse_effects(new.cells)
    assert len(effects) == 2 + len(new.cells)  # a model's clean effect counts once, each cell's Adv effect once
    assert all(e.p_adjusted >= e.p_value for e in effects.values())


def test_a_gate_that_cannot_fire_yields_no_gated_numbers():
    """Contrastive classifier-first's gate sits at the top of a discrete score (threshold -0.0): it fires on
    no image, so its gated rows would be the bare classifier's -- reported as such, with no number."""
    from pathlib import Path

    from ssrbench.leaderboard.render import gated_rows

    b = committed(Path(__file__).resolve().parents[1] / "leaderboards" / "quick-contrastive" / "classifier-first.json")
    (g,) = b.gated
    assert not g.can_fire and g.clean is None and g.worst_case is None and g.threshold == 0
    assert all("gate cannot fire" in row for row in gated_rows(b))
    assert any("cannot fire" in w and "detector-aware" in w for w in b.warnings)
    fires = b.model_copy(
        update={
            "cells": [
                c.model_copy(update={"gate": c.gate.model_copy(update={"calibration_flagged": 0.05})}) for c in b.cells
            ]
        }
    )
    assert all(g.can_fire and g.clean is not None for g in fires.gated)  # the run's own record decides when kept
    silent = b.model_copy(
        update={
            "cells": [
                c.model_copy(update={"gate": c.gate.model_copy(update={"calibration_flagged": 0.0, "threshold": -1e4})})
                for c in b.cells
            ]
        }
    )
    assert not any(g.can_fire for g in silent.gated)


def test_files_that_disagree_with_their_per_image_data_or_mix_bases_are_refused(tmp_path):
    cf = [cell("classifier-first", "fgsm", adv=60, adv_rev=60, base_sha="a" * 64)]
    mt = [
        cell(
            "multitask",
            "fgsm",
            adv=50,
            adv_rev=45,
            base_sha="a" * 64,
            transfer=Transfer(to_base=acc(60), from_base=acc(45)),
        )
    ]
    good = tmp_path / "good.json"
    store.save(board(cf + mt), good)
    doc = json.loads(good.read_text())
    for field, value in (("p_adjusted", 0.5), ("verdict", "beats its base")):
        bad = json.loads(json.dumps(doc))
        bad["versus_base"][0][field] = value
        (tmp_path / "bad.json").write_text(json.dumps(bad))
        res = CliRunner().invoke(cli, ["show", str(tmp_path / "bad.json")])
        assert res.exit_code == 2 and "versus_base" in res.output, res.output
    bad = json.loads(json.dumps(doc))
    bad["versus_base"][0]["base_sources"][0]["decided"] += 1
    (tmp_path / "bad.json").write_text(json.dumps(bad))
    assert CliRunner().invoke(cli, ["show", str(tmp_path / "bad.json")]).exit_code == 2
    other = json.loads(json.dumps(doc))
    other["cells"][1]["base_weights_sha256"] = "b" * 64
    for view in ("versus_base", "worst_case", "warnings", "aggregates", "detection", "gated"):
        other.pop(view, None)
    (tmp_path / "other.json").write_text(json.dumps(other))
    res = CliRunner().invoke(cli, ["base-findings", str(tmp_path / "other.json")])
    assert res.exit_code == 2 and "multitask/fgsm" in res.output and "another static base" in res.output
    cut = json.loads(json.dumps(doc))
    cut["cells"][1]["transfer"]["to_base"] = Accuracy.from_flags(first(10)[:20]).model_dump()
    (tmp_path / "cut.json").write_text(json.dumps(cut))
    res = CliRunner().invoke(cli, ["show", str(tmp_path / "cut.json")])
    assert res.exit_code == 2 and "transfer" in res.output


def test_a_run_attacks_each_side_with_the_other_s_images(tmp_path):
    """Both modes, one blind and one adaptive attack: every multitask cell says how the base fares on its
    images, its blind cell how the defense fares on the base's; the verdict's base is attacked by both."""
    data = make_cifar(tmp_path / "data")
    out = tmp_path / "both.json"
    args = list(TINY)
    args[args.index("--attacks") + 1] = "fgsm,bpda-pgd10"
    res = CliRunner().invoke(
        cli,
        [
            "run",
            *args,
            "--modes",
            "classifier-first,multitask",
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
    b = store.load(out)
    cf = [c for c in b.cells if c.mode == "classifier-first"]
    mt = [c for c in b.cells if c.mode == "multitask"]
    assert all(c.transfer is None and c.base_weights_sha256 for c in cf)
    assert {c.base_weights_sha256 for c in b.cells} == {cf[0].base_weights_sha256}
    classifier = next(r for r in b.training if r.stage == "classifier")
    assert cf[0].base_weights_sha256 == classifier.weights_sha256
    blind, aware = (next(c for c in mt if c.attack.name == a) for a in ("fgsm", "bpda-pgd10"))
    assert blind.transfer.from_base is not None and aware.transfer.from_base is None
    assert blind.transfer.to_base.n == aware.transfer.to_base.n == blind.clean.n
    v = next(v for v in b.versus_base if v.mode == "multitask")
    assert "rotation/multitask/fgsm" in v.base_attacks and "rotation/classifier-first/bpda-pgd10" in v.base_attacks
    base = np.logical_and.reduce([c.adv.flags() for c in cf] + [c.transfer.to_base.flags() for c in mt])
    assert v.base.correct == int(base.sum())


def test_the_adaptive_suite_attacks_the_base_with_autoattack():
    from ssrbench.run.suites import load_suite

    suite = load_suite("adaptive")
    assert "autoattack" in suite.describe()


def test_merging_parts_judged_against_different_bases_is_refused(tmp_path):
    cf = board([cell("classifier-first", "fgsm", adv=60, adv_rev=60, base_sha="a" * 64)])
    mt = board(
        [
            cell(
                "multitask",
                "fgsm",
                adv=50,
                adv_rev=45,
                base_sha="b" * 64,
                transfer=Transfer(to_base=acc(60), from_base=acc(45)),
            )
        ]
    )
    store.save(cf, tmp_path / "cf.json")
    store.save(mt, tmp_path / "mt.json")
    res = CliRunner().invoke(
        cli, ["merge", str(tmp_path / "cf.json"), str(tmp_path / "mt.json"), "--out", str(tmp_path / "both.json")]
    )
    assert res.exit_code == 2 and "another static base" in res.output and "multitask/fgsm" in res.output, res.output
    assert not (tmp_path / "both.json").exists()


def test_the_docs_robust_base_prose_states_the_files_numbers():
    """The sentences around the generated base-findings blocks quote numbers of the files: each is checked
    against the file's verdicts, so a rerun that changes them fails here until the prose is rewritten."""
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    readme = prose()
    robust = {(v.task, v.mode): v for v in committed(repo / "leaderboards" / "quick-robust.json").versus_base}
    v = robust[("inpaint", "classifier-first")]
    own, transfer = v.base_sources
    assert (own.source, transfer.source) == ("attacks", "transfer")
    for claim in (
        f"its base is {v.base.percent:.1f}% ({own.accuracy.percent:.1f}% under its own three attacks; the "
        f"classifier-first cells' adaptive images fool it on {transfer.decided} more images)",
        f"base's worst case ({v.base.percent:.1f}%:",
        f"(−{-robust[('rotation', 'classifier-first')].points:.1f} and "
        f"−{-robust[('rotation', 'multitask')].points:.1f} points)",
    ):
        assert claim in readme, claim
    assert all(r.verdict == "worse than its base" for r in robust.values())  # "every defended model ... below it"
    contrastive = {v.mode: v for v in committed(repo / "leaderboards" / "quick-robust-contrastive.json").versus_base}
    cf, mt = contrastive["classifier-first"], contrastive["multitask"]
    own, transfer = cf.base_sources
    for claim in (
        f"is {cf.defended.percent:.1f}% with every one of 5 draws correct and {cf.defended_one_draw.percent:.1f}% "
        f"with one draw, against a base of {cf.base.percent:.1f}% once the images crafted against its defenses "
        f"count ({own.accuracy.percent:.1f}% under its own attacks alone; transfer fools it on "
        f"{transfer.decided} more): −{-cf.points:.0f} (p = {cf.p_value:.2g}) and −{-cf.points_one_draw:.0f} "
        f"(p = {cf.p_one_draw:.2g})",
        f"is {mt.defended.percent:.1f}% (every draw) and {mt.defended_one_draw.percent:.1f}% (one draw), "
        f"{-mt.points:.0f} and {-mt.points_one_draw:.0f} points below the base's {mt.base.percent:.1f}%: raw "
        f"p = {mt.p_value:.2g} and {mt.p_one_draw:.2g}, Holm-adjusted over the file's two verdicts "
        f"{mt.p_adjusted:.2g}",
    ):
        assert claim in readme, claim
    assert {r.verdict for r in contrastive.values()} == {"no significant difference"}
