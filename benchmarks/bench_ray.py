"""Issue "Scale out", item 6: the same grid with the local executor and with Ray on this machine.

One process alternates the two (local, ray, local, ray, ...), each a cold run (`ssrbench run` in a
subprocess, an empty model cache of its own) of the same grid; the Ray runs start their own local Ray
instance (its start-up is part of their time) and run 2 units at once, 1 CPU and 1 torch thread each;
the local runs use all the machine's threads in one process. Prints the median seconds of each and the
ratio local / ray, keeps the JSON and the leaderboards, and prints the docs block from a kept JSON.

    python benchmarks/bench_ray.py --data-dir ../shared/data --keep benchmarks/results
    python benchmarks/bench_ray.py --readme benchmarks/results/bench_ray.json   # the README block
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from ssrbench.core.fileio import atomic_write_text
from ssrbench.leaderboard import store

MARK = ("<!-- bench-ray -->", "<!-- bench-ray end -->")
# the smoke preset on real CIFAR-10: 6 models (3 tasks x 2 modes) and a shared classifier, 13 units
GRID = ["--preset", "smoke", "--tasks", "inpaint,jigsaw,rotation", "--attacks", "fgsm,pgd10", "--quiet"]


def one_run(executor: str, data_dir: str, threads: int, work: Path, i: int) -> dict:
    out = work / f"{executor}-{i}.json"
    extra = ["--threads", str(threads)] if executor == "local" else ["--executor", "ray", "--cpus-per-task", "1"]
    cmd = [
        sys.executable,
        "-m",
        "ssrbench.cli",
        "run",
        *GRID,
        "--data-dir",
        data_dir,
        "--cache-dir",
        str(work / f"cache-{executor}-{i}"),
        "--out",
        str(out),
        *extra,
    ]
    t0 = time.perf_counter()
    subprocess.run(cmd, check=True)
    seconds = time.perf_counter() - t0
    board = store.load(out)
    return {
        "executor": executor,
        "seconds": seconds,
        "cells": len(board.cells),
        # the units' own seconds (training stages, and each model's evaluation once): the work, without waiting
        "unit_seconds": sum(r.ran_on.seconds for r in board.training if r.ran_on)
        + sum({(c.mode, c.task.name): c.ran_on.seconds for c in board.cells if c.ran_on}.values()),
        "command": ["ssrbench", *cmd[3:]],
    }


def markdown(kept: dict) -> str:
    env = kept["environment"]
    local = statistics.median(r["seconds"] for r in kept["runs"] if r["executor"] == "local")
    ray = statistics.median(r["seconds"] for r in kept["runs"] if r["executor"] == "ray")
    n = sum(r["executor"] == "ray" for r in kept["runs"])
    return (
        f"Measured with `python benchmarks/bench_ray.py --data-dir ../shared/data --keep benchmarks/results` on "
        f"{env['cpu_count']} cores ({env['device_name']}, {env['cpu_capability']}), Ray {kept['ray']}: the grid "
        f"`{' '.join(GRID[:-1])}` (cold cache, 13 units) takes {local:.0f} s with the local executor "
        f"({kept['threads']} torch threads in one process) and {ray:.0f} s with `--executor ray` (a local Ray "
        f"instance started by the run, 2 units at once, 1 thread each), medians of {n} alternated runs: "
        f"**{local / ray:.2f}×** the local executor's speed."
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--keep", type=Path, help="folder to keep bench_ray.json in")
    ap.add_argument("--readme", type=Path, help="print the README block from a kept JSON instead of measuring")
    a = ap.parse_args()
    if a.readme:
        print("\n".join([MARK[0], markdown(json.loads(a.readme.read_text())), MARK[1]]))
        return
    if not a.data_dir:
        ap.error("--data-dir is needed to measure")
    import ray
    import torch

    from ssrbench.models.environment import capture

    work = Path(tempfile.mkdtemp(prefix="ssrbench-bench-ray-"))
    runs = [one_run(ex, a.data_dir, a.threads, work, i) for i in range(a.repeats) for ex in ("local", "ray")]
    for r in runs:
        print(
            f"{r['executor']:5s} {r['seconds']:7.1f} s  {r['cells']} cells, units' own time {r['unit_seconds']:.1f} s"
        )
    result = {
        "repeats": a.repeats,
        "threads": a.threads,
        "ray": ray.__version__,
        "runs": runs,
        "environment": capture(torch.device("cpu")).model_dump(mode="json"),
        "command": ["python", *sys.argv],
    }
    text = json.dumps(result, indent=1)
    if a.keep:
        atomic_write_text(a.keep / "bench_ray.json", text + "\n")
    print(markdown(result))


if __name__ == "__main__":
    main()
