"""What batching the EOT samples of an adaptive attack would buy (issue "Performance", item 2), measured here.

An adaptive attack on a randomised defense averages its loss over ``eot_samples`` draws of the defense per
step; ssrbench runs the draws one after another (a loop of purify + classify). The alternative is one
reverse attack on the batch repeated ``eot_samples`` times. This times one EOT gradient both ways -- BPDA
through a random-start rotation reverse attack (10 steps, 8/255), where each image's purification depends
on that image alone, so the batched form is the same defense with other draws -- on `ssr_resnet8`, the two
forms alternated in this one process, median of --repeats.

(The contrastive defense is not batched at all: its InfoNCE loss takes every other image of the batch as a
negative, so EOT copies of an image in one batch would be negatives of each other -- another defense.)

    python benchmarks/bench_eot.py --keep benchmarks/results        # about 3 minutes on 2 cores
    python benchmarks/bench_eot.py --readme benchmarks/results/bench_eot.json   # the README block
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from ssrbench.adversarial.adaptive import bpda_logits
from ssrbench.core.budget import ReverseConfig
from ssrbench.core.fileio import atomic_write_text
from ssrbench.defense.reverse import Defense
from ssrbench.models.environment import capture
from ssrbench.models.ssr_model import SSRModel
from ssrbench.pretext.rotation import RotationTask


def eot_gradient_loop(defense: Defense, x: torch.Tensor, y: torch.Tensor, samples: int, gen: torch.Generator):
    z = x.clone().requires_grad_(True)
    loss = sum(F.cross_entropy(bpda_logits(defense, z, gen), y) for _ in range(samples)) / samples
    return torch.autograd.grad(loss, z)[0]


def eot_gradient_batched(defense: Defense, x: torch.Tensor, y: torch.Tensor, samples: int, gen: torch.Generator):
    z = x.clone().requires_grad_(True)
    logits = bpda_logits(defense, z.repeat(samples, 1, 1, 1), gen)
    loss = F.cross_entropy(logits, y.repeat(samples))  # the same mean over draws and images
    return torch.autograd.grad(loss, z)[0]


MARK = ("<!-- bench-eot -->", "<!-- bench-eot end -->")


def markdown(kept: dict) -> str:
    env, med = kept["environment"], {k: statistics.median(v) for k, v in kept["seconds"].items()}
    return (
        f"Measured with `python benchmarks/bench_eot.py --keep benchmarks/results` on {env['device_name']} "
        f"({env['cpu_capability']}), {env['threads']} threads, torch {env['torch']}: {kept['images']} images, "
        f"`ssr_resnet8`, BPDA through a random-start rotation reverse attack of 10 steps, EOT over "
        f"{kept['samples']} draws, the two forms alternated, median of {len(kept['seconds']['loop'])}: one EOT "
        f"gradient takes {med['loop']:.1f} s as a loop of draws and {med['batched']:.1f} s as one reverse attack "
        f"on the batch repeated {kept['samples']} times -- batching is **{med['loop'] / med['batched']:.2f}×** "
        f"the loop's speed."
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=100)
    ap.add_argument("--samples", type=int, default=4, help="EOT draws per gradient (bpda-pgd10 and eot4-apgd-ce: 4)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--keep", type=Path, help="folder to keep bench_eot.json in")
    ap.add_argument("--readme", type=Path, help="print the README block from a kept JSON instead of measuring")
    a = ap.parse_args()
    if a.readme:
        print("\n".join([MARK[0], markdown(json.loads(a.readme.read_text())), MARK[1]]))
        return
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    task = RotationTask()
    model = task.attach(SSRModel("ssr_resnet8", (0.5,) * 3, (0.25,) * 3, 10, 32)).eval()
    model = model.to(memory_format=torch.channels_last)
    defense = Defense(model, task, ReverseConfig(eps=8 / 255, step_size=2 / 255, steps=10, random_start=True))
    assert defense.randomized
    x = torch.rand(a.images, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (a.images,))
    forms = {"loop": eot_gradient_loop, "batched": eot_gradient_batched}
    times: dict[str, list[float]] = {k: [] for k in forms}
    for i in range(a.repeats + 1):  # the forms alternated; the first round warms up and is not counted
        for label, fn in forms.items():
            t = time.perf_counter()
            fn(defense, x, y, a.samples, torch.Generator().manual_seed(i))
            if i:
                times[label].append(time.perf_counter() - t)
    result = {
        "images": a.images,
        "samples": a.samples,
        "repeats": a.repeats,
        "seconds": times,
        "environment": capture(torch.device("cpu")).model_dump(mode="json"),
        "command": ["python", *sys.argv],
    }
    if a.keep:
        atomic_write_text(a.keep / "bench_eot.json", json.dumps(result, indent=1) + "\n")
    print(markdown(result))


if __name__ == "__main__":
    main()
