"""AutoAttack three ways on one model and the same images (issue 35): ssrbench's `autoattack` (the reference
engine, pyautoattack underneath), the authors' package called directly, and `autoattack-torchattacks` (the
torchattacks assembly ssrbench used before). Whether ssrbench reports what the reference reports, at the
reference's cost, and how far the older engine was from it.

For each: the robust accuracy after each stage (APGD-CE, APGD-T, FAB-T, Square), the per-image agreement of
the final robust flags with the direct call's, and the wall time of the attack (CPU time beside it; with
--repeats, the median over rounds in which the sides alternate -- on a shared CPU one round's times are noise).
Targets (TARGETS): ssrbench's robust accuracy within 0.3 points of the direct call's; ssrbench's time at most
1.05x the direct call's. The torchattacks row has no target: it is what the change of engine changed.

The model is a trained stage's backbone and classifier (the classifier alone is attacked, as `autoattack`
does): from a model cache (--cache-dir, --model-key) or from the zoo (--model-key; by default the zoo's first
classifier stage, a non-robust one that every stage-1 attack already breaks: give a robust model's key for a
meaningful run). The images are the first --images CIFAR-10 test images (--data-dir), as a run evaluates them.

ssrbench's two engines run as a run does: the attack on batches of --batch-size images, each batch's seed drawn
from one generator seeded with --seed. The direct call is one ``run_standard_evaluation`` over all the images
with ``batch_size=--batch-size`` and the first batch's seed; its count after each stage is read from its own
log. With clean accuracy below 100% or more images than one batch, its batches of robust images are not
ssrbench's, so image-level results may differ by chance (hence a tolerance, not equality).

    python benchmarks/bench_autoattack.py --data-dir ../shared/data --cache-dir DIR --model-key KEY \\
        --device cuda --keep benchmarks/results                               # 1000 images
    python benchmarks/bench_autoattack.py --data-dir ../shared/data --images 32   # a check that it works
    python benchmarks/bench_autoattack.py --readme benchmarks/results/bench_autoattack.json   # the docs block
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import statistics
import sys
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

import torch

from ssrbench.adversarial.autoattack import STAGES, library
from ssrbench.adversarial.base import ATTACKS
from ssrbench.core.fileio import atomic_write_text
from ssrbench.data.datasets import load_cifar10, pixels
from ssrbench.models.environment import capture, exact_fp32, resolve_device
from ssrbench.models.ssr_model import SSRModel
from ssrbench.run.config import load_attack_config
from ssrbench.training.cache import ModelCache
from ssrbench.training.zoo import Zoo

MARK = ("<!-- bench-autoattack -->", "<!-- bench-autoattack end -->")
TARGETS = {"robust accuracy: points from the direct call": ("<=", 0.3), "time: x the direct call": ("<=", 1.05)}
SIDES = {  # row -> (label, the named config it runs; None: the package called directly)
    "direct": ("pyautoattack, called directly", None),
    "ssrbench": ("ssrbench `autoattack` (reference engine)", "autoattack"),
    "torchattacks": ("ssrbench `autoattack-torchattacks`", "autoattack-torchattacks"),
}


def installed_version(dist: str) -> str | None:
    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def load_classifier(key: str | None, cache_dir: Path | None, data, device: torch.device) -> tuple[SSRModel, dict]:
    """A stage's backbone and classifier from the cache or the zoo, in eval mode on ``device``."""
    zoo = Zoo()
    if key is None:
        key = next(e.key for e in zoo.manifest().entries if e.stage == "classifier")
    hit = ModelCache(cache_dir, enabled=cache_dir is not None, zoo=zoo).load(key)
    if hit is None:
        raise SystemExit(f"stage {key} is neither in {cache_dir or 'the model cache (no --cache-dir)'} nor in the zoo")
    state, info = hit
    spec = info.get("spec") or zoo.entry(key).spec
    if spec.get("data_fingerprint") not in (None, data.fingerprint):
        raise SystemExit(f"stage {key} was trained on other data than --data-dir holds")
    model = SSRModel(spec["backbone"], data.mean, data.std, len(data.classes), data.image_size)
    model.load_state_dict({k: v for k, v in state.items() if not k.startswith("heads.")})
    source = "zoo" if info.get("zoo_sha256") else str(cache_dir)
    return model.to(device).eval(), {"key": key, "from": source, "backbone": spec["backbone"], "spec": spec}


