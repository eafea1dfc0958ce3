"""Training modes: how the classifier and the task's heads share the backbone.

multitask        -- cross-entropy + weight * task loss, jointly, on the shared backbone.
classifier-first -- train backbone + classifier once (shared by every task), freeze them, then train
                    only the task's heads on the frozen features.
"""

from __future__ import annotations

import copy
import math
import warnings
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch
import torch.nn.functional as F
from torch import nn

from ..core.errors import ConfigError, SSRBenchError
from ..core.hashing import weights_sha256
from ..core.presets import Preset
from ..core.progress import Reporter
from ..core.registry import Registry
from ..data.datasets import ImageDataset, augment, display_path, pixels
from ..leaderboard.records import BaseIdentity, TrainingRecord
from ..models.bases import BaseChoice
from ..models.environment import exact_fp32, trained_on
from ..models.ssr_model import SSRModel
from ..pretext.base import PretextTask
from . import adversarial
from .cache import ModelCache, all_finite
from .checkpoint import file_sha256, load_classifier_checkpoint
from .resume import StageResume, generator_states, set_generator_states
from .zoo import layout_of

TRAINING_CODE_VERSION = "1"  # bump when the training loop changes what a cached model would be


@dataclass(frozen=True)
class DataIdentity:
    """What a stage's key reads of its data: enough to plan a run's stages without loading any images."""

    name: str
    fingerprint: str


@dataclass
class TrainContext:
    data: ImageDataset | DataIdentity  # the identity alone suffices for ``TrainingMode.stages``
    preset: Preset
    device: torch.device
    seed: int
    cache: ModelCache
    reporter: Reporter
    retrain: bool = False
    classifier_checkpoint: Path | None = None  # replaces classifier-first's classifier stage
    base: BaseChoice | None = None  # run --base: a published classifier as classifier-first's, frozen

    @property
    def backbone(self) -> str:
        """What the backbone is: the preset's timm model, or the base's name."""
        return self.base.name if self.base is not None else self.preset.backbone

    def new_model(self) -> SSRModel:
        """An untrained model, initialised from the context's seed (call inside ``isolated_rng``); with a base,
        a copy of the base's own (the task's heads are what is then initialised)."""
        torch.manual_seed(self.seed)
        d = self.data
        if self.base is not None:
            loaded = copy.deepcopy(self.base.load().backbone)
            return SSRModel(self.base.name, d.mean, d.std, len(d.classes), d.image_size, base=loaded)
        return SSRModel(self.preset.backbone, d.mean, d.std, len(d.classes), d.image_size)

    @property
    def precision(self) -> str:
        """The training arithmetic: ``auto`` is bf16 autocast on a CUDA device that has bf16, else fp32
        (bf16 on a CPU without bf16 units is emulated, slower than fp32)."""
        choice = self.preset.train_precision
        if choice != "auto":
            return choice
        bf16 = self.device.type == "cuda" and torch.cuda.is_bf16_supported()
        return "bf16" if bf16 else "fp32"

    def autocast(self) -> AbstractContextManager:
        """Where a training step runs: bf16 autocast (weights, optimiser state and gradients stay fp32)
        or fp32 (no TF32 on CUDA). Only training steps: what an attack or a reverse attack sees is fp32."""
        if self.precision == "bf16":
            return torch.autocast(self.device.type, dtype=torch.bfloat16)
        return exact_fp32()

    def base_spec(self) -> dict[str, Any]:
        p = self.preset
        return {
            "training_code": TRAINING_CODE_VERSION,
            "backbone": self.backbone,
            "dataset": self.data.name,
            "data_fingerprint": self.data.fingerprint,
            "train_images": p.train_images,
            "batch_size": p.batch_size,
            "lr": p.lr,
            "head_lr": p.head_lr,
            "weight_decay": p.weight_decay,
            "seed": self.seed,
            # recorded only when not the original choice, so models cached before the option stay valid
            **({"optimizer": p.optimizer} if p.optimizer != "sgd" else {}),
            **({"adversarial": adversarial.spec(p)} if adversarial.enabled(p) else {}),
            **({"precision": self.precision} if self.precision != "fp32" else {}),  # other weights, other key
        }

    def train_range(self) -> tuple[int, int]:
        """(images trained on, images available): adversarial training keeps the last ``HELDOUT`` of the
        first ``train_images`` out, to watch robustness on images it never trained on."""
        n = min(self.preset.train_images or len(self.data.train_x), len(self.data.train_x))
        if adversarial.enabled(self.preset):
            if n <= adversarial.HELDOUT:
                raise ConfigError(
                    f"adversarial training keeps {adversarial.HELDOUT} training images out to watch "
                    f"for catastrophic overfitting; --train-images {n} leaves none to train on"
                )
            return adversarial.heldout_range(n)
        return n, n

    def adversarial_monitor(self, model: nn.Module, warnings: list[str]) -> HeldoutMonitor:
        """For a stage that trains the classifier adversarially: held-out PGD accuracy per epoch, and a
        warning in ``warnings`` if it collapses; the final logs also hold the trained model's clean accuracy
        on the same held-out training images. Does nothing for standard training."""
        history: list[float] = []
        if not adversarial.enabled(self.preset):
            return HeldoutMonitor(None, lambda: {}, history)
        start, stop = self.train_range()
        x = pixels(self.data.train_x[start:stop], self.device)
        y = self.data.train_y[start:stop].to(self.device)

        def after_epoch() -> dict[str, float]:
            history.append(adversarial.heldout_pgd_accuracy(model, x, y, self.preset, self.seed))
            return {"heldout_pgd_acc": history[-1]}

        def final() -> dict:
            warning = adversarial.collapse_warning(history)
            if warning:
                warnings.append(warning)
            if not history:
                return {}
            with exact_fp32():  # an evaluation: fp32, whatever training ran in
                clean = adversarial.heldout_clean_accuracy(model, x, y)
            return {"heldout_pgd_acc": history[-1], "heldout_clean_acc": clean}

        return HeldoutMonitor(after_epoch, final, history)


