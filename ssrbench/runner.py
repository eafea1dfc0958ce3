"""Every task x attack x training-mode cell of one run, into one leaderboard.

Everything a user can get wrong is checked before any training: names, configs, data, output path.
Trained models go to the cache as soon as they finish, so an interrupted run loses no training; the
leaderboard is written once, atomically, at the end.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict

from . import __version__
from .config import AttackConfig, TaskConfig, config_hash, load_attack_config, load_task_config
from .data import ImageDataset
from .environment import capture, git_state
from .evaluate import evaluate
from .leaderboard.robustness import sanity_warnings, worst_case
from .leaderboard.schema import Accuracy, Cell, Component, DatasetInfo, Leaderboard, Pretext, TrainingRecord
from .models.backbone import create_backbone
from .presets import Preset
from .progress import Reporter
from .registry import ATTACKS, DATASETS, MODES, TASKS
from .training.cache import ModelCache
from .training.modes import TrainContext


class RunSpec(BaseModel):
    """The fully resolved configuration of a run: its hash identifies the run."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    tasks: list[TaskConfig]
    attacks: list[AttackConfig]
    modes: list[str]
    dataset: str = "cifar10"
    preset_name: str
    preset: Preset
    seed: int = 0


def resolve(tasks: list[str], attacks: list[str], modes: list[str], preset_name: str, preset: Preset,
            seed: int, dataset: str = "cifar10", config_dirs: list[Path] | None = None) -> RunSpec:
    """Turn names into validated configs; raises UnknownNameError / ConfigError before any work."""
    for m in modes:
        MODES.get(m)
    DATASETS.get(dataset)
    create_backbone(preset.backbone)  # unknown backbone fails here, not after loading data
    return RunSpec(
        tasks=[load_task_config(t, config_dirs) for t in tasks],
        attacks=[load_attack_config(a, config_dirs) for a in attacks],
        modes=modes, dataset=dataset, preset_name=preset_name, preset=preset, seed=seed,
    )


def _component(cfg: TaskConfig | AttackConfig, registry, kind: str, cls, details: dict | None = None) -> Component:
    origin = registry.origin(kind)
    return Component(name=cfg.name, kind=kind, version=str(getattr(cls, "version", "1")),
                     distribution=origin.distribution, distribution_version=origin.version, params=cfg.params,
                     details=details or {})


def run(spec: RunSpec, data: ImageDataset, *, device: torch.device, cache: ModelCache, reporter: Reporter,
        retrain: bool = False, command: list[str] | None = None) -> Leaderboard:
    t_start = time.perf_counter()
    commit, dirty = git_state()  # the code as it was when the run started
    p = spec.preset
    ctx = TrainContext(data=data, preset=p, device=device, seed=spec.seed, cache=cache, reporter=reporter, retrain=retrain)
    n_eval = min(p.eval_images, len(data.test_x))
    x_eval, y_eval = data.test_x[:n_eval], data.test_y[:n_eval]
    attacks = {a.name: ATTACKS.get(a.kind)(a.params) for a in spec.attacks}
    cells: list[Cell] = []
    for mode_name in spec.modes:
        mode = MODES.get(mode_name)()
        for tcfg in spec.tasks:
            task_cls = TASKS.get(tcfg.task)
            task = task_cls(tcfg.params)
            model = mode.build(ctx, task)
            outcome = evaluate(model, task, attacks, tcfg.reverse, x_eval, y_eval, batch_size=p.eval_batch_size,
                               seed=spec.seed, reporter=reporter, description=f"evaluate {mode_name}/{tcfg.name}")
            task_comp = _component(tcfg, TASKS, tcfg.task, task_cls, task.describe())
            for acfg in spec.attacks:
                o = outcome.attacks[acfg.name]
                cells.append(Cell(
                    task=task_comp, mode=mode_name, attack=_component(acfg, ATTACKS, acfg.kind, ATTACKS.get(acfg.kind)),
                    backbone=p.backbone, dataset=data.name, preset=spec.preset_name,
                    reverse=tcfg.reverse.model_dump(mode="json"),
                    reverse_randomized=bool(task.randomized_eval or tcfg.reverse.random_start),
                    clean=Accuracy.from_flags(outcome.clean), clean_rev=Accuracy.from_flags(outcome.clean_rev),
                    adv=Accuracy.from_flags(_cat(o.adv)), adv_rev=Accuracy.from_flags(_cat(o.adv_rev)),
                    pretext=Pretext(metric=task.metric_name, higher_is_better=task.higher_is_better,
                                    clean=float(outcome.pretext_clean.mean()), adversarial=float(_cat(o.pretext_adv).mean()),
                                    adversarial_reversed=float(_cat(o.pretext_adv_rev).mean())),
                    model_key=ctx.records[-1]["key"],
                    seconds={**{f"clean_{k}": v for k, v in outcome.seconds_clean.items()}, **o.seconds},
                    adaptive=attacks[acfg.name].adaptive,
                    zero_grad_fraction=sum(o.zero_grad) / n_eval if o.zero_grad else None,
                ))
            del model
    config = spec.model_dump(mode="json")
    board = Leaderboard(
        ssrbench_version=__version__, git_commit=commit, git_dirty=dirty, created=datetime.now(timezone.utc),
        command=command if command is not None else ["ssrbench", *sys.argv[1:]], environment=capture(device),
        dataset=DatasetInfo(name=data.name, fingerprint=data.fingerprint, source=data.source, eval_images=n_eval,
                            eval_selection=f"first {n_eval} test images"),
        preset=spec.preset_name, seed=spec.seed, config=config, config_hash=config_hash(config),
        training=[TrainingRecord(**r) for r in ctx.records], cells=cells,
        seconds_total=time.perf_counter() - t_start,
    )
    board.worst_case = worst_case(board)
    board.warnings = sanity_warnings(board)
    for w in board.warnings:
        reporter.log(f"[yellow]sanity check: {w}")
    return board


def _cat(parts: list[Any]) -> np.ndarray:
    return np.concatenate(parts)
