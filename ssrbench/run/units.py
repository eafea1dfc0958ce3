"""A run's units of work: one (seed, training mode, task config) model each, trained or loaded and evaluated
against every attack into its cells -- the same numbers in this process (``LocalExecutor``) or on a worker."""

from __future__ import annotations

import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch
from pydantic import ValidationError

from ..adversarial.base import ATTACKS, Attack
from ..core.budget import ThreatModel
from ..core.errors import SSRBenchError, format_validation_error
from ..core.hashing import config_hash, weights_sha256
from ..core.progress import Reporter
from ..data.datasets import ImageDataset, display_path
from ..leaderboard.records import (
    Accuracy,
    AttackSplit,
    Cascade,
    CascadeStage,
    Cost,
    Gate,
    PerImage,
    RandomizedDefense,
    RanOn,
    Transfer,
    seeded,
)
from ..leaderboard.robustness import BASE_MODE
from ..leaderboard.schema import Cell, Component, Pretext, TrainingRecord
from ..models.environment import capture
from ..pretext.base import TASKS
from ..training.cache import ModelCache
from ..training.modes import MODES, Built, DataIdentity, TrainContext, build_model, build_shared
from ..training.zoo import ZooError
from .cascade import evaluate_cascade, ordered
from .config import (
    AttackConfig,
    TaskConfig,
    builtin_config_dir,
)
from .evaluate import DRAWS, GATE_FPR, GATE_IMAGES, AttackOutcome, Outcome, evaluate, gate_threshold
from .memory import AttackMemory, format_bytes
from .spec import RunSpec, base_choice


def _component(cfg: TaskConfig | AttackConfig, registry, kind: str, cls, details: dict | None = None) -> Component:
    origin = registry.origin(kind)
    return Component(
        name=cfg.name,
        kind=kind,
        version=str(getattr(cls, "version", "1")),
        distribution=origin.distribution,
        distribution_version=origin.version,
        params=cfg.params,
        details=details or {},
        config_file=_outside_file(cfg),
        point=cfg.point,
    )


def _outside_file(cfg: TaskConfig | AttackConfig) -> str | None:
    """The config's file when it is not one of ssrbench's own (a user's or a plugin's): results then
    depend on a file the reader must be pointed at."""
    if cfg.source is None:
        return None
    own = builtin_config_dir("tasks" if isinstance(cfg, TaskConfig) else "attacks").resolve()
    return None if Path(cfg.source).resolve().parent == own else display_path(Path(cfg.source))


@dataclass(frozen=True)
class ModelUnit:
    """One trained model of a run -- a (seed, training mode, task config) -- evaluated against every attack."""

    seed: int
    mode: str
    task: TaskConfig

    def label(self, several_seeds: bool) -> str:
        return seeded(f"{self.mode}/{self.task.name}", self.seed, several_seeds)


@dataclass
class ModelResult:
    """What one model unit adds to the leaderboard: its training stages, its cells, in order, and what the
    leaderboard's notes must say about them."""

    records: list[TrainingRecord]
    cells: list[Cell]
    notes: list[str] = field(default_factory=list)
    cascades: list[Cascade] = field(default_factory=list)  # run --cascade: instead of cells


class Executor(Protocol):
    """Runs a run's model units -- in this process (``LocalExecutor``) or spread over workers -- and gives
    their results in the units' order, each unit's numbers those ``evaluate_model`` computes."""

    name: str

    def run_units(
        self,
        spec: RunSpec,
        units: list[ModelUnit],
        data: ImageDataset,
        *,
        device: torch.device,
        cache: ModelCache,
        reporter: Reporter,
        retrain: bool,
    ) -> list[ModelResult]: ...


def model_units(spec: RunSpec) -> list[ModelUnit]:
    return [ModelUnit(s, m, t) for s in spec.seeds for m in spec.modes for t in spec.tasks]


def train_context(
    spec: RunSpec,
    data: ImageDataset,
    seed: int,
    *,
    device: torch.device,
    cache: ModelCache,
    reporter: Reporter,
    retrain: bool,
) -> TrainContext:
    checkpoint = Path(spec.classifier_checkpoint) if spec.classifier_checkpoint else None
    return TrainContext(
        base=base_choice(spec),
        data=data,
        preset=spec.preset,
        device=device,
        seed=seed,
        cache=cache,
        reporter=reporter,
        retrain=retrain,
        classifier_checkpoint=checkpoint,
    )


