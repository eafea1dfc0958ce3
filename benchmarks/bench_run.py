"""Issue targets for `ssrbench run`, measured side by side in one process tree.

1. A cold run (empty model cache) of `ssrbench run --tasks inpaint --attacks fgsm,pgd2`: wall time
   against the 15-minute target, and classifier-first clean accuracy against 65%.
2. A warm run that adds pgd10: must re-use every cached model, so it costs evaluation only --
   printed as ratios to the cold run and to the cold run's evaluation.

    python benchmarks/bench_run.py --data-dir ../shared/data            # quick preset (~15 min on 2 cores)
    python benchmarks/bench_run.py --data-dir ../shared/data --preset smoke
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ssrbench.leaderboard import store


def _run(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ssrbench.cli", "run", "--quiet", *args], check=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--keep", type=Path, help="folder to keep the two leaderboards in")
    a = ap.parse_args()
    work = Path(tempfile.mkdtemp(prefix="ssrbench-bench-"))
    out_dir = a.keep or work
    common = ["--preset", a.preset, "--data-dir", a.data_dir, "--cache-dir", str(work / "cache"), "--tasks", "inpaint"]

    cold_s = _run([*common, "--attacks", "fgsm,pgd2", "--out", str(out_dir / "cold.json")])
    warm_s = _run([*common, "--attacks", "fgsm,pgd2,pgd10", "--out", str(out_dir / "warm.json")])
    cold, warm = store.load(out_dir / "cold.json"), store.load(out_dir / "warm.json")

    train_s = sum(r.seconds for r in cold.training if not r.cached)
    eval_cold = cold.seconds_total - train_s
    cf_clean = next(c.clean.percent for c in cold.cells if c.mode == "classifier-first")
    print(f"preset {a.preset} on {cold.environment.device_name} ({cold.environment.threads} threads)")
    print(f"cold run            {cold_s / 60:6.2f} min   (target <= 15 min: {'ok' if cold_s <= 900 else 'MISSED'})")
    print(f"  training          {train_s / 60:6.2f} min   " + ", ".join(f"{r.stage} {r.seconds:.0f}s" for r in cold.training))
    print(f"  evaluation etc.   {eval_cold / 60:6.2f} min")
    print(f"classifier-first clean accuracy {cf_clean:.2f}%  (target >= 65%: {'ok' if cf_clean >= 65 else 'MISSED'})")
    print(f"warm run (+pgd10)   {warm_s / 60:6.2f} min   all models cached: {all(r.cached for r in warm.training)}")
    print(f"ratio warm / cold            {warm_s / cold_s:.3f}")
    print(f"ratio warm / cold evaluation {warm.seconds_total / eval_cold:.3f}  (pgd10 with its reverse attack costs more "
          f"than fgsm and pgd2 together; no training in the warm run)")


if __name__ == "__main__":
    main()