def run_direct(model, x, y, eps: float, seed: int, batch_size: int) -> dict:
    """The package as its README shows it, its count after each stage read from its own log."""
    aa = library("reference").AutoAttack(model, norm="Linf", eps=eps, version="standard", seed=seed, device=x.device)
    lines: list[tuple[int, str]] = []
    handler = logging.Handler(logging.DEBUG)
    handler.emit = lambda record: lines.append((record.levelno, record.getMessage()))
    level = aa.logger.level
    aa.logger.addHandler(handler)
    aa.logger.setLevel(logging.DEBUG)
    try:
        t, cpu = time.perf_counter(), time.process_time()
        # the package's own layout (a run's images are channels-last; its zero-gradient check views them flat)
        _, predicted = aa.run_standard_evaluation(x.contiguous(), y, batch_size=batch_size)
        seconds, cpu = time.perf_counter() - t, time.process_time() - cpu
    finally:
        aa.logger.removeHandler(handler)
        aa.logger.setLevel(level)
    stages = {s: 0.0 for s in STAGES["standard"]}  # a stage it skipped (no robust image left) left none
    for _, line in lines:
        if m := re.match(r"robust accuracy after (\S+): ([\d.]+)%", line):
            stages[m.group(1).lower()] = round(float(m.group(2)) / 100 * len(x)) / len(x)
    flags = (predicted == y).cpu().int().tolist()
    warned = list(dict.fromkeys(line for level, line in lines if level >= logging.WARNING))  # its checks' findings
    return {"seconds": seconds, "cpu_seconds": cpu, "stages": stages, "flags": flags, "warnings": warned}


def run_ssrbench(model, x, y, config: str, seed: int, batch_size: int) -> dict:
    """A named config's attack as a run calls it: batch by batch, one generator for the seeds."""
    cfg = load_attack_config(config)
    attack = ATTACKS.get(cfg.kind)(cfg.params)
    gen = torch.Generator().manual_seed(seed)
    flags, left, seconds, cpu = [], dict.fromkeys(STAGES["standard"], 0.0), 0.0, 0.0
    for i in range(0, len(x), batch_size):
        xb, yb = x[i : i + batch_size], y[i : i + batch_size]
        t, c = time.perf_counter(), time.process_time()
        adv = attack(model, xb, yb, gen)
        seconds, cpu = seconds + time.perf_counter() - t, cpu + time.process_time() - c
        for stage in left:
            left[stage] += attack.stats[f"robust_{stage}"] * len(xb)
        with torch.no_grad():
            flags.append((model(adv).argmax(1) == yb).cpu())
    stages = {s: n / len(x) for s, n in left.items()}
    return {"seconds": seconds, "cpu_seconds": cpu, "stages": stages, "flags": torch.cat(flags).int().tolist()}


def summary(result: dict) -> dict:
    """Each side's robust accuracy, agreement with the direct call, and the targets judged."""
    runs, direct = result["runs"], result["runs"]["direct"]
    rows = {}
    for side, run in runs.items():
        same = sum(a == b for a, b in zip(run["flags"], direct["flags"]))
        rows[side] = {
            "robust": 100 * sum(run["flags"]) / len(run["flags"]),
            "agreement": 100 * same / len(run["flags"]),
            "time_ratio": run["seconds"] / direct["seconds"],
        }
    got = {
        "robust accuracy: points from the direct call": abs(rows["ssrbench"]["robust"] - rows["direct"]["robust"]),
        "time: x the direct call": rows["ssrbench"]["time_ratio"],
    }
    met = {k: (got[k] <= t) if op == "<=" else (got[k] >= t) for k, (op, t) in TARGETS.items()}
    return {"rows": rows, "measured": got, "met": met}


