"""What a run will cost before it starts (``run --estimate``): per training stage and per attack, the work
(images x passes) and its floating-point operations, counted on the run's own models, turned into minutes.

Counting, not guessing: every per-image figure is torch's FLOP counter (matrix products and convolutions,
forward and backward) over one real pass of the model the run builds -- a training step of each stage, a
gradient pass of the classifier, a step of the task's reverse attack -- and an attack's passes are its own
declared cost (``Attack.cost``). Minutes then divide by a measured rate: this machine's, timed now on the
classifier's gradient pass, and one kept GPU's (``KEPT_GPUS``, from ``benchmarks/bench_speed.py``, checked
against its JSON by a test). That rate is what a ResNet-18 step achieved there; a model of other shape
achieves another, so the GPU minutes are an estimate, said to be one.
"""

from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch.utils.flop_counter import FlopCounterMode

from ..adversarial.base import ATTACKS, Attack
from ..models.bases import BaseChoice, architecture
from ..models.ssr_model import SSRModel
from ..pretext.base import TASKS, PretextTask
from ..training import adversarial
from .evaluate import DRAWS, GATE_IMAGES
from .spec import RunSpec, base_choice

CIFAR_TRAIN = 50_000  # images of the training split when the preset takes all of them
CIFAR_MEAN, CIFAR_STD = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)  # what the counts run on (any would do)


@dataclass(frozen=True)
class KeptGPU:
    """A GPU's measured training-step time of timm's resnet18 (CIFAR stem) on a batch, fp32 and bf16."""

    name: str
    batch: int
    fp32_step_s: float
    bf16_step_s: float
    source: str


KEPT_GPUS = (
    KeptGPU(
        "NVIDIA H200",
        batch=128,
        fp32_step_s=0.02084287066666472,
        bf16_step_s=0.010059577666666542,
        source="benchmarks/results/bench_speed_cuda.json: training step (classifier, resnet18 batch 128)",
    ),
)


@dataclass
class Row:
    what: str  # "train classifier", "attack pgd10 on classifier-first/inpaint", ...
    images: int  # images the work runs on (training: images x epochs)
    passes: float  # per image: training steps (training rows), else gradient passes of the classifier
    flops: float  # all of it
    precision: str = "fp32"  # what the work runs in: training may be bf16, attacks never
    training: bool = False  # a training step (weights' gradients too), timed apart from an attack's pass


@dataclass
class Estimate:
    rows: list[Row] = field(default_factory=list)
    here: str = ""  # this machine, as measured
    here_flops_per_s: float = 0.0  # an attack's gradient pass (to the pixels only)
    here_train_flops_per_s: float = 0.0  # a training step (the weights' gradients too)
    gpus: dict[str, dict[str, float]] = field(default_factory=dict)  # name -> precision -> FLOP/s
    notes: list[str] = field(default_factory=list)

    @property
    def total_flops(self) -> float:
        return sum(r.flops for r in self.rows)

    def minutes_here(self, row: Row) -> float:
        return row.flops / (self.here_train_flops_per_s if row.training else self.here_flops_per_s) / 60

    def minutes_on(self, gpu: str, row: Row) -> float:
        return row.flops / self.gpus[gpu][row.precision] / 60


def count_flops(fn) -> float:
    """Floating-point operations of ``fn()`` as torch counts them (matmuls and convolutions, forward and
    backward), so a pass is weighed by what it computes, not by how long this machine takes."""
    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def _frozen(model: SSRModel, train: tuple[torch.nn.Module, ...] = ()):
    for p in model.parameters():
        p.requires_grad_(False)
    for m in train:
        for p in m.parameters():
            p.requires_grad_(True)


