"""The hand-written sentences of performance.md, zoo.md, results/curves.md, results/adaptive.md, get-started.md
and scale-out.md quote numbers of kept benchmarks (benchmarks/results/), committed leaderboards (leaderboards/)
and the code's own defaults (presets, the Ray executor's settings): each is recomputed here from its source and
looked up in the page's own sentence, so a rerun, an edit or a changed default fails until the sentence is
rewritten. A number a page gives from an older version of a file is read from git history (skipped, saying so,
where the checkout has none). The claims tests/test_readme_claims.py, tests/test_docs_claims.py and
tests/test_zoo.py check are not repeated; the generated blocks are checked by scripts/regenerate_docs.py --check.
Fast: files are only read, nothing is trained."""

from __future__ import annotations

import importlib.util
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest
from packaging.version import Version

from ssrbench.leaderboard import store

from .helpers import committed, page_text

REPO = Path(__file__).resolve().parents[1]
BOARDS = REPO / "leaderboards"
RESULTS = REPO / "benchmarks" / "results"


def _bench(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def _kept(name: str) -> dict:
    return json.loads((RESULTS / name).read_text(encoding="utf-8"))


def _git(*args: str) -> str:
    """A git command's output (skips where the checkout has no such history)."""
    try:
        return subprocess.run(
            ["git", "-C", str(REPO), *args], capture_output=True, check=True, text=True, timeout=30
        ).stdout
    except (OSError, subprocess.SubprocessError):
        pytest.skip(f"git {' '.join(args)}: not in this checkout's git history")


def _row(result: dict, what: str, key: str = "rows") -> dict:
    (row,) = [r for r in result[key] if r["what"] == what]
    return row


def _assert_all(claims, page: str) -> None:
    for claim in claims:
        assert claim in page, claim


@pytest.fixture(scope="module")
def performance_page() -> str:
    return page_text("performance.md")


@pytest.fixture(scope="module")
def zoo_page() -> str:
    return page_text("zoo.md")


@pytest.fixture(scope="module")
def curves_page() -> str:
    return page_text("results/curves.md")


@pytest.fixture(scope="module")
def adaptive_page() -> str:
    return page_text("results/adaptive.md")


# performance.md ---------------------------------------------------------------------------------------------------


def test_cpu_pgd10_yes_and_the_previous_run_are_the_files(performance_page):
    """PGD-10's "yes" is this file's, the 1.2× is the attacks' target, and the previous run (the file at the
    commit before, in git history) gave 1.00× with a matmul rate of 169 against this one's 112."""
    bench = _bench("bench_speed")
    now = _kept("bench_speed.json")
    attacks = {what: bench.TARGETS[what] for what in ("FGSM", "PGD-10")}
    assert set(attacks.values()) == {(">=", 1.2)}
    op, target = attacks["PGD-10"]
    pgd = _row(now, "PGD-10")
    assert pgd["theirs_s"] / pgd["ours_s"] >= target  # the "yes" of this run
    revs = _git("log", "--format=%h", "--", "benchmarks/results/bench_speed.json").split()
    assert len(revs) >= 2
    before_rev = revs[1]
    before = json.loads(_git("show", f"{before_rev}:benchmarks/results/bench_speed.json"))
    old = _row(before, "PGD-10")
    _assert_all(
        [
            f"parity, not the {target:g}× lead the performance issue asks of the attacks",
            'PGD-10\'s "yes" in this run did not hold up',
            (
                f"this harness's previous run (commit `{before_rev[:7]}`) gave {old['theirs_s'] / old['ours_s']:.2f}×; "
                f"this CPU's speed drifted during the measurement (its fp32 matmul rate read "
                f"{now['matmul_gflops']:.0f} GFLOP/s here, {before['matmul_gflops']:.0f} in that run)"
            ),
        ],
        performance_page,
    )
    assert before["environment"]["device_name"] == now["environment"]["device_name"]  # "this CPU"


def test_gpu_prose_is_the_cuda_file(performance_page):
    """The GPU path's bullets: the batch, the share of the matrix rate, bf16, torch.compile, TF32."""
    gpu = _kept("bench_speed_cuda.json")
    cpu = _kept("bench_speed.json")
    # "that machine's own torch, which was older than the version ssrbench pins here"
    assert Version(gpu["environment"]["torch"].split("+")[0]) < Version(cpu["environment"]["torch"].split("+")[0])
    assert f"torch=={cpu['environment']['torch'].split('+')[0]}" in page_text("get-started.md")
    assert gpu["environment"]["device_name"] == "NVIDIA H200" and "on one H200" in performance_page
    shares = [r["flops"] / r["ours_s"] / 1e9 / gpu["matmul_gflops"] for r in gpu["rows"] if r["flops"]]
    assert max(shares) < 0.1  # "a few percent of its fp32 matrix rate"
    speed = {o["what"]: o["without_s"] / o["with_s"] for o in gpu["options"]}
    small = [
        speed["training step (classifier), bf16 autocast"],
        speed["training step (multitask/inpaint), bf16 autocast"],
    ]
    assert max(small) <= 1  # "no gain for ssr_resnet8"
    big = speed["training step (classifier, resnet18 batch 128), bf16 autocast"]
    assert round(big) == 2  # "about twice as fast for resnet18 at batch 128"
    assert speed["training step (classifier), torch.compile"] < 1 and speed["PGD-10, torch.compile"] < 1  # slower
    assert speed["PGD-10, torch.compile (CUDA graphs)"] > 1  # "runs faster"
    tf32 = _row(gpu, "PGD-10, TF32 convolutions", "options")
    assert 1 < speed["PGD-10, TF32 convolutions"] < 1.1  # "the TF32 row (a few percent)"
    assert 1 <= round(1e4 * (1 - tf32["grad_sign_agreement"])) < 10  # "all but a few pixels in ten thousand"
    _assert_all(
        [
            f"At the evaluation batch ({gpu['batch']} images of 32×32) ResNet-8's kernels are so small that an H200 "
            "runs them at a few percent of its fp32 matrix rate",
            "no gain for `ssr_resnet8` (launch-bound: autocast only adds casts), about twice as fast for "
            "`resnet18` at batch 128",
            "the input-gradient signs of the two agree on all but a few pixels in ten thousand",
            "in its default mode it is *slower* than eager for these small models",
        ],
        performance_page,
    )


def test_whole_run_prose_is_the_kept_runs(performance_page):
    """ "with the zoo the main command is its evaluation alone"; the adaptive run's models are cached and its
    adaptive attacks dominate it."""
    zoo = committed(RESULTS / "main-zoo.json")
    warm = committed(RESULTS / "adaptive-warm.json")
    assert all(r.zoo_sha256 for r in zoo.training)
    assert all(r.cached for r in warm.training) and {r.key for r in warm.training} == {r.key for r in zoo.training}
    attack = sum(c.seconds.get("attack", 0) for c in warm.cells)
    assert attack / warm.seconds_total > 0.5
    _assert_all(
        [
            "with the zoo the main command is its evaluation alone",
            "The adaptive run reuses the main command's models (cached), so it is its evaluation alone: the "
            "adaptive attacks dominate it.",
        ],
        performance_page,
    )


# zoo.md -----------------------------------------------------------------------------------------------------------


def test_zoo_page_numbers_are_quick_json_and_the_budget(zoo_page):
    from ssrbench.run.reproduce import MAX_ZOO_BYTES

    quick = committed(BOARDS / "quick.json")
    n = len(quick.training)
    assert all(r.zoo_sha256 for r in quick.training)  # "its minutes are all evaluation"
    _assert_all(
        [
            f"fp32, within a {MAX_ZOO_BYTES / 1e6:.0f} MB budget",
            f'("weights of {n} of {n} stages come from the zoo …; to train them here instead add --no-zoo")',
            "as `leaderboards/quick.json`'s run did (Results) (its minutes are all evaluation)",
        ],
        zoo_page,
    )


# results/curves.md ------------------------------------------------------------------------------------------------


def test_curves_command_seed_and_images_are_the_file(curves_page):
    b = committed(BOARDS / "quick-sweep.json")
    command = list(b.command)
    for flag in ("--data-dir", "--progress", "--out"):  # what the page leaves out: where, how shown, where to
        i = command.index(flag)
        del command[i : i + 2]
    assert b.preset == "quick" and "--preset" not in command
    assert f"`leaderboards/quick-sweep.json` is `{' '.join(command)}` (quick preset otherwise)" in curves_page
    assert len({c.seed for c in b.cells}) == 1
    assert f"One training seed, {b.dataset.eval_images} images:" in curves_page


def test_curves_replaced_file_is_the_file_in_history(curves_page, tmp_path):
    """The file quick-sweep.json replaced: weights trained on an AVX2 CPU, same keys, other per-image results."""
    revs = _git("log", "--format=%h", "--", "leaderboards/quick-sweep.json").split()
    assert len(revs) >= 2
    path = tmp_path / "old-quick-sweep.json"
    path.write_text(_git("show", f"{revs[1]}:leaderboards/quick-sweep.json"), encoding="utf-8")
    old, new = store.load(path), committed(BOARDS / "quick-sweep.json")
    assert old.environment.cpu_capability == "AVX2" and not any(r.zoo_sha256 for r in old.training)
    assert {r.key for r in old.training} == {r.key for r in new.training}
    key = lambda c: (c.task.name, c.mode, c.attack.name)  # noqa: E731
    pairs = list(zip(sorted(old.cells, key=key), sorted(new.cells, key=key), strict=True))
    assert all(key(a) == key(b) for a, b in pairs)
    assert any((a.clean.flags() != b.clean.flags()).any() for a, b in pairs)
    assert "It replaced a file evaluated on weights trained on an AVX2 CPU (same keys, other weights" in curves_page


def test_curves_rotation_gate_and_show_worst_case(curves_page):
    b = committed(BOARDS / "quick-sweep.json")
    rotation = [c for c in b.cells if c.task.name.startswith("rotation")]
    assert rotation and all(
        not c.gated_flags(kind)[0].any() for c in rotation for kind in ("clean", "adversarial")
    )  # "rotation's ... on none"
    assert "rotation's (a metric of four values) on none" in curves_page
    worst = {w.defended.percent for w in b.worst_case}
    assert len(worst) == 1
    at16 = [c for c in b.cells if round(255 * c.threat.eps) == 16]
    assert all(not c.adv_rev.flags().any() for c in at16 if c.adaptive) and at16
    assert f"so on this file they read {worst.pop():.1f}% (the 16/255 points)" in curves_page


# results/adaptive.md ----------------------------------------------------------------------------------------------


COLUMNS = ("fgsm", "pgd10", "bpda-pgd10", "unrolled-pgd10", "ssl-aware-pgd10")


def test_adaptive_table_is_the_file(adaptive_page):
    b = committed(BOARDS / "quick-adaptive.json")
    cells = {(c.task.name, c.mode, c.attack.name): c for c in b.cells}
    worst = {(w.task, w.mode): w for w in b.worst_case}
    rows = []
    for mode in ("multitask", "classifier-first"):
        for task in ("inpaint", "jigsaw"):
            values = " | ".join(f"{cells[(task, mode, a)].adv_rev.percent:.1f}" for a in COLUMNS)
            rows.append(f"| {task} | {mode} | {values} | {worst[(task, mode)].defended.percent:.1f} |")
    _assert_all(rows, adaptive_page)


def test_adaptive_run_is_the_quick_json_models(adaptive_page):
    """Four of five stages trained again, the classifier cached, bit-identical with quick.json on the images
    both evaluate; no sanity check fired."""
    b, quick = committed(BOARDS / "quick-adaptive.json"), committed(BOARDS / "quick.json")
    stages = {r.stage for r in b.training}
    trained = {r.stage for r in b.training if not r.cached}
    assert {r.stage for r in b.training if r.cached} == {"classifier"}
    assert {r.key for r in b.training} == {r.key for r in quick.training}
    n = b.dataset.eval_images
    theirs = {(c.task.name, c.mode, c.attack.name): c for c in quick.cells}
    shared = [(c, theirs[k]) for c in b.cells if (k := (c.task.name, c.mode, c.attack.name)) in theirs]
    assert shared
    for mine, other in shared:
        assert mine.model_key == other.model_key
        for kind in ("clean", "clean_rev", "adv", "adv_rev"):
            assert np.array_equal(getattr(mine, kind).flags(), getattr(other, kind).flags()[:n])
    assert not b.warnings
    words = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six"}
    _assert_all(
        [
            f"{words[len(trained)]} of the {words[len(stages)]} stages trained again from scratch by the same "
            "code, the classifier from the cache, and bit-identical on the images both evaluate",
            "No sanity check fired.",
        ],
        adaptive_page,
    )


def test_adaptive_bullets_are_the_files(adaptive_page):
    from ssrbench.core.stats import mcnemar_exact

    quick = {(c.task.name, c.mode, c.attack.name): c for c in committed(BOARDS / "quick.json").cells}
    b = committed(BOARDS / "quick-adaptive.json")
    cells = {(c.task.name, c.mode, c.attack.name): c for c in b.cells}
    gain = {}
    for mode in ("multitask", "classifier-first"):
        c = quick[("inpaint", mode, "fgsm")]
        assert mcnemar_exact(c.adv.flags(), c.adv_rev.flags())[2] < 0.05  # "significant"
        gain[mode] = c.adv_rev.percent - c.adv.percent
        assert c.adv.n == quick[("inpaint", "multitask", "fgsm")].adv.n
    images = quick[("inpaint", "multitask", "fgsm")].adv.n
    modes = ("multitask", "classifier-first")
    pgd = max(cells[("inpaint", m, "pgd10")].adv_rev.percent for m in modes)
    adaptive = {cells[("inpaint", m, a)].adv_rev.percent for m in modes for a in ("bpda-pgd10", "unrolled-pgd10")}
    worst = {w.task: set() for w in b.worst_case}
    for w in b.worst_case:
        worst[w.task].add(w.defended.percent)
    assert pgd <= 1 and len(adaptive) == 1 and all(len(v) == 1 for v in worst.values())
    ssl = {f"{cells[('jigsaw', m, 'ssl-aware-pgd10')].pretext.adversarial:.1f}" for m in modes}
    assert len(ssl) == 1
    _assert_all(
        [
            f"(+{gain['multitask']:.1f} points multitask, +{gain['classifier-first']:.1f} classifier-first, "
            f"significant on {images:,} images) does not survive: against blind 10-step PGD the defended accuracy "
            f"is ≤{pgd:.0f}%, against BPDA and the unrolled attack {adaptive.pop():.1f}%, so the worst case is "
            f"{worst['inpaint'].pop():.1f}% in both modes",
            f"no gain survives either; the worst case is {worst['jigsaw'].pop():.1f}% in both modes",
            f"(permutation accuracy {ssl.pop()} on its adversarial images)",
        ],
        adaptive_page,
    )


# get-started.md and scale-out.md: the values they quote are the code's ---------------------------------------------


def test_get_started_presets_are_the_presets():
    """The Presets paragraph quotes each preset's epochs, images, backbone and adversarial training."""
    from ssrbench.core.presets import DEFAULT_PRESET, PRESETS

    quick, robust, full = PRESETS["quick"], PRESETS["quick-robust"], PRESETS["full"]
    assert DEFAULT_PRESET == "quick" and robust.adversarial_training == "fgsm-rs"  # "fast FGSM"
    assert full.train_precision == "auto" and full.eval_images == 10000  # "bf16 training on CUDA", "whole test set"
    assert robust.epochs_head == quick.epochs_head and robust.eval_images == quick.eval_images  # "`quick` on ..."
    page = " ".join(page_text("get-started.md").split())
    _assert_all(
        [
            f"`quick` (default) is sized for a laptop CPU: `{quick.backbone}`",
            f"{quick.epochs_classifier} classifier epochs, {quick.epochs_multitask} multitask epochs, "
            f"{quick.epochs_head} head epochs, the first {quick.eval_images:,} test images",
            f"(fast FGSM at {round(255 * robust.adv_eps)}/255, {robust.epochs_classifier} classifier and multitask "
            f"epochs at lr {robust.lr:g};",
            f"`full` is paper scale for a GPU: timm `{full.backbone}`, {full.epochs_classifier} epochs",
        ],
        page,
    )
    assert robust.epochs_multitask == robust.epochs_classifier and full.epochs_multitask == full.epochs_classifier


def test_scale_out_option_defaults_are_the_cli():
    """`--cpus-per-task` (default 1), `--gpus-per-task` (default 0), `--max-retries` (default 2)."""
    from ssrbench.run.ray_executor import WorkerSettings  # the options' defaults (None on the command line)

    s = WorkerSettings()
    page = " ".join(page_text("scale-out.md").split())
    _assert_all(
        [
            f"`--cpus-per-task` CPUs (default {s.cpus:g},",
            f"`--gpus-per-task` GPUs (default {s.gpus:g};",
            f"up to `--max-retries` times (default {s.max_retries})",
        ],
        page,
    )
