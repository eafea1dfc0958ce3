"""Issue "Performance": ssrbench's hot paths against the field's library and plain PyTorch loops.

Every pair runs on the same model (`ssr_resnet8`, random weights: speed does not depend on them) and
the same batch, alternated in this one process, each side the median of --repeats runs (>= 5):

- FGSM and PGD-10 against torchattacks' FGSM and PGD (target: ssrbench >= 1.2x as fast)
- the reverse attack (inpainting, rotation; 10 steps) against a plain 10-line PGD loop on the task
  loss (target >= 1.2x)
- the unrolled adaptive attack against PGD at the same steps (2; target <= 15x the cost per step)
- a training step of each stage (multitask, the classifier, classifier-first's heads) through
  ssrbench's public training path against a plain PyTorch loop doing the same work (target <= 1.05x)

and the achieved GFLOP/s of each (FLOPs counted with torch.utils.flop_counter) against the machine's
measured fp32 matmul rate. The JSON it keeps is what the README's performance block is generated from.

    python benchmarks/bench_speed.py --keep benchmarks/results     # about 10 minutes on 2 cores
    python benchmarks/bench_speed.py --readme benchmarks/results/bench_speed.json   # the README block
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from ssrbench.adversarial.base import ATTACKS
from ssrbench.budget import ReverseConfig
from ssrbench.data import ImageDataset, augment
from ssrbench.environment import capture
from ssrbench.fileio import atomic_write_text
from ssrbench.models.ssr_model import SSRModel
from ssrbench.presets import resolve_preset
from ssrbench.pretext.base import TASKS
from ssrbench.progress import Reporter
from ssrbench.training.cache import ModelCache
from ssrbench.training.modes import MODES, TrainContext, build_model
from ssrbench.defense.reverse import Defense, reverse_attack

EPS, STEP = 8 / 255, 2 / 255
MARK = "<!-- bench-speed -->", "<!-- bench-speed end -->"


def _median_pair(ours, theirs, repeats: int) -> tuple[float, float]:
    """Median seconds of two callables, alternated so neither gets the warm-up or a quieter spell."""
    ours(), theirs()  # warm-up: allocator, kernels, lazy imports
    a, b = [], []
    for _ in range(repeats):
        for fn, out in ((ours, a), (theirs, b)):
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
    return statistics.median(a), statistics.median(b)


def _flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def _pass_flops(loss_of, x: torch.Tensor, model: torch.nn.Module) -> int:
    """FLOPs of one forward and backward pass of ``loss_of`` on ``x``, gradient to the pixels only (counted
    with ``.backward()`` and the weights frozen: the counter cannot follow ``autograd.grad`` to a leaf, which
    the attacks use, and an attack computes no weight gradient)."""
    def one() -> None:
        z = x.clone().requires_grad_(True)
        loss_of(z).sum().backward()
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        p.requires_grad_(False)
    try:
        return _flops(one)
    finally:
        for p in params:
            p.requires_grad_(True)


def matmul_gflops(n: int = 1024, repeats: int = 20) -> float:
    a, b = torch.rand(n, n), torch.rand(n, n)
    a @ b
    t0 = time.perf_counter()
    for _ in range(repeats):
        a @ b
    return 2 * n ** 3 * repeats / (time.perf_counter() - t0) / 1e9


def _model(task_name: str) -> tuple[SSRModel, object]:
    torch.manual_seed(0)
    task = TASKS.get(task_name)()
    model = task.attach(SSRModel("ssr_resnet8", (0.5,) * 3, (0.25,) * 3, 10, 32))
    return model.eval().to(memory_format=torch.channels_last), task


def plain_reverse(model, task, x, eps, step, steps):
    """The reverse attack as anyone would write it: signed-gradient descent on the task loss, projected."""
    z = x.clone()
    for _ in range(steps):
        z.requires_grad_(True)
        (g,) = torch.autograd.grad(task.reverse_loss(model, z).sum(), z)
        z = torch.min(torch.max(z.detach() - step * g.sign(), x - eps), x + eps).clamp(0, 1)
    return z


def attack_rows(batch: int, repeats: int) -> list[dict]:
    import torchattacks

    model, task = _model("inpaint")
    x = torch.rand(batch, 3, 32, 32).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,))
    gen = lambda: torch.Generator().manual_seed(0)  # noqa: E731
    fgsm = ATTACKS.get("fgsm")({"eps": EPS})
    pgd = ATTACKS.get("pgd")({"eps": EPS, "step_size": STEP, "steps": 10, "random_start": True})
    ce = _pass_flops(lambda z: F.cross_entropy(model(z), y, reduction="none"), x, model)
    rows = [
        ("FGSM", "torchattacks FGSM", lambda: fgsm(model, x, y, gen()), lambda: torchattacks.FGSM(model, eps=EPS)(x, y),
         ce),
        ("PGD-10", "torchattacks PGD", lambda: pgd(model, x, y, gen()),
         lambda: torchattacks.PGD(model, eps=EPS, alpha=STEP, steps=10, random_start=True)(x, y), 10 * ce),
    ]
    rev = ReverseConfig(eps=EPS, step_size=STEP, steps=10)
    for name in ("inpaint", "rotation"):
        m, t = _model(name)
        rows.append((f"reverse attack ({name}, 10 steps)", "plain PGD loop on the task loss",
                     lambda m=m, t=t: reverse_attack(m, t, x, rev), lambda m=m, t=t: plain_reverse(m, t, x, EPS, STEP, 10),
                     10 * _pass_flops(lambda z, m=m, t=t: t.reverse_loss(m, z), x, m)))
    # per step: 2 attack steps each (the unrolled attack's 10-step reverse attack inside every step)
    unrolled = ATTACKS.get("unrolled")({"eps": EPS, "step_size": STEP, "steps": 2, "random_start": True})
    pgd2 = ATTACKS.get("pgd")({"eps": EPS, "step_size": STEP, "steps": 2, "random_start": True})
    defense = Defense(model, task, rev)
    rows.append(("unrolled-pgd10 (cost)", "PGD, same steps", lambda: unrolled(model, x, y, gen(), defense=defense),
                 lambda: pgd2(model, x, y, gen()), None))  # second-order: not counted
    out = []
    for what, against, ours, theirs, flops in rows:
        a, b = _median_pair(ours, theirs, repeats)
        out.append({"what": what, "against": against, "ours_s": a, "theirs_s": b, "flops": flops})
        print(f"{what:38s} {a:8.3f}s  vs {against:32s} {b:8.3f}s", file=sys.stderr)
    return out


def _dataset(n: int) -> ImageDataset:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return ImageDataset(name="synthetic", train_x=x, train_y=y, test_x=x[:10], test_y=y[:10], mean=(0.5,) * 3,
                        std=(0.25,) * 3, classes=tuple(str(i) for i in range(10)), fingerprint="synthetic", source="bench")


def _plain_training(stage: str, task_name: str, data: ImageDataset, preset, steps: int):
    """The same work as ssrbench's stage -- model, optimisers, augmentation, losses -- as a bare loop."""
    def run() -> None:
        torch.manual_seed(0)
        task = TASKS.get(task_name)()
        model = SSRModel(preset.backbone, data.mean, data.std, 10, 32)
        if stage != "classifier":
            model = task.attach(model)
        model = model.to(memory_format=torch.channels_last)
        gen = torch.Generator().manual_seed(1)
        heads = [p for k, m in model.heads.items() if k not in task.aux_heads for p in m.parameters()]
        aux = [p for k in task.aux_heads for p in model.heads[k].parameters()] if stage != "classifier" else []
        shared = list(model.backbone.parameters()) + list(model.classifier.parameters())
        opts = []
        if stage in ("multitask", "classifier"):
            opts.append(torch.optim.SGD(shared, lr=preset.lr, momentum=0.9, nesterov=True, weight_decay=preset.weight_decay))
        if stage in ("multitask", "heads"):
            opts.append(torch.optim.Adam(heads, lr=preset.head_lr, betas=(0.5, 0.999)))
        aux_opt = torch.optim.Adam(aux, lr=preset.head_lr / 10, betas=(0.5, 0.999)) if aux else None
        if stage == "heads":
            for p in shared:
                p.requires_grad_(False)
            model.eval()
            model.heads.train()
        else:
            model.train()
        bs = preset.batch_size
        x_all = data.train_x
        for i in range(steps):
            x = augment(x_all[i * bs:(i + 1) * bs].float().div_(255), gen).contiguous(memory_format=torch.channels_last)
            y = data.train_y[i * bs:(i + 1) * bs]
            loss, aux_loss = 0.0, None
            if stage in ("multitask", "classifier"):
                loss = F.cross_entropy(model(x), y)
            if stage in ("multitask", "heads"):
                tl = task.training_loss(model, x, gen)
                loss, aux_loss = loss + tl.loss, tl.aux_loss
            for o in opts:
                o.zero_grad(set_to_none=True)
            loss.backward()
            for o in opts:
                o.step()
            if aux_opt is not None and aux_loss is not None:
                aux_opt.zero_grad(set_to_none=True)
                aux_loss.backward()
                aux_opt.step()
    return run