def planned_stages(
    spec: RunSpec, data: ImageDataset | DataIdentity, device: torch.device
) -> list[tuple[str, str, dict[str, Any]]] | None:
    """(stage, key, spec) of every stage the run trains or loads -- each model's own and the static base it is
    judged against -- in order, each once, computed by the code that keys them and without training or
    reading an image. None when a mode (a plugin's) cannot say."""
    out: dict[str, tuple[str, str, dict[str, Any]]] = {}
    base_mode = MODES.get(BASE_MODE)()
    for unit in model_units(spec):
        ctx = train_context(
            spec,
            data,
            unit.seed,
            device=device,
            cache=ModelCache(enabled=False),
            reporter=Reporter(mode="none"),
            retrain=False,
        )
        task = TASKS.get(unit.task.kind)(unit.task.params)
        stages = MODES.get(unit.mode)().stages(ctx, task)
        if stages is None:
            return None
        if unit.mode != BASE_MODE:
            stages = [base_mode.classifier_stage(ctx), *stages]
        for stage, stage_spec in stages:
            key = ModelCache.key(stage_spec)
            out.setdefault(key, (stage, key, stage_spec))
    return list(out.values())


def zoo_notice(spec: RunSpec, data: ImageDataset, device: torch.device, cache: ModelCache) -> str | None:
    """The run's first line when the zoo supplies weights: how many stages, and how to train them here instead
    (with the time the zoo's entries record for training them)."""
    if cache.zoo is None:
        return None
    stages = planned_stages(spec, data, device) or []
    if cache.zoo_only:
        cache.zoo.manifest()  # a refused manifest is the error itself
        missing = [stage for stage, key, _ in stages if not cache.in_zoo(key)]
        if missing:
            raise ZooError(
                f"--zoo-only: the zoo {display_path(cache.zoo.root)} has no weights for {len(missing)} of "
                f"the run's {len(stages)} stages ({', '.join(missing[:4])}{', ...' * (len(missing) > 4)}); "
                f"leave out --zoo-only to train them here"
            )
    found = [(stage, key) for stage, key, _ in stages if cache.in_zoo(key)]
    if not found:
        return None
    seconds = sum(cache.zoo.entry(key).training.seconds for _, key in found)
    return (
        f"weights of {len(found)} of {len(stages)} stages come from the zoo ({display_path(cache.zoo.root)}): "
        f"{', '.join(stage for stage, _ in found)}; to train them here instead add --no-zoo "
        f"(the zoo's entries took {seconds / 60:.1f} min to train on the machine that made them)"
    )


@dataclass(frozen=True)
class _KeptInCache:
    """An evaluation's finished batches in the model cache (``evaluate``'s ``kept``); ``fresh``: never resumed."""

    cache: ModelCache
    key: str
    fresh: bool = False

    def load(self) -> dict[str, Any] | None:
        return None if self.fresh else self.cache.load_progress(self.key)

    def save(self, state: dict[str, Any]) -> None:
        self.cache.save_progress(self.key, state)


def evaluation_key(
    spec: RunSpec,
    unit: ModelUnit,
    data: ImageDataset,
    model_key: str,
    weights: str,
    gate: float,
    device: torch.device,
    base: str | None = None,
) -> str:
    """Everything an evaluation's numbers depend on: its model, images, attacks, defense, seed, batch and device."""
    p = spec.preset  # the images: the first eval_images of the data the fingerprint identifies
    return config_hash(
        {
            "evaluation": 1,
            "model": model_key,
            "weights": weights,
            "task": unit.task.model_dump(mode="json"),
            "attacks": [a.model_dump(mode="json") for a in spec.attacks],
            "seed": unit.seed,
            "images": [data.name, data.fingerprint, p.eval_images],
            "batch": p.eval_batch_size,
            "gate": gate,
            "device": device.type,
            **({"base": base} if base else {}),
            **({"cascade": spec.cascade} if spec.cascade else {}),  # a cascade keeps other batches than the grid
        }
    )


