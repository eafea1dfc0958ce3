"""Issue targets for `ssrbench run`, measured side by side in one process tree.

1. A cold run (empty model cache) of `ssrbench run --tasks inpaint --attacks fgsm,pgd2`: wall time
   against the 15-minute target, and classifier-first clean accuracy against 65%.
2. A warm run that adds pgd10: must re-use every cached model, so it costs evaluation only --
   printed as ratios to the cold run and to the cold run's evaluation.

    python benchmarks/bench_run.py --data-dir ../shared/data            # quick preset (~15 min on 2 cores)
    python benchmarks/bench_run.py --data-dir ../shared/data --preset smoke

Whole-run figures (issue "Performance"): where a run's time goes, phase by phase, read from the seconds
every leaderboard records (training per stage; per cell: clean classification, clean reverse attack,
attack, reverse attack, a randomised defense's extra draws). The performance page's block is

    python benchmarks/bench_run.py --phases benchmarks/results/main-cold.json benchmarks/results/adaptive-warm.json

(`ssrbench run ... --out` of the two runs, kept unedited.)
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ssrbench.leaderboard import store

MARK = "<!-- whole-run -->", "<!-- whole-run end -->"
KEPT = (
    "benchmarks/results/main-cold.json",
    "benchmarks/results/main-cold-avx512.json",
    "benchmarks/results/main-zoo.json",
    "benchmarks/results/adaptive-warm.json",
)  # the performance page's runs
PHASES = (
    ("clean_classify", "evaluation: clean images classified"),
    ("clean_reverse", "evaluation: reverse attack on clean images"),
    ("attack", "evaluation: attacks"),
    ("reverse", "evaluation: reverse attack on attacked images"),
    ("randomized", "evaluation: a randomised defense's extra draws"),
)


def phases(board) -> list[tuple[str, float]]:
    """(phase, seconds) of one run: each stage it trained, each evaluation phase summed over its cells (a
    model's clean phases once, not once per attack), and the rest (data, gate, writing)."""
    rows = [(f"training: {r.stage}", r.seconds) for r in board.training if not r.cached]
    per_model: dict[tuple, dict] = {}
    attack_side: dict[str, float] = {}
    for c in board.cells:
        per_model[(c.task.name, c.mode, c.model_key)] = c.seconds
        for key in ("attack", "reverse", "randomized"):
            attack_side[key] = attack_side.get(key, 0.0) + c.seconds.get(key, 0.0)
    clean = {k: sum(s.get(k, 0.0) for s in per_model.values()) for k in ("clean_classify", "clean_reverse")}
    for key, label in PHASES:
        value = clean.get(key, attack_side.get(key, 0.0))
        if value:
            rows.append((label, value))
    rows.append(("other: data, detection gate, writing", board.seconds_total - sum(v for _, v in rows)))
    return rows


def markdown(boards) -> str:
    lines = []
    for b in boards:
        env = b.environment
        trained = {r.stage for r in b.training if not r.cached}  # a stage shared by tasks shows as cached again
        zoo = list(dict.fromkeys(r.stage for r in b.training if r.zoo_sha256 and r.stage not in trained))
        cached = list(
            dict.fromkeys(r.stage for r in b.training if r.cached and r.stage not in trained and r.stage not in zoo)
        )
        how = (f" (models cached: {', '.join(cached)})" if cached else "") + (
            f" (empty cache, weights from the zoo: {', '.join(zoo)})" if zoo else ""
        )
        lines += [
            f"`{' '.join(b.command)}` — preset {b.preset}, commit `{(b.git_commit or '?')[:7]}`, on "
            f"{env.device_name} ({env.cpu_capability}), {env.threads} threads, torch {env.torch}: "
            f"**{b.seconds_total / 60:.1f} min**" + (how or " (cold: every model trained)"),
            "",
            "| phase | minutes | share |",
            "|---|---:|---:|",
        ]
        lines += [f"| {label} | {sec / 60:.1f} | {100 * sec / b.seconds_total:.0f}% |" for label, sec in phases(b)]
        lines.append("")
    return "\n".join(lines).rstrip()


def _run(args: list[str]) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-m", "ssrbench.cli", "run", "--quiet", *args], check=True)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir")
    ap.add_argument(
        "--phases", type=Path, nargs="+", help="print the performance page's whole-run block from these leaderboards"
    )
    ap.add_argument("--preset", default="quick")
    ap.add_argument("--keep", type=Path, help="folder to keep the two leaderboards in")
    a = ap.parse_args()
    if a.phases:
        print("\n".join([MARK[0], markdown([store.load(p) for p in a.phases]), MARK[1]]))
        return
    if not a.data_dir:
        ap.error("--data-dir is needed to run (or --phases to print the block)")
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
    print(
        f"  training          {train_s / 60:6.2f} min   "
        + ", ".join(f"{r.stage} {r.seconds:.0f}s" for r in cold.training)
    )
    print(f"  evaluation etc.   {eval_cold / 60:6.2f} min")
    print(f"classifier-first clean accuracy {cf_clean:.2f}%  (target >= 65%: {'ok' if cf_clean >= 65 else 'MISSED'})")
    print(f"warm run (+pgd10)   {warm_s / 60:6.2f} min   all models cached: {all(r.cached for r in warm.training)}")
    print(f"ratio warm / cold            {warm_s / cold_s:.3f}")
    print(
        f"ratio warm / cold evaluation {warm.seconds_total / eval_cold:.3f}  (pgd10 with its reverse attack costs more "
        f"than fgsm and pgd2 together; no training in the warm run)"
    )


if __name__ == "__main__":
    main()
