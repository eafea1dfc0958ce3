"""The contrastive defense's cost (issue "Contrastive task", item 6), measured on this machine.

Mao et al.'s reverse attack is 40 steps over 4 views per image; ssrbench's equal-budget config is 10.
For each: defended images per second (one reverse attack on a batch of 250, `ssr_resnet8`), the
forward+backward passes per defended image counted at the backbone's first convolution (so batching is
visible: all views of a step are one pass of n_views x batch images), and the same reverse attack with
the views fed one at a time, to show what batching them buys.

    python benchmarks/bench_contrastive.py            # about 5 minutes on 2 cores
"""

from __future__ import annotations

import argparse
import time

import torch

from ssrbench.defense.reverse import reverse_attack
from ssrbench.models.ssr_model import SSRModel
from ssrbench.pretext.contrastive import ContrastiveTask
from ssrbench.run.config import load_task_config


class OneViewAtATime(ContrastiveTask):
    """The same loss with each view's forward pass separate (what batching the views avoids)."""

    def _similarity(self, model, x, generator):
        v = self.views(x, generator)
        b = x.shape[0]
        zs = [
            model.heads["projection"](
                model.backbone.forward_head(model.task_features(v[i * b : (i + 1) * b]), pre_logits=True)
            )
            for i in range(self.params.n_views)
        ]
        z = torch.nn.functional.normalize(torch.cat(zs), dim=1)
        sim = z @ z.T
        return sim.masked_fill(torch.eye(len(sim), dtype=torch.bool), float("-inf"))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--images", type=int, default=250)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    x = torch.rand(a.images, 3, 32, 32)
    print(
        f"machine: {torch.backends.cpu.get_cpu_capability()} CPU, {a.threads} threads, torch {torch.__version__}; "
        f"batch {a.images}, ssr_resnet8"
    )
    for name in ("contrastive", "contrastive-mao21"):
        cfg = load_task_config(name)
        best: dict[str, float] = {}
        for _ in range(a.repeats):  # the two variants alternated, so neither gets the warm-up or a quieter spell
            for label, cls in (("views batched", ContrastiveTask), ("one view at a time", OneViewAtATime)):
                task = cls(cfg.params)
                model = task.attach(SSRModel("ssr_resnet8", (0.5,) * 3, (0.25,) * 3, 10, 32)).eval()
                model = model.to(memory_format=torch.channels_last)
                seen = []
                stem = next(m for m in model.backbone.modules() if isinstance(m, torch.nn.Conv2d))
                stem.register_forward_hook(lambda m, i, o: seen.append(i[0].shape[0]))
                t = time.perf_counter()
                reverse_attack(model, task, x, cfg.reverse, torch.Generator().manual_seed(0))
                best[label] = min(best.get(label, float("inf")), time.perf_counter() - t)
                passes = (len(seen), sum(seen) / a.images, task.params.n_views)
        for label, s in best.items():
            print(
                f"{name:18s} {label:19s} {cfg.reverse.steps:3d} steps x {passes[2]} views: "
                f"{a.images / s:6.1f} defended images/s (best of {a.repeats})"
            )
        print(
            f"{'':18s} {passes[1]:.0f} image-passes (forward+backward) per defended image; batched: "
            f"{cfg.reverse.steps} forward passes per batch, one view at a time: {cfg.reverse.steps * passes[2]}"
        )


if __name__ == "__main__":
    main()