def evaluate_model(
    spec: RunSpec,
    unit: ModelUnit,
    data: ImageDataset,
    *,
    device: torch.device,
    cache: ModelCache,
    reporter: Reporter,
    retrain: bool = False,
    resumable: bool = False,
) -> ModelResult:
    """Build (train, or load from ``cache``) one unit's model and evaluate it against every attack of the
    run: the same numbers wherever it runs, given the same weights, device and threads. ``resumable``: keep
    each finished batch in ``cache`` and continue a kept evaluation (not with ``retrain``)."""
    p = spec.preset
    n_eval = p.eval_images
    x_eval, y_eval = data.test_x[:n_eval], data.test_y[:n_eval]
    attacks = {a.name: ATTACKS.get(a.kind)(a.params) for a in spec.attacks}
    seed, mode_name, tcfg = unit.seed, unit.mode, unit.task
    ctx = train_context(spec, data, seed, device=device, cache=cache, reporter=reporter, retrain=retrain)
    task_cls = TASKS.get(tcfg.kind)
    task = task_cls(tcfg.params)
    built = build_model(MODES.get(mode_name)(), ctx, task)
    weights = weights_sha256(built.model.state_dict())
    base = static_base(ctx) if mode_name != BASE_MODE else None  # classifier-first's classifier *is* the base
    base_sha = (base or built).records[0].weights_sha256
    label = unit.label(spec.several_seeds)
    n_gate = min(GATE_IMAGES, len(data.train_x))  # fixed first: a detector-aware attack must stay under it
    threshold, flagged = gate_threshold(
        built.model, task, data.train_x[-n_gate:], batch_size=p.eval_batch_size, seed=seed
    )
    gate = Gate(
        threshold=threshold,
        calibration=f"the last {n_gate} training images",
        target_fpr=GATE_FPR,
        calibration_flagged=flagged,
    )
    kept = None
    if resumable and cache.enabled:
        kept = _KeptInCache(
            cache,
            evaluation_key(
                spec, unit, data, built.key, weights, gate.threshold, device, base_sha if base is not None else None
            ),
            fresh=retrain,
        )
    if spec.cascade is not None:
        cascade, resumed_after = _cascade(spec, unit, label, built, task, task_cls, attacks, base, base_sha, weights,
                                          gate, x_eval, y_eval, reporter, kept)  # fmt: skip
        splits = {stage.attack.name: stage.split for stage in cascade.stages if stage.split is not None}
        records = [*(base.records if base is not None else []), *built.records]
        notes = resumed_note(label, resumed_after, n_eval, "cascade stages'") + split_notes(label, splits)
        return ModelResult(records, [], notes, [cascade])
    outcome = evaluate(
        built.model,
        task,
        attacks,
        tcfg.reverse,
        x_eval,
        y_eval,
        batch_size=p.eval_batch_size,
        seed=seed,
        reporter=reporter,
        description=f"evaluate {label}",
        gate=gate.threshold,
        kept=kept,
        base=base.model if base is not None else None,
        memory=AttackMemory(spec.attack_memory),
    )
    task_comp = _component(tcfg, TASKS, tcfg.kind, task_cls, task.describe())
    randomized = outcome.randomized
    cells = []
    for acfg in spec.attacks:
        o = outcome.attacks[acfg.name]
        cells.append(
            _cell(
                label,
                acfg.name,
                task=task_comp,
                mode=mode_name,
                attack=_component(acfg, ATTACKS, acfg.kind, ATTACKS.get(acfg.kind)),
                threat=_threat(attacks[acfg.name], acfg),
                backbone=p.base or p.backbone,
                dataset=data.name,
                preset=spec.preset_name,
                reverse=tcfg.reverse,
                reverse_randomized=randomized,
                clean=outcome.clean,
                clean_rev=outcome.clean_rev,
                adv=_cat(o.adv),
                adv_rev=_cat(o.adv_rev),
                pretext=Pretext(
                    metric=task.metric_name,
                    higher_is_better=task.higher_is_better,
                    clean=float(outcome.pretext_clean.mean()),
                    adversarial=float(_cat(o.pretext_adv).mean()),
                    adversarial_reversed=float(_cat(o.pretext_adv_rev).mean()),
                    per_image=_per_image(
                        label, acfg.name, outcome.pretext_clean, _cat(o.pretext_adv), _cat(o.pretext_adv_rev)
                    ),
                ),
                model_key=built.key,
                seed=seed,
                weights_sha256=weights,
                base_weights_sha256=base_sha,
                transfer=_transfer(o) if base is not None else None,
                seconds={**{f"clean_{k}": v for k, v in outcome.seconds_clean.items()}, **o.seconds},
                adaptive=attacks[acfg.name].adaptive,
                zero_grad_fraction=sum(o.zero_grad) / n_eval if o.zero_grad else None,
                randomized=_randomized(outcome, o, attacks[acfg.name]),
                gate=gate,
                cost=Cost(
                    passes_per_image=outcome.defense_passes / n_eval,
                    seconds_per_image=outcome.defense_seconds / n_eval,
                    attack_seconds_per_image=o.seconds["attack"] / n_eval,
                ),
                split=outcome.splits.get(acfg.name),
            )
        )
    resumed = resumed_note(label, outcome.resumed_after, n_eval)
    return ModelResult(
        [*(base.records if base is not None else []), *built.records],
        cells,
        resumed + split_notes(label, outcome.splits),
    )