def markdown(result: dict) -> str:
    env, s = result["environment"], summary(result)
    cpu = env["device"] == "cpu"
    on = env["device_name"] + (f" ({env['cpu_capability']}), {env['threads']} threads" if cpu else "")
    m, eps = result["model"], f"{result['eps'] * 255:g}/255"
    lines = [
        f"Measured with `{' '.join(result['command'])}` on {on}, torch {env['torch']}, pyautoattack "
        f"{result['libraries']['pyautoattack']}, torchattacks {result['libraries']['torchattacks']}: the first "
        f"{result['images']} CIFAR-10 test images, batches of {result['batch_size']}, stage {m['key']} "
        f"(`{m['backbone']}`, from {m['from']}), clean accuracy {result['clean']:.1f}%, eps {eps}; time: the median "
        f"of {result['repeats']} alternated round(s).",
        "",
        "| | APGD-CE | APGD-T | FAB-T | Square | robust | same flag as direct | time |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for side, run in result["runs"].items():
        r = s["rows"][side]
        stages = " | ".join(f"{100 * run['stages'][st]:.1f}%" for st in STAGES["standard"])
        lines.append(
            f"| {SIDES[side][0]} | {stages} | {r['robust']:.1f}% | {r['agreement']:.1f}% | "
            f"{run['seconds']:.1f} s ({r['time_ratio']:.2f}×) |"
        )
    lines += [""] + [
        f"Target: {k} {op} {t:g} -- {s['measured'][k]:.2f}, {'met' if s['met'][k] else '**missed**'}."
        for k, (op, t) in TARGETS.items()
    ]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", type=Path)
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument("--batch-size", type=int, default=250, help="ssrbench's batches; the direct call's batch_size")
    ap.add_argument("--cache-dir", type=Path, help="a model cache to take --model-key from (else: the zoo)")
    ap.add_argument("--model-key", help="the stage whose backbone and classifier are attacked (default: zoo's first)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=1, help="rounds of the three sides, alternated; time: the median")
    ap.add_argument("--no-torchattacks", action="store_true", help="leave out the torchattacks row (the slowest)")
    ap.add_argument("--keep", type=Path, help="folder to keep bench_autoattack.json in")
    ap.add_argument("--readme", type=Path, help="print the docs block from a kept JSON instead of measuring")
    a = ap.parse_args()
    if a.readme:
        print("\n".join([MARK[0], markdown(json.loads(a.readme.read_text())), MARK[1]]))
        return
    if a.data_dir is None:
        ap.error("--data-dir is needed to measure")
    torch.set_num_threads(a.threads)
    dev = resolve_device(a.device)
    data = load_cifar10(a.data_dir, download=False)
    model, about = load_classifier(a.model_key, a.cache_dir, data, dev)
    x, y = pixels(data.test_x[: a.images], dev), data.test_y[: a.images].to(dev)
    eps = load_attack_config("autoattack").params["eps"]
    assert load_attack_config("autoattack-torchattacks").params["eps"] == eps
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=torch.Generator().manual_seed(a.seed)))  # batch 1's
    with exact_fp32():
        with torch.no_grad():
            clean = 100 * (model(x).argmax(1) == y).float().mean().item()
            model(x[: a.batch_size])  # warm-up, so that no side pays for the first call
        sides = {
            "direct": lambda: run_direct(model, x, y, eps, seed, a.batch_size),
            "ssrbench": lambda: run_ssrbench(model, x, y, "autoattack", a.seed, a.batch_size),
            "torchattacks": lambda: run_ssrbench(model, x, y, "autoattack-torchattacks", a.seed, a.batch_size),
        }
        if a.no_torchattacks:
            del sides["torchattacks"]
        rounds = [{side: run() for side, run in sides.items()} for _ in range(a.repeats)]  # the sides alternated
    runs = {}
    for side in sides:  # the first round's results, each time the median over the rounds
        runs[side] = rounds[0][side] | {
            "seconds": statistics.median(r[side]["seconds"] for r in rounds),
            "cpu_seconds": statistics.median(r[side]["cpu_seconds"] for r in rounds),
            "seconds_each": [r[side]["seconds"] for r in rounds],
            "same_flags_each_round": all(r[side]["flags"] == rounds[0][side]["flags"] for r in rounds),
        }
    result = {
        "images": len(x),
        "batch_size": a.batch_size,
        "eps": eps,
        "seed": a.seed,
        "repeats": a.repeats,
        "model": about,
        "clean": clean,
        "runs": runs,
        "targets": TARGETS,
        "environment": capture(dev).model_dump(mode="json"),
        "libraries": {name: installed_version(name) for name in ("pyautoattack", "torchattacks")},
        "command": ["python", *sys.argv],
    }
    result |= {k: v for k, v in summary(result).items() if k != "rows"}
    if a.keep:
        atomic_write_text(a.keep / "bench_autoattack.json", json.dumps(result, indent=1) + "\n")
    print(markdown(result))


if __name__ == "__main__":
    main()
