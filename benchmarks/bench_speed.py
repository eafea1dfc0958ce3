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
measured fp32 matmul rate. Then what the options of the GPU path buy, each against the same work without
it (no target: they are measured to decide where they are used):

- a training step in bf16 autocast against fp32 (CUDA only: a CPU without bf16 units emulates it), for
  the quick preset's model and for the full preset's (resnet18, batch 128)
- torch.compile: a plain training step and ssrbench's PGD-10 on the compiled model against eager (and, on a
  GPU, PGD-10 through CUDA graphs: mode "reduce-overhead")
- TF32 convolutions (PyTorch's CUDA default) against the exact fp32 that ssrbench's attacks run in, with
  the share of input-gradient signs on which the two agree

The JSON it keeps is what the performance page's blocks are generated from.

    python benchmarks/bench_speed.py --keep benchmarks/results     # about 10 minutes on 2 cores
    python benchmarks/bench_speed.py --device cuda --keep benchmarks/results    # a GPU: a few minutes
    python benchmarks/bench_speed.py --readme benchmarks/results/bench_speed.json   # the README block
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from ssrbench.adversarial.base import ATTACKS
from ssrbench.core.budget import ReverseConfig
from ssrbench.core.fileio import atomic_write_text
from ssrbench.core.presets import resolve_preset
from ssrbench.core.progress import Reporter
from ssrbench.data.datasets import ImageDataset, augment
from ssrbench.defense.reverse import Defense, reverse_attack
from ssrbench.models.environment import capture, exact_fp32, resolve_device
from ssrbench.models.ssr_model import SSRModel
from ssrbench.pretext.base import TASKS
from ssrbench.training.cache import ModelCache
from ssrbench.training.modes import MODES, TrainContext, build_model

EPS, STEP = 8 / 255, 2 / 255
MARK = "<!-- bench-speed -->", "<!-- bench-speed end -->"
MARK_CUDA = "<!-- bench-speed-cuda -->", "<!-- bench-speed-cuda end -->"
DEV = torch.device("cpu")  # set by main(): where every row runs


def marks(result: dict) -> tuple[str, str]:
    """The docs block a kept measurement belongs in: one for the CPU, one for a GPU."""
    return MARK_CUDA if result["environment"]["device"].startswith("cuda") else MARK


def kept_name(device: torch.device) -> str:
    return "bench_speed.json" if device.type == "cpu" else f"bench_speed_{device.type}.json"


def _sync() -> None:
    if DEV.type == "cuda":
        torch.cuda.synchronize(DEV)


def _seconds(fn) -> float:
    """One call's seconds; a GPU's queue is drained before and after, so a time is the work's, not its launch's."""
    _sync()
    t0 = time.perf_counter()
    fn()
    _sync()
    return time.perf_counter() - t0


def _median_pair(ours, theirs, repeats: int) -> tuple[float, float]:
    """Median seconds of two callables, alternated so neither gets the warm-up or a quieter spell."""
    ours(), theirs()  # warm-up: allocator, kernels, lazy imports, compilation
    a, b = [], []
    for _ in range(repeats):
        for fn, out in ((ours, a), (theirs, b)):
            out.append(_seconds(fn))
    return statistics.median(a), statistics.median(b)


def _gen(seed: int = 0) -> torch.Generator:
    return torch.Generator(device=DEV).manual_seed(seed)


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


def matmul_gflops(dtype: torch.dtype = torch.float32, repeats: int = 20) -> float:
    """The device's matrix-product rate (fp32 without TF32), the ceiling the rows are read against."""
    n = 1024 if DEV.type == "cpu" else 8192
    a, b = torch.rand(n, n, device=DEV, dtype=dtype), torch.rand(n, n, device=DEV, dtype=dtype)
    with exact_fp32():
        a @ b
        _sync()
        t0 = time.perf_counter()
        for _ in range(repeats):
            a @ b
        _sync()
    return 2 * n**3 * repeats / (time.perf_counter() - t0) / 1e9


def _model(task_name: str) -> tuple[SSRModel, object]:
    torch.manual_seed(0)
    task = TASKS.get(task_name)()
    model = task.attach(SSRModel("ssr_resnet8", (0.5,) * 3, (0.25,) * 3, 10, 32))
    return model.eval().to(device=DEV, memory_format=torch.channels_last), task


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
    x = torch.rand(batch, 3, 32, 32, device=DEV).contiguous(memory_format=torch.channels_last)
    y = torch.randint(0, 10, (batch,), device=DEV)
    gen = _gen
    fgsm = ATTACKS.get("fgsm")({"eps": EPS})
    pgd = ATTACKS.get("pgd")({"eps": EPS, "step_size": STEP, "steps": 10, "random_start": True})
    ce = _pass_flops(lambda z: F.cross_entropy(model(z), y, reduction="none"), x, model)
    rows = [
        (
            "FGSM",
            "torchattacks FGSM",
            lambda: fgsm(model, x, y, gen()),
            lambda: torchattacks.FGSM(model, eps=EPS)(x, y),
            ce,
        ),
        (
            "PGD-10",
            "torchattacks PGD",
            lambda: pgd(model, x, y, gen()),
            lambda: torchattacks.PGD(model, eps=EPS, alpha=STEP, steps=10, random_start=True)(x, y),
            10 * ce,
        ),
    ]
    rev = ReverseConfig(eps=EPS, step_size=STEP, steps=10)
    for name in ("inpaint", "rotation"):
        m, t = _model(name)
        rows.append(
            (
                f"reverse attack ({name}, 10 steps)",
                "plain PGD loop on the task loss",
                lambda m=m, t=t: reverse_attack(m, t, x, rev),
                lambda m=m, t=t: plain_reverse(m, t, x, EPS, STEP, 10),
                10 * _pass_flops(lambda z, m=m, t=t: t.reverse_loss(m, z), x, m),
            )
        )
    # per step: 2 attack steps each (the unrolled attack's 10-step reverse attack inside every step)
    unrolled = ATTACKS.get("unrolled")({"eps": EPS, "step_size": STEP, "steps": 2, "random_start": True})
    pgd2 = ATTACKS.get("pgd")({"eps": EPS, "step_size": STEP, "steps": 2, "random_start": True})
    defense = Defense(model, task, rev)
    rows.append(
        (
            "unrolled-pgd10 (cost)",
            "PGD, same steps",
            lambda: unrolled(model, x, y, gen(), defense=defense),
            lambda: pgd2(model, x, y, gen()),
            None,
        )
    )  # second-order: not counted
    out = []
    for what, against, ours, theirs, flops in rows:
        with exact_fp32():  # both sides: what ssrbench's evaluation runs in
            a, b = _median_pair(ours, theirs, repeats)
        out.append({"what": what, "against": against, "ours_s": a, "theirs_s": b, "flops": flops})
        print(f"{what:38s} {a:8.3f}s  vs {against:32s} {b:8.3f}s", file=sys.stderr)
    return out


def _dataset(n: int) -> ImageDataset:
    """Synthetic uint8 images on the host, as a real dataset is (training moves them to the device)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (n,), generator=g)
    return ImageDataset(
        name="synthetic",
        train_x=x,
        train_y=y,
        test_x=x[:10],
        test_y=y[:10],
        mean=(0.5,) * 3,
        std=(0.25,) * 3,
        classes=tuple(str(i) for i in range(10)),
        fingerprint="synthetic",
        source="bench",
    )


def compile_model(model: torch.nn.Module) -> torch.nn.Module:
    return torch.compile(model)


def _plain_training(stage: str, task_name: str, data: ImageDataset, preset, steps: int):
    """The same work as ssrbench's stage -- model, optimisers, augmentation, losses -- as a bare loop."""

    def run() -> None:
        torch.manual_seed(0)
        task = TASKS.get(task_name)()
        model = SSRModel(preset.backbone, data.mean, data.std, 10, 32)
        if stage != "classifier":
            model = task.attach(model)
        model = model.to(device=DEV, memory_format=torch.channels_last)
        gen = _gen(1)
        heads = [p for k, m in model.heads.items() if k not in task.aux_heads for p in m.parameters()]
        aux = [p for k in task.aux_heads for p in model.heads[k].parameters()] if stage != "classifier" else []
        shared = list(model.backbone.parameters()) + list(model.classifier.parameters())
        opts = []
        if stage in ("multitask", "classifier"):
            opts.append(
                torch.optim.SGD(shared, lr=preset.lr, momentum=0.9, nesterov=True, weight_decay=preset.weight_decay)
            )
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
        x_all, y_all = data.train_x[: steps * bs].to(DEV), data.train_y[: steps * bs].to(DEV)
        for i in range(steps):
            x = augment(x_all[i * bs : (i + 1) * bs].float().div_(255), gen).contiguous(
                memory_format=torch.channels_last
            )
            y = y_all[i * bs : (i + 1) * bs]
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


def _preset(steps: int, precision: str = "fp32", **other):
    preset = resolve_preset(
        "quick",
        {"epochs_classifier": 1, "epochs_head": 1, "epochs_multitask": 1, "train_precision": precision, **other},
    )
    return preset.model_copy(update={"train_images": steps * preset.batch_size})


def _ours_training(mode: str, stage_record: int, data: ImageDataset, preset, seconds: list[float]):
    """One stage through ssrbench's public training path; its own record times the training alone. Each
    call trains: a new, empty cache every time (one cache retrains a stage only once per run)."""

    def run() -> None:
        cache = ModelCache(Path(tempfile.mkdtemp(prefix="ssrbench-bench-speed-")))
        ctx = TrainContext(
            data=data, preset=preset, device=DEV, seed=0, cache=cache, reporter=Reporter(quiet=True), retrain=True
        )
        built = build_model(MODES.get(mode)(), ctx, TASKS.get("inpaint")())
        record = built.records[stage_record]
        if record.cached:
            raise RuntimeError(f"{record.stage} came from the cache: nothing was timed")
        seconds.append(record.seconds)

    return run


def _timed(fn, times: list[float]):
    """``fn``, keeping each call's seconds in ``times``."""
    return lambda: times.append(_seconds(fn))


def training_rows(repeats: int, steps: int) -> list[dict]:
    preset = _preset(steps)  # fp32 (no TF32), as the plain loop it is compared with
    data = _dataset(steps * preset.batch_size)
    out = []
    for label, mode, stage, record in (
        ("training step: multitask/inpaint", "multitask", "multitask", 0),
        ("training step: classifier", "classifier-first", "classifier", 0),
        ("training step: heads (classifier-first/inpaint)", "classifier-first", "heads", 1),
    ):
        seconds: list[float] = []
        times_plain: list[float] = []
        with exact_fp32():
            # ours is timed by the stage's own record (its training alone), the loop from outside
            _median_pair(
                _ours_training(mode, record, data, preset, seconds),
                _timed(_plain_training(stage, "inpaint", data, preset, steps), times_plain),
                repeats,
            )
            flops = _flops(lambda: _plain_training(stage, "inpaint", data, preset, 1)())
        a, b = statistics.median(seconds[1:]) / steps, statistics.median(times_plain[1:]) / steps
        out.append({"what": label, "against": "plain PyTorch loop", "ours_s": a, "theirs_s": b, "flops": flops})
        print(f"{label:38s} {a:8.3f}s  vs plain loop {b:8.3f}s (per step)", file=sys.stderr)
    return out


def _plain_classifier_steps(data: ImageDataset, preset, steps: int, compiled: bool):
    """``steps`` classifier training steps of one model built once (compiled once, when asked)."""
    torch.manual_seed(0)
    model = SSRModel(preset.backbone, data.mean, data.std, 10, 32).to(device=DEV, memory_format=torch.channels_last)
    model.train()
    net = compile_model(model) if compiled else model
    opt = torch.optim.SGD(
        model.parameters(), lr=preset.lr, momentum=0.9, nesterov=True, weight_decay=preset.weight_decay
    )
    bs, gen = preset.batch_size, _gen(1)
    x_all, y_all = data.train_x[: steps * bs].to(DEV), data.train_y[: steps * bs].to(DEV)

    def run() -> None:
        for i in range(steps):
            x = augment(x_all[i * bs : (i + 1) * bs].float().div_(255), gen).contiguous(
                memory_format=torch.channels_last
            )
            loss = F.cross_entropy(net(x), y_all[i * bs : (i + 1) * bs])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    return run


def option_rows(batch: int, repeats: int, steps: int) -> list[dict]:
    """What each option of the GPU path buys against the same work without it (speed × = without / with)."""
    out = []

    def add(what: str, against: str, with_s: float, without_s: float, **extra) -> None:
        out.append({"what": what, "against": against, "with_s": with_s, "without_s": without_s, **extra})
        print(f"{what:46s} {with_s:8.4f}s  vs {against:30s} {without_s:8.4f}s {extra or ''}", file=sys.stderr)

    data = _dataset(steps * 256)
    if DEV.type == "cuda":  # a CPU without bf16 units only emulates it
        full = {"backbone": "resnet18", "batch_size": 128}  # the full preset's model and batch
        for label, mode, record, other in (
            ("classifier", "classifier-first", 0, {}),
            ("multitask/inpaint", "multitask", 0, {}),
            ("classifier, resnet18 batch 128", "classifier-first", 0, full),
        ):
            s16: list[float] = []
            s32: list[float] = []
            _median_pair(
                _ours_training(mode, record, data, _preset(steps, "bf16", **other), s16),
                _ours_training(mode, record, data, _preset(steps, "fp32", **other), s32),
                repeats,
            )
            add(
                f"training step ({label}), bf16 autocast",
                "the same step in fp32",
                statistics.median(s16[1:]) / steps,
                statistics.median(s32[1:]) / steps,
            )

    preset = _preset(steps)
    with exact_fp32():
        compiled = _plain_classifier_steps(data, preset, steps, compiled=True)
        first = _seconds(compiled)  # a compiled callable's first call: mostly its compilation
        a, b = _median_pair(compiled, _plain_classifier_steps(data, preset, steps, compiled=False), repeats)
        add(
            "training step (classifier), torch.compile",
            "the same step, eager",
            a / steps,
            b / steps,
            first_call_s=first,
        )
        model, _ = _model("inpaint")
        x = torch.rand(batch, 3, 32, 32, device=DEV).contiguous(memory_format=torch.channels_last)
        y = torch.randint(0, 10, (batch,), device=DEV)
        pgd = ATTACKS.get("pgd")({"eps": EPS, "step_size": STEP, "steps": 10, "random_start": True})
        net = compile_model(model)
        first = _seconds(lambda: pgd(net, x, y, _gen()))
        a, b = _median_pair(lambda: pgd(net, x, y, _gen()), lambda: pgd(model, x, y, _gen()), repeats)
        add("PGD-10, torch.compile", "the same attack, eager", a, b, first_call_s=first)
        if DEV.type == "cuda":  # CUDA graphs: one launch per graph instead of one per kernel
            what = "PGD-10, torch.compile (CUDA graphs)"
            try:
                net = torch.compile(model, mode="reduce-overhead")
                first = _seconds(lambda: pgd(net, x, y, _gen()))
                a, b = _median_pair(lambda: pgd(net, x, y, _gen()), lambda: pgd(model, x, y, _gen()), repeats)
                add(what, "the same attack, eager", a, b, first_call_s=first)
            except Exception as exc:  # noqa: BLE001 - a failed option is a finding, kept with its reason
                out.append(
                    {"what": what, "against": "the same attack, eager", "error": f"{type(exc).__name__}: {exc}"[:300]}
                )
                print(f"{what}: failed: {exc}", file=sys.stderr)

    if DEV.type == "cuda":  # TF32: PyTorch's default for cuDNN convolutions; ssrbench attacks in fp32

        def grad(tf32: bool) -> torch.Tensor:
            torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = tf32
            z = x.clone().requires_grad_(True)
            (g,) = torch.autograd.grad(F.cross_entropy(model(z), y), z)
            return g

        def pgd_with(tf32: bool):
            def run() -> None:
                torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = tf32
                pgd(model, x, y, _gen())

            return run

        with exact_fp32():  # restores PyTorch's settings afterwards
            agree = (grad(True).sign() == grad(False).sign()).float().mean().item()
            a, b = _median_pair(pgd_with(True), pgd_with(False), repeats)
        add("PGD-10, TF32 convolutions", "the same attack in fp32 (ssrbench)", a, b, grad_sign_agreement=agree)
    return out


TARGETS = {
    "FGSM": (">=", 1.2),
    "PGD-10": (">=", 1.2),
    "reverse attack (inpaint, 10 steps)": (">=", 1.2),
    "reverse attack (rotation, 10 steps)": (">=", 1.2),
    "unrolled-pgd10 (cost)": ("<=", 15.0),
    "training step: multitask/inpaint": ("<=", 1.05),
    "training step: classifier": ("<=", 1.05),
    "training step: heads (classifier-first/inpaint)": ("<=", 1.05),
}


def markdown(result: dict) -> str:
    env = result["environment"]
    on = (
        f"{env['device_name']} ({env['cpu_capability']}), {env['threads']} threads"
        if env["device"] == "cpu"
        else f"{env['device_name']} (host CPU {env['cpu_capability']})"
    )
    how = "python benchmarks/bench_speed.py" + ("" if env["device"] == "cpu" else " --device cuda")
    lines = [
        f"Measured by `{how}` on {on}, torch {env['torch']}; batch {result['batch']}, `ssr_resnet8`, median of "
        f"{result['repeats']} alternated runs per side; machine fp32 matmul {result['matmul_gflops']:.0f} GFLOP/s"
        + (f", bf16 {result['matmul_bf16_gflops']:.0f} GFLOP/s." if "matmul_bf16_gflops" in result else "."),
        "",
        "| what | against | ssrbench | other | ratio | target | met | ssrbench GFLOP/s (% of matmul) |",
        "|---|---|---:|---:|---:|---|---|---:|",
    ]
    for r in result["rows"]:
        cost = r["what"].startswith("unrolled") or r["what"].startswith("training")
        ratio = r["ours_s"] / r["theirs_s"] if cost else r["theirs_s"] / r["ours_s"]
        op, target = TARGETS[r["what"]]
        met = ratio >= target if op == ">=" else ratio <= target
        rate = r["flops"] / r["ours_s"] / 1e9 if r["flops"] else None  # training: one step's FLOPs over its seconds
        kind = "cost ×" if cost else "speed ×"
        lines.append(
            f"| {r['what']} | {r['against']} | {r['ours_s']:.3f} s | {r['theirs_s']:.3f} s | {kind} {ratio:.2f} | "
            f"{op} {target:g} | {'yes' if met else '**no**'} | "
            + (f"{rate:.1f} ({100 * rate / result['matmul_gflops']:.0f}%) |" if rate else "not counted |")
        )
    lines += [
        "",
        "speed × = other / ssrbench (above 1: ssrbench is faster); cost × = ssrbench / other (per step for "
        "training; the unrolled attack against PGD at the same number of steps). GFLOP/s: FLOPs counted by "
        "torch.utils.flop_counter (attacks: one pass with pixel gradients only, times the passes; training: "
        "one step).",
    ]
    lines += ["", unrolled_explanation(result)]
    if result.get("options"):
        lines += [
            "",
            "What an option buys against the same work without it (speed × = without / with; training per step):",
            "",
            "| option | against | with | without | speed × | note |",
            "|---|---|---:|---:|---:|---|",
        ]
        for r in result["options"]:
            if "error" in r:
                lines.append(f"| {r['what']} | {r['against']} | — | — | — | failed: {r['error'].splitlines()[0]} |")
                continue
            note = []
            if "first_call_s" in r:
                cache = ", empty cache" if result.get("inductor_cache") == "empty" else ""
                note.append(f"first call (compilation{cache}) {r['first_call_s']:.1f} s")
            if "grad_sign_agreement" in r:
                note.append(f"input-gradient signs agree on {100 * r['grad_sign_agreement']:.2f}% of pixels")
            lines.append(
                f"| {r['what']} | {r['against']} | {r['with_s']:.4f} s | {r['without_s']:.4f} s | "
                f"{r['without_s'] / r['with_s']:.2f} | {'; '.join(note)} |"
            )
    return "\n".join(lines)


def unrolled_explanation(result: dict) -> str:
    """Why the unrolled attack's cost per step cannot reach its target, from the same measurement."""
    rows = {r["what"]: r for r in result["rows"]}
    pgd_step = rows["PGD-10"]["ours_s"] / 10
    unrolled_step = rows["unrolled-pgd10 (cost)"]["ours_s"] / 2  # the row times 2 steps
    defense = rows["reverse attack (inpaint, 10 steps)"]["ours_s"]  # the defense the unrolled attack runs
    return (
        f"The unrolled attack: one step costs {unrolled_step / pgd_step:.0f}× a PGD step; running the defense once "
        f"(the 10-step inpainting reverse attack it differentiates through, row 3) already costs "
        f"{defense / pgd_step:.0f}× a PGD step, and the exact gradient through those 10 steps (a double backward) "
        f"{(unrolled_step - defense) / pgd_step:.0f}× more. No exact gradient through a 10-step reverse attack "
        f"costs less than the reverse attack itself, so the ≤ 15× target cannot be met without attacking "
        f"something else (fewer unrolled steps, or BPDA, which are other attacks)."
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, default=250)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--train-steps", type=int, default=6)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1 ... (every row runs there)")
    ap.add_argument("--keep", type=Path, help="folder to keep bench_speed.json in")
    ap.add_argument("--readme", type=Path, help="print the README block from a kept JSON instead of measuring")
    a = ap.parse_args()
    if a.readme:
        kept = json.loads(a.readme.read_text())
        print("\n".join([marks(kept)[0], markdown(kept), marks(kept)[1]]))
        return
    if a.repeats < 5:
        ap.error("--repeats must be at least 5 (a median of fewer says little)")
    global DEV
    try:
        DEV = resolve_device(a.device)
    except (ValueError, RuntimeError) as exc:
        ap.error(str(exc))
    torch.set_num_threads(a.threads)
    # an empty compilation cache: a compiled row's first call is then its whole compilation, not a cache hit
    os.environ["TORCHINDUCTOR_CACHE_DIR"] = tempfile.mkdtemp(prefix="ssrbench-bench-inductor-")
    result = {
        "batch": a.batch,
        "repeats": a.repeats,
        "environment": capture(DEV).model_dump(mode="json"),
        "matmul_gflops": matmul_gflops(),
        "command": ["python", *sys.argv],
        "inductor_cache": "empty",
    }
    if DEV.type == "cuda":
        result["matmul_bf16_gflops"] = matmul_gflops(torch.bfloat16)
    result["rows"] = attack_rows(a.batch, a.repeats) + training_rows(a.repeats, a.train_steps)
    result["options"] = option_rows(a.batch, a.repeats, a.train_steps)
    text = json.dumps(result, indent=1)
    if a.keep:
        atomic_write_text(a.keep / kept_name(DEV), text + "\n")
    print(markdown(result))


if __name__ == "__main__":
    main()