def resumed_note(label: str, resumed_after: int, n: int, parts: str = "cells'") -> list[str]:
    """What the notes say about an evaluation (or a cascade: ``parts`` its stages) continued from an earlier
    process's kept batches."""
    if not resumed_after:
        return []
    return [
        f"evaluate {label} resumed after {resumed_after}/{n} images kept by an earlier, interrupted process: its "
        f"{parts} seconds include that process's, seconds_total and ran_on do not"
    ]


def split_notes(label: str, splits: dict[str, AttackSplit]) -> list[str]:
    """What the notes say about a budget no chunk fits: such an attack ran one image per call, over the budget."""
    return [
        f"{label}/{name}: one image of the attack keeps about {format_bytes(s.per_image_bytes + s.fixed_bytes)} "
        f"for autograd, over --attack-memory {format_bytes(s.budget_bytes)}: it ran one image per call"
        for name, s in splits.items()
        if s.reason == "memory-budget" and s.per_image_bytes + s.fixed_bytes > s.budget_bytes
    ]


def _cascade(spec, unit, label, built, task, task_cls, attacks, base, base_sha, weights, gate, x, y, reporter, kept):
    """One unit's worst case by cascade (``run --cascade``), as the record the leaderboard holds, and the images
    it took from kept batches."""
    tcfg, p = unit.task, spec.preset
    order = ordered(attacks, spec.cascade, reverse_passes=tcfg.reverse.steps)
    out = evaluate_cascade(
        built.model,
        task,
        attacks,
        order,
        tcfg.reverse,
        x,
        y,
        batch_size=p.eval_batch_size,
        seed=unit.seed,
        reporter=reporter,
        description=f"cascade {label}",
        gate=gate.threshold,
        base=base.model if base is not None else None,
        memory=AttackMemory(spec.attack_memory),
        kept=kept,
    )
    configs = {a.name: a for a in spec.attacks}
    record = Cascade(
        task=_component(tcfg, TASKS, tcfg.kind, task_cls, task.describe()),
        mode=unit.mode,
        seed=unit.seed,
        backbone=p.base or p.backbone,
        dataset=spec.dataset,
        preset=spec.preset_name,
        reverse=tcfg.reverse,
        reverse_randomized=out.randomized,
        model_key=built.key,
        weights_sha256=weights,
        base_weights_sha256=base_sha,
        order=spec.cascade,
        stages=[
            CascadeStage(
                attack=_component(configs[name], ATTACKS, configs[name].kind, ATTACKS.get(configs[name].kind)),
                threat=_threat(attacks[name], configs[name]),
                adaptive=attacks[name].adaptive,
                ran_on=s.ran_on,
                fooled_defended=s.fooled_defended,
                fooled_undefended=s.fooled_undefended,
                seconds=s.seconds,
                split=out.splits.get(name),
            )
            for name, s in out.stages.items()
        ],
        clean=Accuracy.from_flags(out.clean),
        clean_rev=Accuracy.from_flags(out.clean_rev),
        defended=Accuracy.from_flags(out.defended),
        undefended=Accuracy.from_flags(out.undefended),
    )
    return record, out.resumed_after