@dataclass
class HeldoutMonitor:
    """What ``TrainContext.adversarial_monitor`` watches: ``after_epoch`` (None when there is nothing to
    watch) appends to ``history`` and returns the reading (for the epoch's progress line); ``final`` gives
    the stage's last reading and warns of a collapse."""

    after_epoch: Callable[[], dict[str, float]] | None
    final: Callable[[], dict]
    history: list[float]


def task_spec(task: PretextTask) -> dict[str, Any]:
    return {"task": task.name, "task_version": task.version, "task_params": task.params.model_dump(mode="json")}


def _to_device(model: nn.Module, device: torch.device) -> nn.Module:
    return model.to(device=device, memory_format=torch.channels_last)


def _warmup_then_linear(opt: torch.optim.Optimizer, steps: int) -> Any:
    """Linear warm-up over the first 20% of steps, then linear decay to zero (short runs need both)."""
    warm = max(1, int(0.2 * steps))
    decay = max(1, steps - warm)
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda t: (t + 1) / warm if t < warm else max(0.0, (steps - t) / decay)
    )


def _shared_optimizer(params, preset: Preset, steps: int) -> tuple[torch.optim.Optimizer, Any]:
    """The backbone and classifier's optimiser (``preset.optimizer``)."""
    if preset.optimizer == "adam":
        return _adam(params, preset.lr, steps, weight_decay=preset.weight_decay)
    opt = torch.optim.SGD(params, lr=preset.lr, momentum=0.9, nesterov=True, weight_decay=preset.weight_decay)
    return opt, _warmup_then_linear(opt, steps)


def _adam(
    params, lr: float, steps: int, betas=(0.5, 0.999), weight_decay: float = 0.0
) -> tuple[torch.optim.Optimizer, Any]:
    opt = torch.optim.Adam(params, lr=lr, betas=betas, weight_decay=weight_decay)
    return opt, _warmup_then_linear(opt, steps)


