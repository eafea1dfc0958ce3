"""What attack and reverse-attack settings do the source report's numbers imply?

The report gives neither eps nor step sizes. This measures, on the seed preset's trained models (taken
from the model cache, so run `ssrbench run --preset seed --tasks inpaint --attacks fgsm,pgd2` first)
and the same first test images as the leaderboard:

1. adversarial accuracy under FGSM at several eps, and under 2-step PGD variants at eps = 8/255
   (step eps/2 or eps, with or without a random start), beside the report's FGSM and PGD-2 accuracy;
2. the reverse attack's effect (Clean -> Clean+Rev, FGSM Adv -> Adv+Rev) at several reverse budgets,
   beside the report's.

The report's numbers are read from its Table I (ssrbench.studies.source_report), not typed again here.

Prints Markdown tables (the docs quote them unedited).

    python benchmarks/seed_settings.py --data-dir ../shared/data
"""

from __future__ import annotations

import argparse
import time

import torch

from ssrbench.adversarial.base import ATTACKS
from ssrbench.core.presets import PRESETS
from ssrbench.core.progress import Reporter
from ssrbench.data.datasets import DATASETS, pixels
from ssrbench.defense.reverse import reverse_attack
from ssrbench.pretext.base import TASKS
from ssrbench.run.config import ReverseConfig, load_task_config
from ssrbench.run.evaluate import correct_flags
from ssrbench.studies.source_report import report_row
from ssrbench.training.cache import ModelCache
from ssrbench.training.modes import MODES, TrainContext, build_model

MODES_ = ("multitask", "classifier-first")


def _batched(fn, x, y, bs):
    return torch.cat([fn(x[i : i + bs], y[i : i + bs]) for i in range(0, len(x), bs)])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--images", type=int, default=None, help="first N test images (default: the preset's)")
    ap.add_argument("--cache-dir", default=None)
    ap.add_argument("--preset", default="seed", help="whose cached models to use (smoke: a quick check of this script)")
    a = ap.parse_args()
    torch.manual_seed(0)
    preset = PRESETS[a.preset]
    data = DATASETS.get("cifar10")(a.data_dir, download=False)
    n = a.images or preset.eval_images
    x = pixels(data.test_x[:n], torch.device("cpu"))
    y = data.test_y[:n]
    bs = preset.eval_batch_size
    reporter = Reporter(quiet=True)
    ctx = TrainContext(
        data=data, preset=preset, device=torch.device("cpu"), seed=0, cache=ModelCache(a.cache_dir), reporter=reporter
    )
    tcfg = load_task_config("inpaint")
    task = TASKS.get(tcfg.kind)(tcfg.params)
    t0 = time.perf_counter()

    eps8 = 8 / 255
    settings = [(f"FGSM eps {e}/255", "fgsm", {"eps": e / 255}) for e in (2, 4, 8, 16)]
    settings += [
        (
            "PGD-2 eps 8/255, step eps/2, no random start (ssrbench pgd2)",
            "pgd",
            {"eps": eps8, "step_size": eps8 / 2, "steps": 2, "random_start": False},
        ),
        (
            "PGD-2 eps 8/255, step eps/2, random start",
            "pgd",
            {"eps": eps8, "step_size": eps8 / 2, "steps": 2, "random_start": True},
        ),
        (
            "PGD-2 eps 8/255, step eps, no random start",
            "pgd",
            {"eps": eps8, "step_size": eps8, "steps": 2, "random_start": False},
        ),
        (
            "PGD-2 eps 8/255, step eps, random start",
            "pgd",
            {"eps": eps8, "step_size": eps8, "steps": 2, "random_start": True},
        ),
        (
            "PGD-2 eps 16/255, step eps/2, no random start",
            "pgd",
            {"eps": 2 * eps8, "step_size": eps8, "steps": 2, "random_start": False},
        ),
    ]
    budgets = (4, 8, 16)
    adv: dict[tuple[str, str], float] = {}
    rev: dict[tuple[str, int], tuple[float, float, float, float]] = {}
    for mode in MODES_:
        built = build_model(MODES.get(mode)(), ctx, task)
        model = built.model
        if not all(r.cached for r in built.records):
            print(f"note: {mode} was not in the cache and was trained now (same spec as the seed run)")
        clean = correct_flags(model, x, y, bs)
        for label, kind, params in settings:
            attack = ATTACKS.get(kind)(params)
            gen = torch.Generator().manual_seed(0)
            x_adv = _batched(lambda xb, yb: attack(model, xb, yb, gen), x, y, bs)
            adv[(mode, label)] = 100 * correct_flags(model, x_adv, y, bs).mean()
        fgsm = ATTACKS.get("fgsm")({"eps": eps8})
        x_fgsm = _batched(lambda xb, yb: fgsm(model, xb, yb, None), x, y, bs)
        adv_acc = correct_flags(model, x_fgsm, y, bs)
        for b in budgets:
            cfg = ReverseConfig(eps=b / 255, step_size=b / 4 / 255, steps=10, random_start=False)
            c_rev = correct_flags(model, _batched(lambda xb, yb: reverse_attack(model, task, xb, cfg), x, y, bs), y, bs)
            a_rev = correct_flags(
                model, _batched(lambda xb, yb: reverse_attack(model, task, xb, cfg), x_fgsm, y, bs), y, bs
            )
            rev[(mode, b)] = tuple(100 * v.mean() for v in (clean, c_rev, adv_acc, a_rev))

    print(f"seed preset models, first {n} test images, {time.perf_counter() - t0:.0f} s\n")
    print("**Adversarial accuracy (%) by attack setting** (no reverse attack)\n")
    print("| attack | multitask | classifier-first |")
    print("|---|---:|---:|")
    adv_column = 2  # Table I's columns: Clean, Clean+Rev, Adv, Adv+Rev
    mt_fgsm, cf_fgsm, mt_pgd2 = (
        report_row(m, a).values[adv_column]
        for m, a in (("multitask", "fgsm"), ("classifier-first", "fgsm"), ("multitask", "pgd2"))
    )
    print(f"| *report: FGSM* | *{mt_fgsm:.2f}* | *{cf_fgsm:.2f}* |")
    print(f"| *report: PGD 2 iters* | *{mt_pgd2:.2f}* | – |")
    for label, _, _ in settings:
        print(f"| {label} | {adv[('multitask', label)]:.2f} | {adv[('classifier-first', label)]:.2f} |")
    print("\n**Reverse attack by budget** (10 steps of eps/4; FGSM at 8/255; Δ in points)\n")
    print("| mode | reverse eps | Clean | Clean+Rev | Δ clean | FGSM Adv | Adv+Rev | Δ adv |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|")
    for mode in MODES_:
        row = report_row(mode, "fgsm")  # the reverse-attack budgets below are measured under FGSM
        rc, ra = row.clean_effect, row.adv_effect
        print(f"| *{mode}, report* | *?* | | | *{rc:+.2f}* | | | *{ra:+.2f}* |")
        for b in budgets:
            c, cr, ad, ar = rev[(mode, b)]
            print(f"| {mode} | {b}/255 | {c:.2f} | {cr:.2f} | {cr - c:+.2f} | {ad:.2f} | {ar:.2f} | {ar - ad:+.2f} |")


if __name__ == "__main__":
    main()