def static_base(ctx: TrainContext) -> Built:
    """The static base every mode is judged against: classifier-first's classifier (trained alone, or the
    user's checkpoint), from the cache when classifier-first trained it already."""
    base = build_shared(MODES.get(BASE_MODE)(), ctx)
    assert base is not None, "classifier-first shares its classifier stage"
    return base


def _transfer(o: AttackOutcome) -> Transfer:
    """A cell's attack across its model and the static base (``evaluate``'s ``base``)."""
    acc = lambda parts: Accuracy.from_flags(_cat(parts)) if parts else None  # noqa: E731
    return Transfer(to_base=acc(o.to_base), from_base=acc(o.from_base), from_base_all_draws=acc(o.from_base_all))


def ran_here(
    result: ModelResult,
    seconds: float,
    device: torch.device,
    executor: str = "local",
    node: str | None = None,
    attempts: int = 1,
) -> ModelResult:
    """``result`` with where its unit ran: on each cell, and on each stage it trained (not loaded)."""
    env = capture(device)
    where = dict(
        executor=executor,
        node=node or platform.node(),
        attempts=attempts,
        threads=env.threads,
        device=env.device_name,
        cpu_capability=env.cpu_capability,
    )
    return ModelResult(
        [r if r.cached else r.model_copy(update={"ran_on": RanOn(seconds=r.seconds, **where)}) for r in result.records],
        [c.model_copy(update={"ran_on": RanOn(seconds=seconds, **where)}) for c in result.cells],
        result.notes,
        [c.model_copy(update={"ran_on": RanOn(seconds=seconds, **where)}) for c in result.cascades],
    )


class LocalExecutor:
    """Every unit in turn, in this process (the default)."""

    name = "local"

    def run_units(self, spec, units, data, *, device, cache, reporter, retrain):
        results = []
        several = spec.several_seeds
        with reporter.bar("run", len(units), unit="models") as advance:  # the whole run's elapsed time and ETA
            for unit in units:
                t0 = time.perf_counter()
                result = evaluate_model(
                    spec, unit, data, device=device, cache=cache, reporter=reporter, retrain=retrain, resumable=True
                )
                results.append(ran_here(result, time.perf_counter() - t0, device))
                advance(1, f"{unit.label(several)} done", milestone=True)
        return results


def _cell(label: str, attack_name: str, **fields: Any) -> Cell:
    """``Cell.from_flags``, with a value that cannot be written (NaN, inf) reported as an error naming
    the cell, before anything is written."""
    try:
        return Cell.from_flags(**fields)
    except ValidationError as exc:
        raise SSRBenchError(
            format_validation_error(
                f"{label}/{attack_name}: the run produced a value that cannot be recorded; no leaderboard was written",
                exc,
            )
        ) from exc


def _threat(attack: Attack, cfg: AttackConfig) -> ThreatModel | None:
    """The attack's declared threat model, marked as a probe when its named config says so."""
    threat = attack.threat_model()
    if cfg.probe:
        threat = (threat or ThreatModel(norm="other", eps=0.0, steps=0)).model_copy(update={"probe": True})
    return threat


def _per_image(label: str, attack_name: str, *arrays) -> PerImage:
    try:
        return PerImage.from_arrays(*arrays)
    except ValueError as exc:
        raise SSRBenchError(
            f"{label}/{attack_name}: the task's pretext metric is not finite on every image ({exc}); "
            f"no leaderboard was written"
        ) from exc


def _randomized(outcome: Outcome, o: AttackOutcome, attack: Attack) -> RandomizedDefense | None:
    """A randomised defense's three evaluations of one cell (None for a deterministic defense)."""
    if outcome.clean_rev_all is None:
        return None
    eot = getattr(attack.params, "eot_samples", None) or getattr(attack.params, "eot_iter", None)
    return RandomizedDefense(
        draws=DRAWS,
        eot_samples=eot if attack.adaptive else None,
        fixed_draw=Accuracy.from_flags(_cat(o.adv_rev_fixed)),
        all_draws=Accuracy.from_flags(_cat(o.adv_rev_all)),
        clean_fixed_draw=Accuracy.from_flags(outcome.clean_rev_fixed),
        clean_all_draws=Accuracy.from_flags(outcome.clean_rev_all),
    )


def _cat(parts: list[Any]) -> np.ndarray:
    return np.concatenate(parts)