class _Counts:
    """Per-image FLOPs of one (task, mode) model's passes, on a batch of two (the counter is exact per batch)."""

    def __init__(self, spec: RunSpec, task: PretextTask, base: BaseChoice | None):
        torch.manual_seed(0)
        size = 32
        if base is not None:
            # a copy: the architecture is cached (and may be the run's loaded base), and the counts set its
            # gradients and, when timed, its device
            model = SSRModel(base.name, CIFAR_MEAN, CIFAR_STD, 10, size, base=copy.deepcopy(architecture(base)))
        else:
            model = SSRModel(spec.preset.backbone, CIFAR_MEAN, CIFAR_STD, 10, size)
        self.model = task.attach(model).eval()
        self.task = task
        self.x = torch.rand(2, 3, size, size, generator=torch.Generator().manual_seed(0))
        self.y = torch.tensor([0, 1])
        self.gen = torch.Generator().manual_seed(0)

    def _per_image(self, fn) -> float:
        return count_flops(fn) / len(self.x)

    def classifier_pass(self) -> float:
        """An attack's gradient pass: forward, backward to the pixels only (the weights are frozen)."""
        _frozen(self.model)

        def run():
            x = self.x.clone().requires_grad_(True)
            F.cross_entropy(self.model(x), self.y).backward()

        return self._per_image(run)

    def reverse_step(self) -> float:
        _frozen(self.model)

        def run():
            z = self.x.clone().requires_grad_(True)
            self.task.loss_for_reverse(self.model, z, self.gen).sum().backward()

        return self._per_image(run)

    def score(self) -> float:
        with torch.no_grad():
            return self._per_image(lambda: self.task.metric_for_eval(self.model, self.x, self.gen))

    def classifier_step(self) -> float:
        _frozen(self.model, (self.model.backbone, self.model.classifier))
        return self._per_image(lambda: F.cross_entropy(self.model(self.x), self.y).backward())

    def heads_step(self) -> float:
        _frozen(self.model, (self.model.heads,))
        return self._per_image(lambda: self.task.training_loss(self.model, self.x, self.gen).loss.backward())

    def multitask_step(self) -> float:
        _frozen(self.model, (self.model,))

        def run():
            loss = F.cross_entropy(self.model(self.x), self.y)
            loss = loss + self.task.training_loss(self.model, self.x, self.gen).loss
            loss.backward()

        return self._per_image(run)


def estimate(
    spec: RunSpec, train_images: int | None = None, measure_here: bool = True, device: torch.device | None = None
) -> Estimate:
    """The run's cost, row by row, without training or evaluating anything (see the module docstring)."""
    p = spec.preset
    base = base_choice(spec)
    n_train = min(p.train_images or CIFAR_TRAIN, train_images or CIFAR_TRAIN)
    if adversarial.enabled(p):
        n_train = adversarial.heldout_range(n_train)[0]
    n_eval = p.eval_images
    adv_passes = {"none": 0, "fgsm-rs": 1, "pgd": p.adv_steps}[p.adversarial_training]
    precision = "bf16" if p.train_precision in ("bf16", "auto") else "fp32"
    out = Estimate()
    seeds = len(spec.seeds)
    attacks: dict[str, Attack] = {a.name: ATTACKS.get(a.kind)(a.params) for a in spec.attacks}
    models = []  # (config, task, its model's counts): built once, each task's model as the run builds it
    for tcfg in spec.tasks:
        task = TASKS.get(tcfg.kind)(tcfg.params)
        models.append((tcfg, task, _Counts(spec, task, base)))
    if base is None and spec.classifier_checkpoint is None and models:
        # classifier-first's classifier, shared by its tasks, and the static base every other mode is judged against
        counts = models[0][2]
        step = counts.classifier_step() + adv_passes * counts.classifier_pass()
        work = n_train * p.epochs_classifier * seeds
        out.rows.append(Row("train classifier (shared; the static base)", work, 1, work * step, precision, True))
    evals, gate = n_eval * seeds, GATE_IMAGES * seeds  # the gate: the last GATE_IMAGES training images, always
    for tcfg, task, counts in models:
        cls_pass, rev_step = counts.classifier_pass(), counts.reverse_step()
        rev = tcfg.reverse
        reverse = (rev.steps if rev.eps > 0 else 0) * rev_step  # one purification of one image
        randomised = reverse > 0 and (task.randomized_eval or rev.random_start)
        # a randomised defense: the first draw, DRAWS - 1 more (all must be right), and the fixed draws (a)
        purifications = DRAWS + 1 if randomised else 1
        rev_in_passes = reverse / cls_pass  # the reverse attack in gradient passes of the classifier
        for mode in spec.modes:
            label = f"{mode}/{tcfg.name}"
            if mode == "classifier-first":
                work = n_train * p.epochs_head * seeds
                out.rows.append(Row(f"train heads {label}", work, 1, work * counts.heads_step(), precision, True))
            elif mode == "multitask":
                step = counts.multitask_step() + adv_passes * cls_pass
                work = n_train * p.epochs_multitask * seeds
                out.rows.append(Row(f"train {label}", work, 1, work * step, precision, True))
            else:
                out.notes.append(f"mode {mode!r}: its training is not estimated (ssrbench knows only its own modes)")
            per_image = purifications * reverse + cls_pass  # and two forward passes: about one gradient pass
            out.rows.append(Row(f"evaluate clean, clean+rev {label}", evals, per_image / cls_pass, evals * per_image))
            score = counts.score()
            out.rows.append(Row(f"gate threshold {label}", gate, score / cls_pass, gate * score))
            for name, attack in attacks.items():
                passes = attack.cost(rev_in_passes, randomised)
                if randomised and attack.adaptive:  # (a): attacked again through the fixed draws, deterministic
                    passes += attack.cost(rev_in_passes, False)
                per_image = passes * cls_pass + purifications * reverse
                out.rows.append(Row(f"attack {name} on {label}", evals, per_image / cls_pass, evals * per_image))
                if mode != "classifier-first" and not attack.adaptive:
                    # judged against the static base (classifier-first's classifier): the attack on it too, and its
                    # images through this defense (transfer), every draw of a randomised one
                    per_image = attack.cost(0) * cls_pass + (DRAWS if randomised else 1) * reverse
                    what = f"attack {name} on the static base, for {label}"
                    out.rows.append(Row(what, evals, per_image / cls_pass, evals * per_image))
    out.notes.append(
        "passes are gradient passes of the classifier per image (a training row: steps); an attack's are its "
        "declared cost (Attack.cost) plus the reverse attacks on its images, counted as if it ran on every image "
        "(AutoAttack's later parts run only on those still robust: fewer); attacks run in fp32"
    )
    out.notes.append(
        "the minutes are the counted work at a measured rate: reading and augmenting the data, Python's own time "
        "and the first-call warm-up come on top"
    )
    if measure_here and models:
        out.here, out.here_flops_per_s, out.here_train_flops_per_s = _measure_here(
            spec, models[0][2], base is not None, device or torch.device("cpu")
        )
    for gpu in KEPT_GPUS:
        step = resnet18_step_flops() * gpu.batch
        out.gpus[gpu.name] = {"fp32": step / gpu.fp32_step_s, "bf16": step / gpu.bf16_step_s}
    return out


