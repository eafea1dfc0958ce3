"""A run's resolved configuration: names turned into validated configs before any work, and the one rule for
how the config is recorded (and so hashed) in the leaderboard."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from ..adversarial.base import ATTACKS
from ..core.budget import format_budget
from ..core.errors import ConfigError, SSRBenchError
from ..core.limits import MAX_SEED, MAX_SEEDS
from ..core.presets import Preset
from ..core.registry import BUILTIN_DIST, one_line
from ..data.datasets import DATASETS, DEFAULT_DATASET
from ..models.backbone import check_backbone
from ..models.bases import BaseChoice
from ..pretext.base import TASKS
from ..training.checkpoint import load_classifier_checkpoint
from ..training.modes import MODES
from .config import (
    AttackConfig,
    TaskConfig,
    load_attack_config,
    load_task_config,
)
from .sweep import Grid, expand
from .testing import quick_task_check


class RunSpec(BaseModel):
    """The fully resolved configuration of a run: its hash identifies the run."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    tasks: list[TaskConfig]
    attacks: list[AttackConfig]
    modes: list[str]
    dataset: str = DEFAULT_DATASET
    preset_name: str
    preset: Preset
    # the training seeds, each its own models (cached per seed) and cells; every seed the run derives from one
    # then fits torch and numpy. Recorded as ``seed`` (the first) plus ``seeds`` when several: recorded_config
    seeds: list[Annotated[int, Field(ge=0, le=MAX_SEED)]] = Field([0], min_length=1, max_length=MAX_SEEDS)
    classifier_checkpoint: str | None = None  # classifier-first's classifier from this file (left out when None)
    base_checkpoint: str | None = None  # the weights of a module base (preset.base; left out when None)
    # where RobustBench's files are (run --model-dir): how to find the base's file, whose SHA-256 the training
    # record holds -- like the data folder, never recorded in the config
    model_dir: str | None = None
    sweep: dict[str, list[float]] | None = None  # the budget grid the configs were expanded over (left out when None)
    cascade: Literal["cost", "given"] | None = None  # run --cascade: its attack order (left out when None)
    # run --attack-memory: a memory budget that attack calls are split to (bytes). How the work is cut, not what
    # is computed -- the images are an unsplit run's -- so never recorded in the config: each split is, in its cell
    attack_memory: int | None = Field(None, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _recorded_seeds(cls, data: Any) -> Any:
        """A recorded config (``seed``, and ``seeds`` only when several) read back as the one list."""
        if isinstance(data, dict) and "seed" in data:
            data = dict(data)
            seed, seeds = data.pop("seed"), data.get("seeds")
            if seeds is not None and (not isinstance(seeds, list) or not seeds or seeds[0] != seed):
                raise ValueError(f"seed {seed!r} is not the first of seeds {seeds!r}")
            data["seeds"] = seeds if seeds is not None else [seed]
        return data

    @property
    def seed(self) -> int:
        """The first seed: the leaderboard's ``seed``, the one the training-data order check uses."""
        return self.seeds[0]

    @property
    def several_seeds(self) -> bool:
        return len(self.seeds) > 1


def recorded_config(spec: RunSpec) -> dict[str, Any]:
    """``spec`` as the leaderboard records and hashes it: one seed as ``seed``, several as ``seed`` (the first)
    and ``seeds``, and the optional fields left out when unset -- so configs written before these existed
    keep their hash (and their key order); the memory budget and the model folder never (they change no number)."""
    out: dict[str, Any] = {}
    for name, value in spec.model_dump(mode="json").items():
        if name in ("attack_memory", "model_dir"):
            continue
        if name == "seeds":
            out["seed"] = value[0]
            if len(value) > 1:
                out["seeds"] = value
        elif name in ("classifier_checkpoint", "base_checkpoint", "sweep", "cascade") and value is None:
            continue
        else:
            out[name] = value
    return out


def _build(registry, name: str, params: dict) -> Any:
    """Build a task or attack once with its params: a plugin's constructor failing in its own way (not with
    ssrbench's errors) is bad input naming the plugin, not a traceback; a built-in's is a bug, shown as one."""
    try:
        return registry.get(name)(params)
    except SSRBenchError:
        raise
    except Exception as exc:
        origin = registry.origin(name)
        if origin.distribution == BUILTIN_DIST:
            raise
        raise ConfigError(
            f"{registry.kind} {name!r} ({origin.distribution} {origin.version}) fails to build: {one_line(exc)}"
        ) from exc


def resolve(
    tasks: list[str],
    attacks: list[str],
    modes: list[str],
    preset_name: str,
    preset: Preset,
    seeds: list[int],
    dataset: str = DEFAULT_DATASET,
    config_dirs: list[Path] | None = None,
    classifier_checkpoint: Path | None = None,
    grid: Grid | None = None,
    cascade: str | None = None,
    attack_memory: int | None = None,
    model_dir: Path | None = None,
    base_checkpoint: Path | None = None,
    load_base: bool = True,
) -> RunSpec:
    """Turn names into validated configs; raises UnknownNameError / ConfigError before any work. ``load_base``
    False leaves a base's file unread (``run --estimate`` counts its architecture's cost without it)."""
    for m in modes:
        MODES.get(m)
    DATASETS.get(dataset)
    if preset.base is not None:
        _check_base(preset.base, modes, classifier_checkpoint, model_dir, base_checkpoint, load=load_base)
    else:
        if base_checkpoint is not None:
            raise ConfigError("--base-checkpoint is the weights of a --base module: add --base, or leave it out")
        if model_dir is not None:
            raise ConfigError("--model-dir is where a --base robustbench:NAME is found: add --base, or leave it out")
        check_backbone(preset.backbone)  # an unknown or unusable backbone fails here, not after loading data
    if classifier_checkpoint is not None:
        load_classifier_checkpoint(classifier_checkpoint, preset.backbone)  # a bad file fails here too
    task_configs = [load_task_config(t, config_dirs) for t in tasks]
    attack_configs = [load_attack_config(a, config_dirs) for a in attacks]
    if grid:
        task_configs, attack_configs = expand(task_configs, attack_configs, grid)
    # each built once here, so that a missing extra (kornia, torchattacks) fails before the data is read
    for tcfg in task_configs:
        _build(TASKS, tcfg.kind, tcfg.params)
    built = {acfg.name: _build(ATTACKS, acfg.kind, acfg.params) for acfg in attack_configs}
    if cascade is not None:
        attack_configs = _cascade_attacks(attack_configs, built, grid)
    for tcfg in task_configs:
        if TASKS.origin(tcfg.kind).distribution != BUILTIN_DIST:  # built-ins are held to it by the test suite
            broken = quick_task_check(TASKS.get(tcfg.kind), tcfg.params)
            if broken:
                raise ConfigError(
                    f"task {tcfg.kind!r} ({TASKS.origin(tcfg.kind).distribution}) breaks the task "
                    f"contract: {broken}; `ssrbench check-plugin {tcfg.kind}` says more"
                )
    return RunSpec(
        tasks=task_configs,
        attacks=attack_configs,
        modes=modes,
        dataset=dataset,
        preset_name=preset_name,
        preset=preset,
        seeds=list(seeds),
        classifier_checkpoint=str(classifier_checkpoint) if classifier_checkpoint else None,
        base_checkpoint=str(base_checkpoint) if base_checkpoint else None,
        model_dir=str(model_dir) if model_dir else None,
        sweep=grid.record() if grid else None,
        cascade=cascade,
        attack_memory=attack_memory,
    )


def base_choice(spec: RunSpec) -> BaseChoice | None:
    """The run's base (``preset.base``) and where its file is, or None when classifier-first trains its own."""
    if spec.preset.base is None:
        return None
    return BaseChoice(
        spec.preset.base,
        Path(spec.model_dir) if spec.model_dir else None,
        Path(spec.base_checkpoint) if spec.base_checkpoint else None,
    )


def _check_base(base: str, modes, classifier_checkpoint, model_dir, base_checkpoint, load: bool = True) -> None:
    """A base is classifier-first's classifier: refuse what cannot go with it, then load it once (a missing,
    doctored or foreign file fails here, before the data is read)."""
    if classifier_checkpoint is not None:
        raise ConfigError(
            "--base and --classifier-checkpoint both replace classifier-first's classifier: give one of them"
        )
    choice = BaseChoice(base, model_dir, base_checkpoint)
    choice.check()
    others = [m for m in modes if m != "classifier-first"]
    if others:
        raise ConfigError(
            f"--base {base}: a published base is frozen, and {', '.join(others)} would train a backbone of its "
            f"own; give --modes classifier-first"
        )
    if load:
        choice.load()


def _cascade_attacks(configs: list[AttackConfig], built: dict[str, Any], grid: Grid | None) -> list[AttackConfig]:
    """The attacks of a cascade: one threat model (its worst case is that model's), no sweep, sanity probes left
    out (a probe must see every image; ``run`` says it left them out)."""
    if grid:
        flags = [f"--{k.replace('_', '-')}" for k in grid.record()]
        raise ConfigError(
            f"--cascade with {', '.join(flags)}: a cascade's worst case is per threat model, a sweep has many; "
            f"run one --cascade per budget, or the sweep without --cascade"
        )
    kept = [c for c in configs if not c.probe]
    threats = {}
    for c in kept:
        threat = built[c.name].threat_model()
        if threat is None:
            raise ConfigError(f"--cascade: attack {c.name!r} declares no threat model; a cascade needs one for all")
        threats[c.name] = threat
    models = {(t.norm, round(t.eps, 9)) for t in threats.values()}
    if len(models) > 1:
        shown = ", ".join(f"{name}: {t.norm} {format_budget(t.eps)}" for name, t in threats.items())
        raise ConfigError(
            f"--cascade: the attacks have different threat models ({shown}); a cascade's worst case is per "
            f"threat model: give attacks of one budget"
        )
    if not kept:
        raise ConfigError("--cascade: no attack is left once the sanity probes are set aside")
    return kept