def training_rows(repeats: int, steps: int) -> list[dict]:
    preset = resolve_preset("quick", {"epochs_classifier": 1, "epochs_head": 1, "epochs_multitask": 1})
    data = _dataset(steps * preset.batch_size)
    preset = preset.model_copy(update={"train_images": len(data.train_x)})
    cache = ModelCache(Path(tempfile.mkdtemp(prefix="ssrbench-bench-speed-")))
    out = []
    for label, mode, stage, record in (("training step: multitask/inpaint", "multitask", "multitask", 0),
                                       ("training step: classifier", "classifier-first", "classifier", 0),
                                       ("training step: heads (classifier-first/inpaint)", "classifier-first", "heads", 1)):
        seconds: list[float] = []

        def ours() -> None:
            ctx = TrainContext(data=data, preset=preset, device=torch.device("cpu"), seed=0, cache=cache,
                               reporter=Reporter(quiet=True), retrain=True)
            built = build_model(MODES.get(mode)(), ctx, TASKS.get("inpaint")())
            seconds.append(built.records[record].seconds)

        plain = _plain_training(stage, "inpaint", data, preset, steps)
        times_plain = []

        def theirs() -> None:
            t0 = time.perf_counter()
            plain()
            times_plain.append(time.perf_counter() - t0)

        _median_pair(ours, theirs, repeats)  # ours is timed by the stage's own record (its training alone)
        a, b = statistics.median(seconds[1:]) / steps, statistics.median(times_plain[1:]) / steps
        out.append({"what": label, "against": "plain PyTorch loop", "ours_s": a, "theirs_s": b,
                    "flops": _flops(lambda: _plain_training(stage, "inpaint", data, preset, 1)())})
        print(f"{label:38s} {a:8.3f}s  vs plain loop {b:8.3f}s (per step)", file=sys.stderr)
    return out


