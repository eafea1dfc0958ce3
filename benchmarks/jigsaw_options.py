"""Jigsaw design choices, measured side by side in one run.

For each variant of the jigsaw config (how tiles reach the backbone, permutation-set size, separate
BatchNorm statistics) it trains both modes and prints clean accuracy, permutation accuracy on held-out
images and the cost of a multitask training step relative to inpainting's, measured in the same run.

    python benchmarks/jigsaw_options.py --data-dir ../shared/data                  # CPU, quick-sized
    python benchmarks/jigsaw_options.py --data-dir DIR --train-images 10000 --epochs 5 --device cuda
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch

from ssrbench.core.presets import PRESETS
from ssrbench.core.progress import Reporter
from ssrbench.data.datasets import load_cifar10
from ssrbench.run.config import load_attack_config, load_task_config
from ssrbench.run.runner import run
from ssrbench.run.spec import RunSpec
from ssrbench.training.cache import ModelCache

VARIANTS: dict[str, dict] = {
    "default": {},
    "tiles@16px": {"tile_input": 16},
    "tiles@32px": {"tile_input": 32},
    "shared-bn": {"separate_bn_stats": False},
    "perms=30": {"permutations": 30},
    "perms=100": {"permutations": 100},
    "weight=2": {"multitask_weight": 2.0},
    "hidden=1024": {"hidden": 1024},
    "own-last-stage": {"task_stages": 1},
}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data-dir", required=True)
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--train-images", type=int, default=None)
    ap.add_argument("--epochs", type=int, default=None, help="multitask and head epochs (default: the quick preset's)")
    ap.add_argument("--eval-images", type=int, default=500)
    ap.add_argument("--variants", default=",".join(VARIANTS))
    a = ap.parse_args()

    data = load_cifar10(a.data_dir, download=False)
    q = PRESETS["quick"]
    preset = q.model_copy(
        update={
            "train_images": a.train_images,
            "eval_images": a.eval_images,
            **({"epochs_multitask": a.epochs, "epochs_head": a.epochs} if a.epochs else {}),
        }
    )
    cache = ModelCache(Path(tempfile.mkdtemp(prefix="jigsaw-options-")))
    base = load_task_config("jigsaw")
    inpaint = load_task_config("inpaint")
    fgsm = [load_attack_config("fgsm")]
    rows = []
    with Reporter(quiet=True) as reporter:
        ref = run(
            RunSpec(tasks=[inpaint], attacks=fgsm, modes=["multitask"], preset_name="quick", preset=preset),
            data,
            device=torch.device(a.device),
            cache=cache,
            reporter=reporter,
            command=[],
        )
        inpaint_s = ref.training[0].seconds
        for name in a.variants.split(","):
            params = {**base.params, **VARIANTS[name]}
            cfg = base.model_copy(update={"params": params, "name": f"jigsaw[{name}]"})
            board = run(
                RunSpec(
                    tasks=[cfg],
                    attacks=fgsm,
                    modes=["multitask", "classifier-first"],
                    preset_name="quick",
                    preset=preset,
                ),
                data,
                device=torch.device(a.device),
                cache=cache,
                reporter=reporter,
                command=[],
            )
            mt = next(r for r in board.training if r.stage.startswith("multitask"))
            rows.append((name, mt.seconds / inpaint_s, {c.mode: c for c in board.cells}, params["permutations"]))
    print(
        f"device {a.device}, train images {a.train_images or 'all'}, multitask epochs {preset.epochs_multitask}, "
        f"head epochs {preset.epochs_head}, eval images {a.eval_images}; chance = 1 / permutations"
    )
    print(
        f"{'variant':12} {'MT step vs inpaint':>18} {'MT clean':>9} {'MT perm acc':>12} "
        f"{'CF perm acc':>12} {'chance':>7}"
    )
    for name, ratio, cells, perms in rows:
        mt, cf = cells["multitask"], cells["classifier-first"]
        print(
            f"{name:12} {ratio:18.2f} {mt.clean.percent:9.2f} {mt.pretext.clean:12.3f} {cf.pretext.clean:12.3f} "
            f"{1 / perms:7.3f}"
        )


if __name__ == "__main__":
    main()
