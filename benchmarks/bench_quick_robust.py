"""Issue "Off the floor", item 5: the quick-robust classifier on a CPU.

A cold run (empty model cache) of the classifier-first rotation model of `--preset quick-robust`
against PGD-10. Prints the classifier stage's seconds against the 30-minute target, and the
undefended clean and PGD-10 accuracy of that classifier (the static robust base) against 50% / 30%.
The leaderboard it writes holds the command, the environment and the CPU capability.

    python benchmarks/bench_quick_robust.py --data-dir ../shared/data --keep benchmarks/results
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from ssrbench.leaderboard import store

TARGETS = {"classifier_minutes": 30.0, "clean": 50.0, "pgd10": 30.0}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--keep", type=Path, help="folder to keep the leaderboard in (bench_quick_robust.json)")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ssrbench-bench-"))
    out = (a.keep or work) / "bench_quick_robust.json"
    subprocess.run([sys.executable, "-m", "ssrbench.cli", "run", "--quiet", "--preset", "quick-robust",
                    "--tasks", "rotation", "--modes", "classifier-first", "--attacks", "pgd10",
                    "--threads", str(a.threads), "--data-dir", a.data_dir, "--cache-dir", str(work / "cache"),
                    "--out", str(out)], check=True)
    board = store.load(out)
    stage = next(t for t in board.training if t.stage == "classifier")
    cell = next(c for c in board.cells if c.mode == "classifier-first")
    got = {"classifier_minutes": stage.seconds / 60, "clean": cell.clean.percent, "pgd10": cell.adv.percent}
    env = board.environment.model_dump()
    print(f"machine: {env.get('cpu_capability')} CPU, {env.get('threads')} threads, torch {env.get('torch')}")
    for k, target in TARGETS.items():
        ok = got[k] <= target if k == "classifier_minutes" else got[k] >= target
        print(f"{k:20s} {got[k]:7.1f}   target {'<=' if k == 'classifier_minutes' else '>='} {target:g}   "
              f"{'met' if ok else 'MISSED'}")
    print(json.dumps({"measured": got, "targets": TARGETS, "leaderboard": str(out)}))


if __name__ == "__main__":
    main()