class _Optimizers:
    """Optimiser groups that step together; an aux group (e.g. a discriminator) steps on its own loss."""

    def __init__(self, main: list, aux: list | None = None):
        self.main, self.aux = main, aux or []

    def step(self, loss: torch.Tensor, aux_loss: torch.Tensor | None) -> None:
        for opt, _ in self.main:
            opt.zero_grad(set_to_none=True)
        loss.backward()
        for opt, sched in self.main:
            opt.step()
            sched.step()
        if aux_loss is not None and self.aux:
            for opt, _ in self.aux:  # clears the generator loss's gradients on the aux heads
                opt.zero_grad(set_to_none=True)
            aux_loss.backward()
            for opt, sched in self.aux:
                opt.step()
                sched.step()


@contextmanager
def isolated_rng() -> Iterator[None]:
    """A mode seeds torch's global RNG before initialising weights (and anything in training that draws
    from it, such as dropout, follows from that seed); this keeps those seedings from leaking out."""
    with torch.random.fork_rng():
        yield


StepFn = Callable[[torch.Tensor, torch.Tensor, torch.Generator], dict[str, "float | torch.Tensor"]]
LOG_EVERY = 20  # training steps between two readings of their logs by the host (one synchronisation each)


class TrainingDivergedError(SSRBenchError):
    """A training loss or the trained weights became NaN/inf: nothing is cached, nothing is written."""

    exit_code = 1


def _diverged(description: str, where: str, what: str) -> TrainingDivergedError:
    return TrainingDivergedError(
        f"{description}: training diverged at {where} ({what}); this stage's model was not cached and no leaderboard "
        f"was written. "
        f"Lower --lr / --head-lr (or check the task's loss)"
    )


def train_epochs(
    ctx: TrainContext,
    description: str,
    epochs: int,
    step: StepFn,
    after_epoch: Callable[[], dict[str, float] | None] | None = None,
    resume: StageResume | None = None,
) -> dict[str, float]:
    """Shuffled, augmented mini-batches on the device; returns the mean logs of the last epoch.

    Every finished epoch is a progress milestone with its mean logs and what ``after_epoch`` read (the
    held-out PGD accuracy of adversarial training): a line of its own in a plain log.

    A step's logs stay on the device until ``LOG_EVERY`` steps (or the epoch) are done and are then read
    in one transfer: a GPU is never stalled by a per-step ``.item()``. Divergence is still caught at the
    step where it happened, at most ``LOG_EVERY`` steps later. With ``resume``, every finished epoch is
    kept and a kept one is continued from."""
    data, p, dev = ctx.data, ctx.preset, ctx.device
    n, _ = ctx.train_range()
    x_all, y_all = data.train_x[:n].to(dev), data.train_y[:n].to(dev)
    bs = min(p.batch_size, n)
    per_epoch = n // bs
    order_gen = torch.Generator().manual_seed(ctx.seed)
    dev_gen = torch.Generator(device=dev).manual_seed(ctx.seed + 1)
    saved = resume.restore(epochs) if resume is not None else None
    first = 0
    if saved is not None:
        set_generator_states(saved["rng"], order_gen, dev_gen, dev)
        first = saved["epoch"]
        ctx.reporter.log(
            f"{description}: resumed after epoch {first}/{epochs} "
            f"(kept in {display_path(resume.cache.partial_path(resume.key))})"
        )
    last: dict[str, list[float]] = {}
    with ctx.reporter.bar(
        description,
        epochs * per_epoch,
        unit="steps",
        done=first * per_epoch,
        info=f"epoch {first}/{epochs} (resumed)" if first else "",
    ) as advance:
        for epoch in range(first, epochs):
            last = {}
            pending: list[dict[str, float | torch.Tensor]] = []
            tail = 0  # steps of the epoch's last logged chunk
            perm = torch.randperm(n, generator=order_gen).to(dev)
            for i in range(per_epoch):
                idx = perm[i * bs : (i + 1) * bs]
                xb = augment(x_all[idx].float().div_(255), dev_gen).contiguous(memory_format=torch.channels_last)
                with ctx.autocast():
                    pending.append(step(xb, y_all[idx], dev_gen))
                if len(pending) == LOG_EVERY or i == per_epoch - 1:
                    read = _read_logs(pending, dev)
                    for j, logs in enumerate(read):
                        bad = {k: v for k, v in logs.items() if not math.isfinite(v)}
                        if bad:
                            at = i + 1 - len(read) + j + 1
                            raise _diverged(
                                description,
                                f"epoch {epoch + 1}/{epochs}, step {at}/{per_epoch}",
                                ", ".join(f"{k}={v}" for k, v in bad.items()),
                            )
                        for k, v in logs.items():
                            last.setdefault(k, []).append(v)
                    if i < per_epoch - 1:  # the epoch's last steps are counted by its own line, below
                        advance(
                            len(read),
                            f"epoch {epoch + 1}/{epochs}, step {i + 1}/{per_epoch}: "
                            + " ".join(f"{k}={v:.3f}" for k, v in read[-1].items()),
                        )
                    tail = len(read)
                    pending = []
            readings = None
            if after_epoch is not None:
                with exact_fp32():  # the held-out PGD monitor is an attack: fp32, whatever training runs in
                    readings = after_epoch()
            advance(
                tail,
                epoch_line(epoch + 1, epochs, {k: sum(v) / len(v) for k, v in last.items()}, readings or {}),
                milestone=True,
            )
            if resume is not None and epoch + 1 < epochs:
                resume.save(epoch + 1, epochs, generator_states(order_gen, dev_gen, dev))
    return {k: sum(v) / len(v) for k, v in last.items()}