TARGETS = {"FGSM": (">=", 1.2), "PGD-10": (">=", 1.2), "reverse attack (inpaint, 10 steps)": (">=", 1.2),
           "reverse attack (rotation, 10 steps)": (">=", 1.2), "unrolled-pgd10 (cost)": ("<=", 15.0),
           "training step: multitask/inpaint": ("<=", 1.05), "training step: classifier": ("<=", 1.05),
           "training step: heads (classifier-first/inpaint)": ("<=", 1.05)}


def markdown(result: dict) -> str:
    env = result["environment"]
    lines = [f"Measured by `python benchmarks/bench_speed.py` on {env['device_name']} ({env['cpu_capability']}), "
             f"{env['threads']} threads, torch {env['torch']}; batch {result['batch']}, `ssr_resnet8`, median of "
             f"{result['repeats']} alternated runs per side; machine fp32 matmul {result['matmul_gflops']:.0f} GFLOP/s.",
             "", "| what | against | ssrbench | other | ratio | target | met | ssrbench GFLOP/s (% of matmul) |",
             "|---|---|---:|---:|---:|---|---|---:|"]
    for r in result["rows"]:
        cost = r["what"].startswith("unrolled") or r["what"].startswith("training")
        ratio = r["ours_s"] / r["theirs_s"] if cost else r["theirs_s"] / r["ours_s"]
        op, target = TARGETS[r["what"]]
        met = ratio >= target if op == ">=" else ratio <= target
        rate = r["flops"] / r["ours_s"] / 1e9 if r["flops"] else None  # training: one step's FLOPs over its seconds
        kind = "cost ×" if cost else "speed ×"
        lines.append(f"| {r['what']} | {r['against']} | {r['ours_s']:.3f} s | {r['theirs_s']:.3f} s | {kind} {ratio:.2f} | "
                     f"{op} {target:g} | {'yes' if met else '**no**'} | "
                     + (f"{rate:.1f} ({100 * rate / result['matmul_gflops']:.0f}%) |" if rate else "not counted |"))
    lines += ["", "speed × = other / ssrbench (above 1: ssrbench is faster); cost × = ssrbench / other (per step for "
                  "training; the unrolled attack against PGD at the same number of steps). GFLOP/s: FLOPs counted by "
                  "torch.utils.flop_counter (attacks: one pass with pixel gradients only, times the passes; training: "
                  "one step)."]
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=250)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--train-steps", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--keep", type=Path, help="folder to keep bench_speed.json in")
    ap.add_argument("--readme", type=Path, help="print the README block from a kept JSON instead of measuring")
    a = ap.parse_args()
    if a.readme:
        print("\n".join([MARK[0], markdown(json.loads(a.readme.read_text())), MARK[1]]))
        return
    if a.repeats < 5:
        ap.error("--repeats must be at least 5 (a median of fewer says little)")
    torch.set_num_threads(a.threads)
    result = {"batch": a.batch, "repeats": a.repeats, "environment": capture(torch.device("cpu")).model_dump(mode="json"),
              "matmul_gflops": matmul_gflops(), "command": ["python", *sys.argv]}
    result["rows"] = attack_rows(a.batch, a.repeats) + training_rows(a.repeats, a.train_steps)
    text = json.dumps(result, indent=1)
    if a.keep:
        atomic_write_text(a.keep / "bench_speed.json", text + "\n")
    print(markdown(result))


if __name__ == "__main__":
    main()
