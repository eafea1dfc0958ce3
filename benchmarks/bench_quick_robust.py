"""Issue "Off the floor", item 5, and issue 30, item 4: the quick-robust classifier on a CPU, calibrated
on held-out training images.

A cold run (empty model cache) of the classifier-first rotation model of `--preset quick-robust`
against PGD-10. Prints the classifier stage's seconds against the 30-minute target, and the
undefended clean and PGD-10 accuracy of that classifier (the static robust base) against 50% / 30%,
measured on the training images adversarial training keeps out (the last 512 of the training images
it uses, never trained on) -- never on test images, on which the leaderboard is evaluated. Those two
numbers are what the classifier stage's held-out monitor recorded in its final logs (`heldout_clean_acc`,
`heldout_pgd_acc`: PGD-10 at the training eps, steps of eps/4, random start, the model in eval mode).
The leaderboard it writes holds the command, the environment and the CPU capability; the summary
(`bench_quick_robust_calibration.json`) holds the measurements and the images they were measured on.

    python benchmarks/bench_quick_robust.py --data-dir ../shared/data --keep benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import ssrbench
from ssrbench.leaderboard import store
from ssrbench.leaderboard.records import TrainingRecord
from ssrbench.leaderboard.schema import Leaderboard
from ssrbench.training import adversarial

TARGETS = {"classifier_minutes": 30.0, "clean": 50.0, "pgd10": 30.0}
SUMMARY = "bench_quick_robust_calibration.json"


def classifier_stage(board: Leaderboard) -> TrainingRecord:
    return next(t for t in board.training if t.stage == "classifier")


def heldout_images(board: Leaderboard, available: int) -> dict:
    """The images the calibration reads: the classifier stage's held-out *training* images, as
    ``TrainContext.train_range`` keeps them out (``available``: the dataset's training images)."""
    spec = classifier_stage(board).spec
    if spec.get("adversarial", {}).get("heldout") != adversarial.HELDOUT:
        raise SystemExit(
            f"the classifier stage kept {spec.get('adversarial', {}).get('heldout')} images out, "
            f"this code keeps {adversarial.HELDOUT}: no held-out images to calibrate on"
        )
    used = min(spec["train_images"] or available, available)
    start, stop = adversarial.heldout_range(used)
    return {
        "split": "train",
        "start": start,
        "stop": stop,
        "count": stop - start,
        "what": f"training images [{start}, {stop}) of {board.dataset.name} (fingerprint "
        f"{board.dataset.fingerprint[:12]}), the last {stop - start} of the first {used}, kept out of "
        f"adversarial training; no test image",
    }


def calibration(board: Leaderboard) -> dict[str, float]:
    """What the targets are checked on: the classifier stage's seconds and its held-out monitor's final
    readings. Reads the training record only -- never a cell, whose accuracies are on test images."""
    stage = classifier_stage(board)
    missing = {"heldout_clean_acc", "heldout_pgd_acc"} - set(stage.final_logs)
    if missing or stage.cached:
        raise SystemExit(
            f"the classifier stage's record lacks {sorted(missing)} (cached: {stage.cached}): "
            f"it must be trained by this code, from an empty cache"
        )
    return {
        "classifier_minutes": stage.seconds / 60,
        "clean": stage.final_logs["heldout_clean_acc"],
        "pgd10": stage.final_logs["heldout_pgd_acc"],
    }


def monitor_attack(board: Leaderboard) -> dict:
    eps = classifier_stage(board).spec["adversarial"]["eps"]
    return {
        "kind": "pgd",
        "eps": eps,
        "step_size": eps / 4,
        "steps": adversarial.MONITOR_STEPS,
        "random_start": True,
        "same_as_pgd10": abs(eps - 8 / 255) < 1e-12 and adversarial.MONITOR_STEPS == 10,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument(
        "--keep",
        type=Path,
        help=f"folder to keep the leaderboard (bench_quick_robust.json) and the summary ({SUMMARY}) in",
    )
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ssrbench-bench-"))
    out = (a.keep or work) / "bench_quick_robust.json"
    # the subprocess runs the same ssrbench as this script, whatever PYTHONPATH the caller set
    root = str(Path(ssrbench.__file__).resolve().parent.parent)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([root, *filter(None, [os.environ.get("PYTHONPATH")])])}
    subprocess.run(
        [
            sys.executable,
            "-m",
            "ssrbench.cli",
            "run",
            "--quiet",
            "--preset",
            "quick-robust",
            "--tasks",
            "rotation",
            "--modes",
            "classifier-first",
            "--attacks",
            "pgd10",
            "--threads",
            str(a.threads),
            "--data-dir",
            a.data_dir,
            "--cache-dir",
            str(work / "cache"),
            "--out",
            str(out),
        ],
        check=True,
        env=env,
    )
    board = store.load(out)
    from ssrbench.data.datasets import load_cifar10

    data = load_cifar10(a.data_dir, download=False)
    if data.fingerprint != board.dataset.fingerprint:
        raise SystemExit("the data set is not the one the run trained on")
    images = heldout_images(board, len(data.train_x))
    got = calibration(board)
    env_rec = board.environment.model_dump()
    print(
        f"machine: {env_rec.get('device_name')}, {env_rec.get('cpu_capability')} CPU, {env_rec.get('threads')} "
        f"threads, torch {env_rec.get('torch')}; commit {board.git_commit} (dirty: {board.git_dirty})"
    )
    print(f"calibrated on: {images['what']}")
    for k, target in TARGETS.items():
        ok = got[k] <= target if k == "classifier_minutes" else got[k] >= target
        print(
            f"{k:20s} {got[k]:7.1f}   target {'<=' if k == 'classifier_minutes' else '>='} {target:g}   "
            f"{'met' if ok else 'MISSED'}"
        )
    summary = {
        "measured": got,
        "targets": TARGETS,
        "images": images,
        "pgd": monitor_attack(board),
        "source": "the classifier stage's final_logs (heldout_clean_acc, heldout_pgd_acc) and seconds",
        "leaderboard": str(out),
        "git_commit": board.git_commit,
        "git_dirty": board.git_dirty,
        "environment": env_rec,
    }
    (out.parent / SUMMARY).write_text(json.dumps(summary, indent=1) + "\n")
    print(json.dumps({k: summary[k] for k in ("measured", "targets", "images", "leaderboard")}))


if __name__ == "__main__":
    main()
