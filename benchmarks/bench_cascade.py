"""Issue "Adaptive evaluation at the cost it needs", item 3: the attack cascade against the full grid.

One process runs the same `ssrbench run` twice on the same cached models -- the grid (every attack on every
image) and `--cascade` (each attack on the images still robust) -- and compares them: the worst case per image
(defended and undefended, per (task, mode)), the attack work (the seconds each spent attacking, reverse-attacking
the adversarial images and checking them; the grid's cells also measure what a cascade does not: per-attack
accuracies, pretext metrics, transfer to the base) and each run's evaluation time. Target: at least 2x less attack
time at an identical worst case. The models should be in the cache (the first run trains what is missing, and
the timings compared are the attacks', which training does not touch).

    python benchmarks/bench_cascade.py --data-dir ../shared/data --cache-dir DIR --keep benchmarks/results
    python benchmarks/bench_cascade.py --readme benchmarks/results/bench_cascade.json   # the docs block
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ssrbench.core.fileio import atomic_write_text
from ssrbench.leaderboard import store

MARK = ("<!-- bench-cascade -->", "<!-- bench-cascade end -->")
TARGETS = {"attack time, grid / cascade": (">=", 2.0), "worst case, images that differ": ("==", 0)}
RUN = ["--preset", "quick-robust", "--tasks", "inpaint", "--modes", "classifier-first", "--adaptive"]
ATTACK_WORK = ("attack", "reverse", "randomized", "transfer")  # a grid cell's seconds spent on its attack


def one_run(args: list[str], work: Path, name: str) -> tuple[store.Leaderboard, float, list[str]]:
    out = work / f"{name}.json"
    cmd = [sys.executable, "-m", "ssrbench.cli", "run", *args, "--out", str(out), "--quiet"]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    return store.load(out), time.perf_counter() - t0, ["ssrbench", *cmd[3:]]


def compare(grid: store.Leaderboard, cascade: store.Leaderboard) -> dict:
    """Per (task, mode): images whose worst case differs, and each side's attack seconds and worst case."""
    rows = []
    worst = {(w.task, w.mode, w.seed): w for w in grid.worst_case}
    for c in cascade.cascades:
        w = worst[(c.task.name, c.mode, c.seed)]
        cells = [g for g in grid.cells if (g.task.name, g.mode, g.seed) == (c.task.name, c.mode, c.seed)]
        measured = [g for g in cells if not (g.threat and g.threat.probe)]
        rows.append(
            {
                "task": c.task.name,
                "mode": c.mode,
                "images": c.clean.n,
                "order": [s.attack.name for s in c.stages],
                "ran_on": [s.ran_on for s in c.stages],
                "fooled_defended": [s.fooled_defended for s in c.stages],
                "grid_attacks": [g.attack.name for g in measured],
                "grid_attack_seconds": sum(g.seconds.get(k, 0.0) for g in measured for k in ATTACK_WORK),
                "cascade_attack_seconds": sum(s.seconds for s in c.stages),
                "grid_worst": w.defended.percent,
                "cascade_worst": c.defended.percent,
                "defended_differ": int((w.defended.flags() != c.defended.flags()).sum()),
                "undefended_differ": int((w.undefended.flags() != c.undefended.flags()).sum()),
                "grid_evaluation_seconds": max((g.ran_on.seconds for g in cells if g.ran_on), default=None),
                "cascade_evaluation_seconds": c.ran_on.seconds if c.ran_on else None,
            }
        )
    return {"rows": rows}


def markdown(kept: dict) -> str:
    env = kept["environment"]
    lines = [
        f"Measured with `{' '.join(kept['command'])}` on {env['cpu_count']} cores ({env['device_name']}, "
        f"{env['cpu_capability']}, {env['threads']} threads), models from the cache: "
        f"`ssrbench run {' '.join(kept['run'])}` on the first {kept['images']} test images, once as the grid "
        "and once with `--cascade` (order `cost`).",
        "",
        "| task | mode | attacks | grid: attack s | cascade: attack s | grid / cascade | worst case, grid | "
        "worst case, cascade | images that differ (defended, undefended) |",
        "|---|---|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in kept["rows"]:
        ratio = r["grid_attack_seconds"] / r["cascade_attack_seconds"]
        lines.append(
            f"| {r['task']} | {r['mode']} | {len(r['order'])} | {r['grid_attack_seconds']:.0f} | "
            f"{r['cascade_attack_seconds']:.0f} | **{ratio:.2f}×** | {r['grid_worst']:.1f}% | "
            f"{r['cascade_worst']:.1f}% | {r['defended_differ']}, {r['undefended_differ']} |"
        )
    r = kept["rows"][0]
    lines += [
        "",
        "The cascade's order and the images each attack ran on: "
        + ", ".join(f"{a} {n}" for a, n in zip(r["order"], r["ran_on"]))
        + f" (of {r['images']}).",
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--cache-dir", default=None, help="the model cache holding the run's models")
    ap.add_argument("--images", type=int, default=200)
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--keep", type=Path, help="folder to keep bench_cascade.json and both leaderboards in")
    ap.add_argument("--readme", type=Path, help="print the docs block from a kept JSON instead of measuring")
    a = ap.parse_args()
    if a.readme:
        print("\n".join([MARK[0], markdown(json.loads(a.readme.read_text())), MARK[1]]))
        return
    if not a.data_dir:
        ap.error("--data-dir is needed to measure")
    import torch

    from ssrbench.models.environment import capture

    if a.threads:
        torch.set_num_threads(a.threads)
    work = Path(tempfile.mkdtemp(prefix="ssrbench-bench-cascade-"))
    args = [*RUN, "--eval-images", str(a.images), "--data-dir", a.data_dir]
    args += ["--cache-dir", a.cache_dir] if a.cache_dir else []
    args += ["--threads", str(a.threads)] if a.threads else []
    grid, grid_s, grid_cmd = one_run(args, work, "grid")
    cascade, cascade_s, cascade_cmd = one_run([*args, "--cascade"], work, "cascade")
    result = {
        "images": a.images,
        "run": RUN,
        **compare(grid, cascade),
        "grid_seconds_total": grid_s,
        "cascade_seconds_total": cascade_s,
        "commands": [grid_cmd, cascade_cmd],
        "environment": capture(torch.device("cpu")).model_dump(mode="json"),
        "command": ["python", *sys.argv],
        "targets": {k: list(v) for k, v in TARGETS.items()},
    }
    for r in result["rows"]:
        r["met"] = bool(
            r["grid_attack_seconds"] / r["cascade_attack_seconds"] >= TARGETS["attack time, grid / cascade"][1]
            and r["defended_differ"] == r["undefended_differ"] == 0
        )
    if a.keep:
        atomic_write_text(a.keep / "bench_cascade.json", json.dumps(result, indent=1) + "\n")
        for name, board in (("grid", grid), ("cascade", cascade)):
            store.save(board, a.keep / "bench_cascade" / f"{name}.json")
    print(markdown(result))


if __name__ == "__main__":
    main()
