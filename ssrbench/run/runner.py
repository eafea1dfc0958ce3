"""Every task x attack x training-mode cell of one run, into one leaderboard (the spec is resolved by
``spec.py``, each model's cells computed by ``units.py`` in this process or by an executor).

Everything a user can get wrong is checked before any training: names, configs, data, output path.
Trained models go to the cache as soon as they finish, so an interrupted run loses no training; the
leaderboard is written once, atomically, at the end.
"""

from __future__ import annotations

import sys
import time
from datetime import UTC, datetime

import torch

from .. import __version__
from ..core.hashing import config_hash
from ..core.progress import Reporter
from ..data.datasets import ImageDataset
from ..leaderboard.schema import DatasetInfo, Leaderboard, TrainingRecord
from ..models.environment import capture, git_state
from ..training.cache import ModelCache
from .config import shadowed_builtins
from .spec import RunSpec, recorded_config
from .units import Executor, LocalExecutor, model_units, train_context, zoo_notice


def run(
    spec: RunSpec,
    data: ImageDataset,
    *,
    device: torch.device,
    cache: ModelCache,
    reporter: Reporter,
    retrain: bool = False,
    command: list[str] | None = None,
    notes: list[str] | None = None,
    executor: Executor | None = None,
) -> Leaderboard:
    t_start = time.perf_counter()
    commit, dirty = git_state()  # the code as it was when the run started
    notes = [
        *(notes or []),
        *shadowed_builtins([*spec.tasks, *spec.attacks]),
    ]  # notes: the caller's, e.g. left-out extras
    for n in notes:
        reporter.log(n, style="yellow")
    if spec.preset.eval_images > len(data.test_x):  # record what was used, and say so
        notes.append(
            f"--eval-images {spec.preset.eval_images} is more than the {len(data.test_x)} test images of "
            f"{data.name}; all {len(data.test_x)} were evaluated"
        )
        reporter.log(notes[-1], style="yellow")
        spec = spec.model_copy(update={"preset": spec.preset.model_copy(update={"eval_images": len(data.test_x)})})
    p = spec.preset
    n_eval = p.eval_images
    train_context(spec, data, spec.seed, device=device, cache=cache, reporter=reporter, retrain=retrain).train_range()
    notice = None if retrain else zoo_notice(spec, data, device, cache)
    if notice:
        reporter.log(notice)
    if spec.classifier_checkpoint is not None and "multitask" in spec.modes:
        notes.append("--classifier-checkpoint replaces classifier-first's classifier only; multitask trains its own")
    executor = executor or LocalExecutor()
    results = executor.run_units(
        spec, model_units(spec), data, device=device, cache=cache, reporter=reporter, retrain=retrain
    )
    training = _one_per_stage([r for res in results for r in res.records])
    cells = [c for res in results for c in res.cells]
    cascades = [c for res in results for c in res.cascades]
    notes += [n for res in results for n in res.notes]
    config = recorded_config(spec)
    board = Leaderboard(
        ssrbench_version=__version__,
        git_commit=commit,
        git_dirty=dirty,
        created=datetime.now(UTC),
        command=command if command is not None else ["ssrbench", *sys.argv[1:]],
        environment=capture(device),
        dataset=DatasetInfo(
            name=data.name,
            fingerprint=data.fingerprint,
            source=data.source,
            eval_images=n_eval,
            eval_selection=f"first {n_eval} test images",
        ),
        preset=spec.preset_name,
        seed=spec.seed,
        config=config,
        config_hash=config_hash(config),
        training=training,
        cells=cells,
        cascades=cascades,
        seconds_total=time.perf_counter() - t_start,
        notes=notes,
    )
    cache.drop_progress()  # every cell is built: the evaluations' kept batches would only go stale
    for w in board.warnings:
        reporter.log(f"sanity check: {w}", style="yellow")
    return board


def _one_per_stage(records: list[TrainingRecord]) -> list[TrainingRecord]:
    """Each stage once, where it first appears, as trained when this run trained it: a stage several units
    use (the classifier every mode is judged against) is trained by one and loaded from the cache by the others."""
    kept: dict[tuple[str, str], TrainingRecord] = {}
    for r in records:
        first = kept.setdefault((r.stage, r.key), r)
        if first.cached and not r.cached:
            kept[(r.stage, r.key)] = r
    return list(kept.values())
