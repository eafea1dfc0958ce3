"""The README's hand-written sentences about the committed leaderboards quote numbers of those files: each
is recomputed here from the file and looked up in the README, so a rerun (or an edit) that changes one fails
until the sentence is rewritten. Fast: files are only read, nothing is trained."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from ssrbench.core.stats import mcnemar_exact
from ssrbench.leaderboard import store

from .helpers import committed, prose

REPO = Path(__file__).resolve().parents[1]
BOARDS = REPO / "leaderboards"


@pytest.fixture(scope="module")
def readme() -> str:
    """The README and the docs pages with their line breaks folded, as the sentences wrap anywhere."""
    return prose()


def _cells(path: Path) -> dict:
    return {(c.task.name, c.mode, c.attack.name): c for c in committed(path).cells}


def test_seed_runs_provenance_and_the_undecided_example_are_the_files(readme):
    """The seeds page: where and how the five runs ran, seed 0 being quick.json image for image, and its example
    of a single-model difference that `compare` rightly calls undecided."""
    from ssrbench.leaderboard.compare import compare

    parts = [committed(f) for f in sorted((BOARDS / "quick-seeds").glob("seed*.json"))]
    assert [p.seed for p in parts] == [0, 1, 2, 3, 4] and not any(p.git_dirty for p in parts)
    (commit,) = {p.git_commit[:7] for p in parts}
    env = parts[0].environment
    assert all(t.zoo_sha256 for t in parts[0].training) and not any(
        t.zoo_sha256 or t.cached for p in parts[1:] for t in p.training
    )
    quick = committed(BOARDS / "quick.json")
    assert all(
        (a.clean.per_image, a.clean_rev.per_image, a.adv.per_image, a.adv_rev.per_image)
        == (b.clean.per_image, b.clean_rev.per_image, b.adv.per_image, b.adv_rev.per_image)
        for a, b in zip(quick.cells, parts[0].cells, strict=True)
    )
    minutes = [p.seconds_total / 60 for p in parts[1:]]
    cold = committed(REPO / "benchmarks" / "results" / "main-cold-avx512.json")
    claim = (
        f"one after another from a clean checkout of commit `{commit}` on this CPU ({env.device_name}, "
        f"{env.cpu_capability}, {env.threads} threads): seed 0's weights from the zoo -- they are `quick.json`'s, "
        f"and so is every per-image result -- in {parts[0].seconds_total / 60:.1f} minutes; seeds 1–4 trained "
        f"from an empty cache in {min(minutes):.1f}–{max(minutes):.1f} minutes each, with other work on the same "
        f"two cores (seed 0's cold run alone, `benchmarks/results/main-cold-avx512.json`, took "
        f"{cold.seconds_total / 60:.1f} minutes)"
    )
    assert claim in _squash(readme), claim
    res = compare(quick, parts[1])
    changes = [(r.key, ch) for r in res for ch in r.changes]
    assert {ch.verdict for _, ch in changes} == {"undecided"}
    (task, _attack, mode, *_), ch = max(changes, key=lambda kc: abs(kc[1].new - kc[1].old))
    names = {"clean": "Clean", "clean_rev": "Clean+Rev", "adv": "Adv", "adv_rev": "Adv+Rev"}
    claim = (
        f"seed 1 differs most in {mode} {task}'s {names[ch.metric]}: {_pm(ch.new - ch.old)} points (p = "
        f"{ch.p_value:.2g} by a single-model McNemar test on the same images); `compare` reports all "
        f"{len(changes)} of the two files' comparisons as undecided"
    )
    assert claim in _squash(readme), claim


def _squash(text: str) -> str:
    return " ".join(text.split())


def test_sweep_provenance_is_the_files(readme):
    b = committed(BOARDS / "quick-sweep.json")
    env = b.environment
    assert b.git_dirty is False and all(r.zoo_sha256 for r in b.training) and "--zoo-only" in b.command
    claim = (
        f"at commit `{b.git_commit[:7]}` on this CPU ({env.device_name}, {env.cpu_capability}, {env.threads} "
        f"threads): every model's weights from the zoo ({len(b.training)} stages), {len(b.cells)} cells on the "
        f"same {b.dataset.eval_images} test images, so every point is paired with every other; "
        f"{b.seconds_total / 60:.1f} minutes of evaluation"
    )
    assert claim in _squash(readme), claim


def _pm(x: float) -> str:
    return f"{x:+.1f}".replace("-", "−")


def test_sweep_findings_are_the_files(readme):
    """Every number of "What the curves show", computed from the file."""
    from ssrbench.core.stats import holm
    from ssrbench.leaderboard.detection import detection
    from ssrbench.studies.curves import _measured, eps_groups, reverse_gain, undefended, worst

    b = committed(BOARDS / "quick-sweep.json")
    text = _squash(readme)
    cells = _measured(b)
    floor = max(c.adv.percent for c in cells if 255 * c.threat.eps >= 8 and not c.adaptive)
    claims = [f"(Adv at most {floor:.1f}% for every model)"]
    names = {"inpaint": "inpainting", "rotation": "rotation"}
    best, bpda, cost, auroc = {}, {}, {}, {}
    for task in names:
        tc = [c for c in cells if c.task.swept == task]
        rev = [c for c in tc if c.reverse.eps > 0]
        best[task] = max(
            (reverse_gain(b, c), c.mode, round(255 * c.reverse.eps), round(255 * c.threat.eps))
            for c in rev
            if c.attack.swept == "pgd10"
        )
        gains = [reverse_gain(b, c) for c in rev if c.attack.swept == "bpda-pgd10"]
        bpda[task] = f"{_pm(min(gains))} to {_pm(max(gains))}"
        costs = sorted(c.clean_rev.percent - c.clean.percent for c in rev)
        cost[task] = f"{_pm(costs[-1])} to {_pm(costs[0])}"
        point = {c.attack.name: c.attack.point for c in tc}  # a detection row names its attack
        pgd = [d for d in detection(tc) if point[d.attack].of == "pgd10"]
        low = [d.auroc for d in pgd if round(255 * point[d.attack].eps) != 16]
        high = [d.auroc for d in pgd if round(255 * point[d.attack].eps) == 16]
        auroc[task] = (f"{min(low):.2f}–{max(low):.2f}", f"{min(high):.2f}–{max(high):.2f}")
    (gi, mi, ri, ei), (gr, mr, rr, er) = best["inpaint"], best["rotation"]
    claims.append(
        f"(up to {_pm(gi)} points for inpainting, {mi}, reverse ε {ri}/255, attack ε {ei}/255; {_pm(gr)} "
        f"for rotation, {mr}, reverse ε {rr}/255, attack ε {er}/255)"
    )
    claims.append(f"(inpainting {cost['inpaint']} points, rotation {cost['rotation']})")
    claims.append(f"(inpainting {bpda['inpaint']} points, rotation {bpda['rotation']})")
    rows = []
    for (task, mode), group in eps_groups(b).items():
        if round(255 * group[0].task.point.eps) == 8:
            for eps in sorted({c.threat.eps for c in group}):
                at = [c for c in group if c.threat.eps == eps]
                base, defended = undefended(at), worst(at)
                rows.append(
                    (
                        task,
                        mode,
                        round(255 * eps),
                        defended.percent - base.percent,
                        mcnemar_exact(base.flags(), defended.flags())[2],
                    )
                )
    adjusted = holm([r[-1] for r in rows])
    survive = [r for r, p in zip(rows, adjusted) if p < 0.05]
    assert len(survive) == 1 and all(r[3] < 0 for r in survive)  # "nowhere significantly above"
    ((task, mode, eps, delta, _),) = survive
    task = next(c.task.swept for c in cells if c.task.name == task)
    claims.append(
        f"at an uncorrected p < 0.05 in {sum(r[-1] < 0.05 for r in rows)} of its {len(rows)} rows, and "
        f"after Holm's correction over those {len(rows)} rows in 1 ({names[task]}, {mode}, attack "
        f"ε {eps}/255: {_pm(delta)} points"
    )
    claims.append(
        f"inpainting's region MSE has AUROC {auroc['inpaint'][0]} up to 8/255 ({auroc['inpaint'][1]} at "
        f"16/255), rotation accuracy {auroc['rotation'][0]} ({auroc['rotation'][1]} at 16/255;"
    )
    for claim in claims:
        assert claim in text, claim


def test_robust_contrastive_provenance_is_what_the_file_records(readme):
    d = json.loads((BOARDS / "quick-robust-contrastive.json").read_text())
    text = json.dumps(d)
    runs = [m for m in d["merged_from"] if m["command"][:2] == ["ssrbench", "run"]]
    merges = [d["command"]] + [m["command"] for m in d["merged_from"] if m["command"][:2] == ["ssrbench", "merge"]]
    assert len(merges) == 2 and [r["command"][r["command"].index("--modes") + 1] for r in runs] == ["multitask"]
    assert "67f0497" not in text  # the APGD part's commit is lost in the nested merge
    claim = (
        f"the file records both merges (commit `{d['git_commit'][:7]}`) and the multitask run's command and "
        f"commit (`{runs[0]['git_commit'][:7]}`), but neither classifier-first run's command and not commit "
        f"`67f0497`"
    )
    assert claim in readme, claim


def test_mao21_batch_comparison_is_paired_and_not_significant(readme, tmp_path):
    """The batch-100 file this one replaced lives only in git history (commit 25f9a8a)."""
    try:
        old_text = subprocess.run(
            ["git", "-C", str(REPO), "show", "25f9a8a:leaderboards/quick-contrastive-mao21.json"],
            capture_output=True,
            check=True,
            text=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        pytest.skip("the replaced file is not in this checkout's git history")
    old_path = tmp_path / "mao21-batch100.json"
    old_path.write_text(old_text, encoding="utf-8")
    old = store.load(old_path)
    new = committed(BOARDS / "quick-contrastive-mao21.json")
    first_old, first_new = ({c.mode: c for c in reversed(b.cells)} for b in (old, new))  # each mode's fgsm cell
    paired = {}
    for mode in ("classifier-first", "multitask"):
        o, n = first_old[mode], first_new[mode]
        assert o.weights_sha256 == n.weights_sha256  # same models, same images: a paired test is right
        paired[mode] = mcnemar_exact(o.clean_rev.flags(), n.clean_rev.flags())
    lost, gained, p = paired["classifier-first"]
    assert p >= 0.05
    mlost, mgained, _ = paired["multitask"]
    claim = (
        f"classifier-first's Clean+Rev at batch 20 lost {lost} images and gained {gained} (McNemar p = {p:.2g}; "
        f"multitask: {mlost} lost, {mgained} gained)"
    )
    assert claim in readme, claim
    assert "The batch matters at this budget" not in readme


def test_committed_files_record_absolute_data_folders(readme):
    files = sorted(BOARDS.rglob("*.json"))
    absolute = [f for f in files if json.loads(f.read_text())["dataset"]["source"].startswith("/")]
    given = [f"`{f.relative_to(REPO)}`" for f in files if f not in absolute]
    assert all(
        json.loads(f.read_text())["dataset"]["source"].startswith("../shared/data/") for f in files if f not in absolute
    )
    claim = (
        f"Of the {len(files)} committed leaderboards under `leaderboards/`, {len(given)} record the folder as "
        f"given (`../shared/data/…`: {', '.join(given)}); the other {len(absolute)} predate this"
    )
    assert claim in readme, claim


def test_cold_whole_run_minutes(readme):
    d = json.loads((REPO / "benchmarks" / "results" / "main-cold.json").read_text())
    claim = (
        f"the same command took {d['seconds_total'] / 60:.1f} minutes on 2 CPU threads (commit "
        f"`{d['git_commit'][:7]}`, kept as `benchmarks/results/main-cold.json`"
    )
    assert claim in readme, claim


def test_quick_fgsm_and_jigsaw_moves(readme):
    c = _cells(BOARDS / "quick.json")
    cf = {c[("inpaint", "classifier-first", "fgsm")].adv.percent, c[("jigsaw", "classifier-first", "fgsm")].adv.percent}
    assert len(cf) == 1
    claim = (
        f"our classifier-first model leaves {cf.pop():.1f}% under FGSM (multitask "
        f"{c[('inpaint', 'multitask', 'fgsm')].adv.percent:.1f}%)"
    )
    assert claim in readme, claim
    jig = [v for k, v in c.items() if k[0] == "jigsaw"]
    clean = sorted({round(v.clean_rev.percent - v.clean.percent, 1) for v in jig})
    adv = [round(v.adv_rev.percent - v.adv.percent, 1) for v in jig]
    lo, hi = min(clean + adv), max(clean + adv)
    claim = (
        f"moves classification accuracy by −{-lo:.1f} to +{hi:.1f} points (−{-clean[0]:.1f} and "
        f"−{-clean[1]:.1f} on clean images, +{min(adv):.1f} to +{max(adv):.1f} on attacked ones)"
    )
    assert claim in readme, claim


def test_sweep_gate_rates(readme):
    rates = {}
    for cell in committed(BOARDS / "quick-sweep.json").cells:
        if cell.task.name.startswith("inpaint"):
            r = rates.setdefault(cell.mode, {"clean": set(), "adv": []})
            r["clean"].add(round(100 * float(cell.gated_flags("clean")[0].mean()), 1))
            r["adv"].append(100 * float(cell.gated_flags("adversarial")[0].mean()))
    (mt,), (cf,) = rates["multitask"]["clean"], rates["classifier-first"]["clean"]
    span = {m: f"{min(r['adv']):.1f}–{max(r['adv']):.1f}%" for m, r in rates.items()}
    claim = (
        f"inpainting's on {mt:.1f}% of clean and {span['multitask']} of attacked images (multitask), "
        f"{cf:.1f}% and {span['classifier-first']} (classifier-first)"
    )
    assert claim in readme, claim


def test_quick_json_is_the_zoo_run_and_agrees_with_the_cold_run(readme):
    quick = committed(BOARDS / "quick.json")
    kept = committed(REPO / "benchmarks" / "results" / "main-zoo.json")
    cold = committed(REPO / "benchmarks" / "results" / "main-cold-avx512.json")
    assert quick.model_dump() == kept.model_dump() and all(r.zoo_sha256 for r in quick.training)
    assert not any(r.cached for r in cold.training) and cold.git_dirty is False
    for a, b in zip(quick.cells, cold.cells, strict=True):
        assert {k: v.per_image for k, v in a.accuracies().items()} == {
            k: v.per_image for k, v in b.accuracies().items()
        }
    claim = (
        f"at commit `{quick.git_commit[:7]}` in a fresh clone with an empty cache, every stage's weights from the "
        f"zoo: {quick.seconds_total / 60:.1f} minutes of run"
    )
    assert claim in readme, claim
    claim = f"on this kind of CPU ({cold.seconds_total / 60:.1f} minutes, `benchmarks/results/main-cold-avx512.json`)"
    assert claim in readme, claim


def test_quick_json_replaced_a_file_with_the_same_per_image_results(readme, tmp_path):
    """The file quick.json replaced (commit 32c4be8's run) lives in git history, at commit a26fb61."""
    try:
        old_text = subprocess.run(
            ["git", "-C", str(REPO), "show", "a26fb61:leaderboards/quick.json"],
            capture_output=True,
            check=True,
            text=True,
            timeout=30,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        pytest.skip("the replaced file is not in this checkout's git history")
    (tmp_path / "old.json").write_text(old_text, encoding="utf-8")
    old, new = store.load(tmp_path / "old.json"), committed(BOARDS / "quick.json")
    assert old.git_commit.startswith("32c4be8") and "and those of the file it replaced (commit `32c4be8`)" in readme
    for a, b in zip(old.cells, new.cells, strict=True):
        four = ("clean", "clean_rev", "adv", "adv_rev")  # all a schema-1 file holds
        assert [getattr(a, k).per_image for k in four] == [getattr(b, k).per_image for k in four]


def test_the_front_pages_answer_counts_the_files_verdicts():
    """The README's "The answer so far" counts the verdicts of the two files whose tables it shows."""
    verdicts = [
        v.verdict
        for f in ("quick-robust.json", "quick-robust-contrastive.json")
        for v in committed(BOARDS / f).versus_base
    ]
    claim = (
        f"in {verdicts.count('beats its base')} of the {len(verdicts)} verdicts below is the reverse attack "
        f"significantly better than its base, and in {verdicts.count('worse than its base')} of them it is "
        "significantly worse"
    )
    assert claim in _squash((REPO / "README.md").read_text(encoding="utf-8")), claim


def test_the_front_pages_model_size_is_the_models():
    from ssrbench.models.cifar_resnet import ssr_resnet8

    millions = sum(p.numel() for p in ssr_resnet8(num_classes=10).parameters()) / 1e6
    assert f"(`ssr_resnet8`, {millions:.1f} M parameters)" in _squash((REPO / "README.md").read_text("utf-8"))


def test_adaptive_run_time_is_the_files(readme):
    b = committed(BOARDS / "quick-adaptive.json")
    trained = {t.stage: t for t in b.training if not t.cached}
    assert len(trained) == 4 and {t.stage for t in b.training if t.cached} == {"classifier"}
    training = sum(t.seconds for t in trained.values())
    unrolled = sum(c.seconds["attack"] for c in b.cells if c.attack.name == "unrolled-pgd10")
    claim = (
        f"{b.seconds_total / 60:.1f} minutes on this CPU: {training / 60:.1f} of training, and of the "
        f"{(b.seconds_total - training) / 60:.1f} minutes of evaluation {unrolled / 60:.1f} the unrolled attack"
    )
    assert claim in readme, claim


def test_robust_base_apgd_through_the_defense_is_the_files(readme):
    b = committed(BOARDS / "quick-robust.json")
    through = [c for c in b.cells if c.attack.name in ("bpda-apgd-ce", "bpda-apgd-dlr", "eot-apgd-ce")]
    blind = [c.adv_rev.percent for c in b.cells if c.attack.name == "apgd-ce"]
    base = {v.task + v.mode: v.base.percent for v in b.versus_base}
    below = sum(c.adv_rev.percent < base[c.task.name + c.mode] for c in through)
    above = sorted(c.adv_rev.percent for c in through if c.adv_rev.percent >= base[c.task.name + c.mode])
    assert {(c.task.name, c.mode) for c in through if c.adv_rev.percent >= base[c.task.name + c.mode]} == {
        ("inpaint", "classifier-first")
    }
    claim = (
        f"leaves {min(c.adv_rev.percent for c in through):.1f}–{max(c.adv_rev.percent for c in through):.1f}% "
        f"defended accuracy, against {min(blind):.1f}–{max(blind):.1f}% under APGD-CE on the bare classifier, and "
        f"below the base's worst case ({base['inpaintclassifier-first']:.1f}%:"
    )
    tail = (
        f"in {below} of its {len(through)} cells -- classifier-first inpainting keeps "
        f"{' and '.join(f'{x:.1f}%' for x in above)} under two of them"
    )
    assert claim in readme and tail in readme and len(above) == 2, (claim, tail)


def test_contrastive_significance_claims_are_holms(readme):
    from ssrbench.leaderboard.compare import effect_key, reverse_effects

    mao = committed(BOARDS / "quick-contrastive-mao21.json")
    effects = reverse_effects(mao.cells)
    assert not any(e.significant for e in effects.values())
    claim = (
        f"After Holm over the file's {len(effects)} effects none of these is significant (the smallest "
        f"adjusted p is {min(e.p_adjusted for e in effects.values()):.2g})"
    )
    assert claim in readme, claim
    robust = committed(BOARDS / "quick-robust-contrastive.json")
    effects = reverse_effects(robust.cells)
    for mode, points in (("classifier-first", "+6"), ("multitask", "+10")):
        cell = next(c for c in robust.cells if c.mode == mode and c.attack.name == "apgd-ce")
        e = effects[effect_key(cell, clean=False)]
        assert f"{e.points:+.0f}" == points
        assert f"p = {e.p_value:.2g}, {e.p_adjusted:.2g} after Holm" in readme, (mode, e)
    assert f"over the file's {len(effects)} effects; an attack that does not see the defense" in readme


def test_contrastive_eot4_minutes_are_the_files(readme):
    b = committed(BOARDS / "quick-robust-contrastive.json")
    minutes = {c.mode: c.seconds["attack"] / 60 for c in b.cells if c.attack.name == "eot4-apgd-ce"}
    claim = (
        f"five times `eot4-apgd-ce`'s {minutes['multitask']:.1f} minutes of attack on the multitask model here, "
        f"{minutes['classifier-first']:.1f} on classifier-first's"
    )
    assert claim in readme, claim


def test_jigsaw_and_rotation_paragraphs_are_the_files(readme):
    q = _cells(BOARDS / "quick.json")
    perm = {m: q[("jigsaw", m, "fgsm")].pretext.clean for m in ("multitask", "classifier-first")}
    claim = (
        f"Permutation accuracy on the held-out images is {100 * perm['multitask']:.1f}% in multitask mode and "
        f"{100 * perm['classifier-first']:.1f}% in classifier-first mode (chance 1/64 = 1.6%: "
        f"{64 * perm['multitask']:.0f}× and {64 * perm['classifier-first']:.1f}×)"
    )
    assert claim in readme, claim
    assert all(q[("jigsaw", m, a)].pretext.adversarial_reversed >= 0.99 for m in perm for a in ("fgsm", "pgd2"))
    r = _cells(BOARDS / "quick-rotation.json")
    gain = {
        m: r[("rotation", m, "fgsm")].adv_rev.percent - r[("rotation", m, "fgsm")].adv.percent
        for m in ("multitask", "classifier-first")
    }
    cost = sorted(r[("rotation", m, "fgsm")].clean.percent - r[("rotation", m, "fgsm")].clean_rev.percent for m in gain)
    claim = (
        f"the reverse attack gains most here under FGSM ({gain['multitask']:+.1f} points multitask, "
        f"{gain['classifier-first']:+.1f} classifier-first) but costs {cost[0]:.0f}–{cost[1]:.0f} points of clean "
        "accuracy"
    )
    assert claim in readme, claim


def test_seed_findings_summary_is_the_files(readme):
    b = committed(BOARDS / "quick-seeds.json")
    adv = [a.metrics["adv_effect"] for a in b.aggregates]
    clean = {(a.task, a.mode): a.metrics["clean_effect"] for a in b.aggregates}.values()
    effects = [*adv, *clean]
    assert len(adv) == 8 and len(clean) == 4
    holds = all(e.excludes_zero for e in effects)
    claim = (
        f"the reverse attack's gains under FGSM and PGD-2 are real but small ({_pm(min(e.mean for e in adv))} to "
        f"{_pm(max(e.mean for e in adv))} points on average), its clean cost is real in every task and mode "
        f"({_pm(max(e.mean for e in clean))} to {_pm(min(e.mean for e in clean))}), "
        f"{'every one' if holds else 'not every one'} of these intervals excludes zero"
    )
    assert holds and all(e.mean > 0 for e in adv) and all(e.mean < 0 for e in clean)
    assert claim in readme, claim