def epoch_line(epoch: int, epochs: int, logs: dict[str, float], readings: dict[str, float]) -> str:
    """``epoch 2/5 ce=1.234 acc=0.456 held-out PGD-10 acc 31.2%``: an epoch's mean logs and monitor readings."""
    parts = [f"epoch {epoch}/{epochs}", *(f"{k}={v:.3f}" for k, v in logs.items())]
    if "heldout_pgd_acc" in readings:
        parts.append(f"held-out PGD-{adversarial.MONITOR_STEPS} acc {readings['heldout_pgd_acc']:.1f}%")
    parts += [f"{k}={v:.3f}" for k, v in readings.items() if k != "heldout_pgd_acc"]
    return " ".join(parts)


def _read_logs(steps: list[dict[str, float | torch.Tensor]], device: torch.device) -> list[dict[str, float]]:
    """The steps' logs as host floats, read in one transfer (the values are those ``.item()`` gives)."""
    keys = [list(s) for s in steps]
    flat = [torch.as_tensor(v, dtype=torch.float64, device=device).reshape(()) for s in steps for v in s.values()]
    values = iter(torch.stack(flat).tolist() if flat else [])
    return [{k: next(values) for k in ks} for ks in keys]


def steps_for(ctx: TrainContext, epochs: int) -> int:
    n, _ = ctx.train_range()
    return epochs * (n // min(ctx.preset.batch_size, n))


def _cached_or_train(
    ctx: TrainContext,
    stage: str,
    spec: dict[str, Any],
    model: nn.Module,
    state_of: Callable[[], dict],
    train: Callable[[StageResume], dict[str, float]],
    warnings_out: list[str] | None = None,
) -> TrainingRecord:
    """Load ``model``'s weights from the cache, or train it and store them; the stage's record either way.
    ``train`` gets the stage's epoch checkpoints to keep (and continue from); ``warnings_out`` is what
    ``train`` found wrong with the model (kept in the cache with it)."""
    warnings_out = warnings_out if warnings_out is not None else []
    key = ModelCache.key(spec)
    hit = None if ctx.retrain and not ctx.cache.fresh(key) else ctx.cache.load(key, layout_of(state_of()))
    if hit is not None:
        state, info = hit
        try:
            expected = state_of()
            if set(state) != set(expected):
                raise RuntimeError(f"{len(set(expected) ^ set(state))} parameter names differ")
            # checked before loading: load_state_dict copies every tensor that fits before it reports one that
            # does not, and the stage would then be retrained from the entry's weights, not from its seed
            wrong = [k for k, v in expected.items() if state[k].shape != v.shape or state[k].dtype != v.dtype]
            if wrong:
                raise RuntimeError(
                    f"{len(wrong)} tensors have another shape or dtype, e.g. {wrong[0]} "
                    f"{tuple(state[wrong[0]].shape)} {state[wrong[0]].dtype}, not "
                    f"{tuple(expected[wrong[0]].shape)} {expected[wrong[0]].dtype}"
                )
            model.load_state_dict(state, strict=False)
            zoo = info.get("zoo_sha256")
            ctx.reporter.log(
                f"{stage}: weights from the zoo, entry {key} (file sha256 {zoo[:12]}...)"
                if zoo
                else f"{stage}: cached model {key}"
            )
            return TrainingRecord(
                stage=stage,
                key=key,
                cached=True,
                seconds=info.get("seconds", 0.0),
                final_logs=info.get("final_logs", {}),
                spec=spec,
                weights_sha256=weights_sha256(state),
                trained_on=info.get("trained_on", {}),
                warnings=info.get("warnings", []),
                zoo_sha256=zoo,
            )
        except RuntimeError as exc:
            warnings.warn(f"model cache entry {key} does not fit the model ({exc}); retraining", stacklevel=1)
    resume = StageResume(ctx.cache, key, ignore_saved=ctx.retrain)
    logs = train(resume)
    seconds = resume.seconds()
    state = state_of()
    if not all_finite(state):
        raise _diverged(stage, "the end of training", "the weights hold NaN or infinite values")
    where = trained_on(ctx.device)
    info = {"seconds": seconds, "final_logs": logs, "trained_on": where}
    if warnings_out:
        info["warnings"] = list(warnings_out)
    ctx.cache.save(key, state, spec, info)
    ctx.cache.drop_partial(key)  # only now: a run killed before the save resumes from the last kept epoch
    return TrainingRecord(
        stage=stage,
        key=key,
        cached=False,
        seconds=seconds,
        final_logs=logs,
        spec=spec,
        weights_sha256=weights_sha256(state),
        trained_on=where,
        warnings=list(warnings_out),
    )


@dataclass
class Built:
    """A trained model (eval mode, on the context's device) and the records of the stages that made it,
    in order; the last record is the model's own stage."""

    model: SSRModel
    records: list[TrainingRecord] = field(default_factory=list)

    @property
    def key(self) -> str:
        return self.records[-1].key


def _from_checkpoint(ctx: TrainContext, model: SSRModel) -> TrainingRecord:
    """The user's classifier instead of a trained one: its file's SHA-256 is its identity (and key)."""
    path = ctx.classifier_checkpoint
    state = load_classifier_checkpoint(path, ctx.preset.backbone, len(ctx.data.classes), ctx.data.image_size)
    model.load_state_dict(state, strict=False)  # normalisation from the data unless the file brings its own
    ctx.reporter.log(f"classifier: from {path}")
    return _loaded_classifier(model, _checkpoint_spec(ctx), display_path(path))


def _from_base(ctx: TrainContext, model: SSRModel) -> TrainingRecord:
    """A published classifier instead of a trained one (``run --base``): its file's SHA-256 is its key."""
    identity = ctx.base.load().identity
    ctx.reporter.log(f"classifier: {identity.name} ({identity.architecture}) from {identity.file}")
    return _loaded_classifier(model, _base_spec(ctx), identity.file, base=identity)


def _loaded_classifier(
    model: SSRModel, spec: dict[str, Any], file: str, base: BaseIdentity | None = None
) -> TrainingRecord:
    """The record of a classifier stage taken from a file, not trained: keyed by ``spec``, nothing timed."""
    return TrainingRecord(
        stage="classifier",
        key=ModelCache.key(spec),
        cached=True,
        seconds=0.0,
        final_logs={},
        spec=spec,
        weights_sha256=weights_sha256(model.classifier_state()),
        trained_on={"checkpoint": file},
        base=base,
    )


def _base_spec(ctx: TrainContext) -> dict[str, Any]:
    """A base's identity as its stage's key: the checked bytes' SHA-256 and where the heads read its features
    (``source`` keeps it apart from a --classifier-checkpoint of the same file, which is normalised otherwise)."""
    identity = ctx.base.load().identity
    return {
        "training_code": TRAINING_CODE_VERSION,
        "backbone": ctx.base.name,
        "mode": "classifier",
        "source": "base",
        "checkpoint_sha256": identity.file_sha256,
        "feature_layer": identity.feature_layer,
    }


def _checkpoint_spec(ctx: TrainContext) -> dict[str, Any]:
    return {
        "training_code": TRAINING_CODE_VERSION,
        "backbone": ctx.preset.backbone,
        "mode": "classifier",
        "checkpoint_sha256": file_sha256(ctx.classifier_checkpoint),
    }


class TrainingMode(ABC):
    name: ClassVar[str]
    description: ClassVar[str]

    def stages(self, ctx: TrainContext, task: PretextTask) -> list[tuple[str, dict[str, Any]]] | None:
        """Every stage ``build`` trains or loads for ``task``, in order, as (stage, spec) -- without training
        or reading an image (``ctx.data`` may be a ``DataIdentity``). ``build`` keys its stages by these very
        specs, so a stage's key is known before the run: what the zoo's staleness check and a run's first
        lines read. None: the mode cannot say (a plugin's, until it does)."""
        return None

    @abstractmethod
    def build(self, ctx: TrainContext, task: PretextTask) -> Built:
        """A trained model for ``task`` in eval mode on ``ctx.device``, with its training records.
        Seeds torch's global RNG: call through ``build_model``."""

    def build_shared(self, ctx: TrainContext) -> Built | None:
        """The stage every task's model of this mode starts from (trained or loaded), so that a scheduler
        can train it once before the tasks' stages; None when the mode has none. Seeds torch's global RNG:
        call through ``build_shared``."""
        return None


def build_model(mode: TrainingMode, ctx: TrainContext, task: PretextTask) -> Built:
    """``mode.build`` with its global-RNG seedings kept inside."""
    with isolated_rng():
        return mode.build(ctx, task)


def build_shared(mode: TrainingMode, ctx: TrainContext) -> Built | None:
    """``mode.build_shared`` with its global-RNG seedings kept inside."""
    with isolated_rng():
        return mode.build_shared(ctx)


def _task_param_groups(model: SSRModel, task: PretextTask) -> tuple[list, list]:
    main = [p for k, m in model.heads.items() if k not in task.aux_heads for p in m.parameters()]
    aux = [p for k in task.aux_heads for p in model.heads[k].parameters()]
    return main, aux


class Multitask(TrainingMode):
    name = "multitask"
    description = "classifier and task heads trained jointly on the shared backbone"

    def stages(self, ctx, task):
        return [
            (
                f"multitask/{task.name}",
                {**ctx.base_spec(), "mode": self.name, "epochs": ctx.preset.epochs_multitask, **task_spec(task)},
            )
        ]

    def build(self, ctx, task):
        model = task.attach(ctx.new_model())
        model = _to_device(model, ctx.device)
        p = ctx.preset
        ((stage, spec),) = self.stages(ctx, task)
        steps = steps_for(ctx, p.epochs_multitask)
        weight = task.params.multitask_weight

        found: list[str] = []  # what training finds wrong with the model (catastrophic overfitting)

        def train(resume):
            head_main, head_aux = _task_param_groups(model, task)
            shared = list(model.backbone.parameters()) + list(model.classifier.parameters())
            opts = _Optimizers(
                [_shared_optimizer(shared, p, steps), _adam(head_main, p.head_lr, steps)],
                [_adam(head_aux, p.head_lr / 10, steps)] if head_aux else None,
            )
            model.train()
            monitor = ctx.adversarial_monitor(model, found)

            def step(x, y, gen):
                logits = model(adversarial.adversarial_batch(model, x, y, p, gen))  # the task loss sees clean x
                ce = F.cross_entropy(logits, y)
                tl = task.training_loss(model, x, gen)
                opts.step(ce + weight * tl.loss, tl.aux_loss)
                return {
                    "ce": ce.detach(),
                    "acc": (logits.argmax(1) == y).float().mean(),
                    "ssl": tl.loss.detach(),
                    **tl.logs,
                }

            logs = train_epochs(
                ctx,
                f"train multitask/{task.name}",
                p.epochs_multitask,
                step,
                monitor.after_epoch,
                resume.track(model, opts, monitor),
            )
            return {**logs, **monitor.final()}

        record = _cached_or_train(ctx, stage, spec, model, model.state_dict, train, found)
        return Built(model.eval(), [record])


class ClassifierFirst(TrainingMode):
    name = "classifier-first"
    description = "classifier trained first (once, shared by all tasks); backbone frozen; then task heads"

    def build_shared(self, ctx):
        model = _to_device(ctx.new_model(), ctx.device)
        record = self._classifier(ctx, model)  # first: training leaves the model in train mode
        return Built(model.eval(), [record])

    @staticmethod
    def classifier_stage(ctx: TrainContext) -> tuple[str, dict[str, Any]]:
        """The shared classifier's (stage, spec): the user's checkpoint's identity when one is given."""
        if ctx.base is not None:
            return "classifier", _base_spec(ctx)
        if ctx.classifier_checkpoint is not None:
            return "classifier", _checkpoint_spec(ctx)
        return "classifier", {**ctx.base_spec(), "mode": "classifier", "epochs": ctx.preset.epochs_classifier}

    def stages(self, ctx, task):
        classifier = self.classifier_stage(ctx)
        head_spec = {
            **ctx.base_spec(),
            "mode": self.name,
            "classifier": ModelCache.key(classifier[1]),
            "epochs": ctx.preset.epochs_head,
            **task_spec(task),
        }
        return [classifier, (f"classifier-first/{task.name}", head_spec)]

    def _classifier(self, ctx: TrainContext, model: SSRModel) -> TrainingRecord:
        """Train (or load) ``model``'s backbone and classifier: the stage every task shares."""
        p = ctx.preset
        _, cls_spec = self.classifier_stage(ctx)
        steps = steps_for(ctx, p.epochs_classifier)

        found: list[str] = []

        def train_classifier(resume):
            opts = _Optimizers([_shared_optimizer(model.parameters(), p, steps)])
            model.train()
            monitor = ctx.adversarial_monitor(model, found)

            def step(x, y, gen):
                logits = model(adversarial.adversarial_batch(model, x, y, p, gen))
                ce = F.cross_entropy(logits, y)
                opts.step(ce, None)
                return {"ce": ce.detach(), "acc": (logits.argmax(1) == y).float().mean()}

            logs = train_epochs(
                ctx,
                "train classifier",
                p.epochs_classifier,
                step,
                monitor.after_epoch,
                resume.track(model, opts, monitor),
            )
            return {**logs, **monitor.final()}

        if ctx.base is not None:
            return _from_base(ctx, model)
        if ctx.classifier_checkpoint is not None:
            return _from_checkpoint(ctx, model)
        return _cached_or_train(ctx, "classifier", cls_spec, model, model.classifier_state, train_classifier, found)

    def build(self, ctx, task):
        p = ctx.preset
        model = _to_device(ctx.new_model(), ctx.device)
        cls_record = self._classifier(ctx, model)

        torch.manual_seed(ctx.seed + 1)
        model = _to_device(task.attach(model), ctx.device)
        for prm in list(model.backbone.parameters()) + list(model.classifier.parameters()):
            prm.requires_grad_(False)
        _, (stage, head_spec) = self.stages(ctx, task)
        assert head_spec["classifier"] == cls_record.key, "a head's spec names the classifier it was trained on"
        head_steps = steps_for(ctx, p.epochs_head)

        def train_heads(resume):
            head_main, head_aux = _task_param_groups(model, task)
            opts = _Optimizers(
                [_adam(head_main, p.head_lr, head_steps)],
                [_adam(head_aux, p.head_lr / 10, head_steps)] if head_aux else None,
            )
            model.eval()
            model.heads.train()  # the frozen backbone keeps its BatchNorm statistics

            def step(x, y, gen):
                tl = task.training_loss(model, x, gen)
                opts.step(tl.loss, tl.aux_loss)
                return {"ssl": tl.loss.detach(), **tl.logs}

            return train_epochs(
                ctx, f"train heads classifier-first/{task.name}", p.epochs_head, step, resume=resume.track(model, opts)
            )

        heads_state = lambda: {k: v for k, v in model.state_dict().items() if k.startswith("heads.")}  # noqa: E731
        record = _cached_or_train(ctx, stage, head_spec, model, heads_state, train_heads)
        return Built(model.eval(), [cls_record, record])


MODES: Registry[type[TrainingMode]] = Registry("training mode", "ssrbench.modes")