def resnet18_step_flops() -> float:
    """FLOPs per image of the kept GPUs' measured step: timm resnet18, CIFAR stem, classifier training."""
    torch.manual_seed(0)
    model = SSRModel("resnet18", CIFAR_MEAN, CIFAR_STD, 10, 32).train()
    x, y = torch.rand(2, 3, 32, 32), torch.tensor([0, 1])
    return count_flops(lambda: F.cross_entropy(model(x), y).backward()) / 2


def _measure_here(spec: RunSpec, counts: _Counts, frozen_base: bool, device: torch.device) -> tuple[str, float, float]:
    """The device's FLOP/s on the run's own classifier, timed now: an attack's gradient pass (to the pixels) and a
    training step (the weights' gradients too: other kernels, another rate), each on a batch doubled -- up to the
    preset's batch -- until one pass takes a quarter of a second (a small batch runs a small model far below the
    rate its real batches reach)."""
    from ..models.environment import capture

    model = counts.model.to(device=device, memory_format=torch.channels_last)  # as training and evaluation run it

    def rate(largest: int, train: bool) -> tuple[float, int]:
        _frozen(model, (model.backbone, model.classifier) if train else ())
        n = 4
        while True:
            x = torch.rand(n, 3, 32, 32, generator=torch.Generator().manual_seed(1))
            x = x.to(device).contiguous(memory_format=torch.channels_last)  # the layout pixels() hands a model
            y = torch.zeros(n, dtype=torch.long, device=device)

            def one():
                z = x if train else x.clone().requires_grad_(True)
                F.cross_entropy(model(z), y).backward()
                if device.type == "cuda":
                    torch.cuda.synchronize(device)

            flops = count_flops(one)
            one()  # warm-up
            best = math.inf
            for _ in range(2):
                t = time.perf_counter()
                one()
                best = min(best, time.perf_counter() - t)
            if best >= 0.25 or n >= largest:
                return flops / best, n
            n = min(2 * n, largest)

    attack_rate, _ = rate(spec.preset.eval_batch_size, train=False)
    if not frozen_base:
        model.train()
        train_rate, _ = rate(spec.preset.batch_size, train=True)
    else:  # a frozen base trains only the heads: mostly its forward, the attack pass's rate
        train_rate = attack_rate
    env = capture(device)
    kind = env.cpu_capability if device.type == "cpu" else "fp32"
    return f"{env.device_name} ({kind}, {torch.get_num_threads()} threads)", attack_rate, train_rate
