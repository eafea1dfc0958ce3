"""``ssrbench run``: the options, the run they describe (``run_spec``) and the executors."""

from __future__ import annotations

import inspect
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.text import Text

from ..core.limits import MAX_GPUS_PER_TASK, MAX_RETRIES, MAX_SEED, MAX_THREADS
from ..core.plaintext import printable, text
from ..core.presets import DEFAULT_PRESET, PRESET_RUNS, PRESETS, PresetRun, preset_fields, preset_run, resolve_preset
from ..data.datasets import DATASETS
from ..leaderboard.records import EXECUTORS
from ..run.cascade import ORDERS
from ..run.sweep import Grid, parse_budgets, parse_steps
from ..training.cache import CACHE_DIR_ENV
from .app import (
    ADAPTIVE_SUITE,
    CONFIG_DIRS,
    DATA_DIR,
    DOWNLOAD,
    PROGRESS,
    ZOO_DIR,
    _csv,
    _friendly,
    _preset_overrides,
    _seeds,
    _sweep_values,
    cli,
    zoo_for,
)
from .types import FiniteFloat, MemorySize, RayAddressType


def _preset_defaults(what: str) -> str:
    """The default of --tasks, --attacks or --modes, and where a preset has its own."""
    general = ",".join(getattr(PresetRun(), what))
    own = [
        f"{name}: {','.join(getattr(r, what))}"
        for name, r in PRESET_RUNS.items()
        if getattr(r, what) != getattr(PresetRun(), what)
    ]
    return general + (f" ({'; '.join(own)})" if own else "")


@cli.command()
@click.option(
    "--tasks",
    callback=_csv,
    default=None,
    help="comma-separated task configs (`ssrbench list tasks`); default: the preset's -- " + _preset_defaults("tasks"),
)
@click.option(
    "--attacks",
    callback=_csv,
    default=None,
    help="comma-separated attack configs (`ssrbench list attacks`); default: the preset's -- "
    + _preset_defaults("attacks"),
)
@click.option(
    "--modes",
    callback=_csv,
    default=None,
    help="comma-separated training modes; default: the preset's -- " + _preset_defaults("modes"),
)
@click.option(
    "--adaptive",
    is_flag=True,
    help=f"add the adaptive suite ({ADAPTIVE_SUITE.describe()}): attacks that see the defense, plus a "
    "large-eps sanity probe; the worst case over all attacks is reported",
)
@click.option(
    "--cascade",
    is_flag=True,
    help="the worst case without the grid: per model the attacks run one after another, each on the images "
    "still robust (AutoAttack's cascade); the file holds that worst case and, per attack, the images it ran "
    "on and fooled -- no per-attack accuracy. One threat model, no sweep; sanity probes are left out",
)
@click.option(
    "--cascade-order",
    type=click.Choice(list(ORDERS)),
    default=None,
    help="with --cascade: " + "; ".join(f"{k}: {v}" for k, v in ORDERS.items()) + " (default cost; recorded)",
)
@click.option(
    "--preset",
    type=click.Choice(sorted(PRESETS)),
    default=DEFAULT_PRESET,
    show_default=True,
    help="run size: smoke (seconds), quick (laptop CPU), quick-robust (quick on an adversarially trained base), "
    "seed (the source report, its architecture), full (paper scale, GPU), mao21 (Mao et al. 2021 on RobustBench's "
    "Carmon2019Unlabeled as Croce et al. 2022 evaluated it, GPU); `run --estimate` says what one costs",
)
@click.option("--backbone", default=None, help="any timm model name, or an ssrbench backbone (default: the preset's)")
@DATA_DIR
@DOWNLOAD
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="leaderboard file to write (default leaderboards/<preset>.json)",
)
@click.option(
    "--device", default="auto", show_default=True, help="auto (CUDA when present, else CPU), cpu, cuda, cuda:1 ..."
)
@click.option(
    "--seed",
    type=click.IntRange(min=0, max=MAX_SEED),
    default=0,
    show_default=True,
    help="seed for initialisation, data order, attacks",
)
@click.option(
    "--seeds",
    callback=_seeds,
    default=None,
    help="several training seeds, each its own models (cached per seed) and cells, with mean, sd and a "
    "seeds-then-images interval per cell: a list (0,1,2) or a count (3 = 0,1,2); replaces --seed",
)
@click.option(
    "--deterministic",
    is_flag=True,
    help="enforce torch's deterministic algorithms (recorded); two trainings in one environment then give "
    "byte-identical weights. Another CPU or GPU still gives other weights (kernels round differently)",
)
@click.option(
    "--attack-eps",
    callback=_sweep_values(parse_budgets),
    default=None,
    help="sweep: each attack config at these eps (1/255,2/255,4/255,8/255,16/255), its step size scaled "
    "with eps; one cell per point, same models and images",
)
@click.option(
    "--attack-steps",
    callback=_sweep_values(lambda v: parse_steps(v, 1)),
    default=None,
    help="sweep: each attack config at these step counts (1,2,5,10 or a range 1..10)",
)
@click.option(
    "--reverse-eps",
    callback=_sweep_values(parse_budgets),
    default=None,
    help="sweep: each task config's reverse attack at these eps (0 = no reverse attack), step size scaled",
)
@click.option(
    "--reverse-steps",
    callback=_sweep_values(lambda v: parse_steps(v, 0)),
    default=None,
    help="sweep: each task config's reverse attack at these step counts",
)
@click.option(
    "--classifier-checkpoint",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="a state dict (torch.save(model.state_dict())) for the chosen backbone that replaces "
    "classifier-first's classifier stage -- e.g. your own robust model; loaded with weights_only=True, "
    "checked parameter by parameter, its SHA-256 recorded and part of the cache key",
)
@click.option(
    "--model-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="with --base robustbench:NAME: RobustBench's model folder, in its layout DIR/DATASET/Linf/NAME.pt "
    "(default ./models, as RobustBench's load_model); ssrbench never downloads into it",
)
@click.option(
    "--base-checkpoint",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="with --base module:factory (or an ssrbench.bases entry point): the weights, "
    "torch.save(model.state_dict()); loaded weights-only, its SHA-256 recorded and part of the cache key",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1, max=MAX_THREADS),
    default=None,
    help=f"torch CPU threads, at most {MAX_THREADS} (recorded; results can depend on it)",
)
@click.option(
    "--attack-memory",
    type=MemorySize(),
    default=None,
    help="a memory budget for one attack call (4GiB, 512MiB, 2.5GB or bytes): an attack whose batch would keep "
    "more for autograd runs on chunks that fit, each drawing as the whole batch does -- the same images, the "
    "split recorded in the cell. On CUDA an out-of-memory error halves the chunk without it",
)
@CONFIG_DIRS
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path),
    envvar=CACHE_DIR_ENV,
    default=None,
    show_envvar=True,
    help="trained-model cache (default ~/.cache/ssrbench/models)",
)
@click.option(
    "--retrain", is_flag=True, help="ignore cached models and the zoo, and train again (the cache is refreshed)"
)
@ZOO_DIR
@click.option(
    "--no-zoo",
    is_flag=True,
    help="train every stage the machine's cache lacks, even when the zoo holds reference weights for it",
)
@click.option(
    "--zoo-only",
    is_flag=True,
    help="every stage's weights from the zoo, none trained and none from the "
    "machine's cache: a stage the zoo lacks or refuses stops the run before any work (exit 2)",
)
@click.option("--quiet", "-q", is_flag=True, help="no table and no progress (unless --progress is given), only errors")
@PROGRESS
@click.option(
    "--executor",
    type=click.Choice(list(EXECUTORS)),
    default="local",
    show_default=True,
    help="local: every unit of work in this process; ray: training stages and model evaluations as Ray "
    "tasks, on a cluster or a local Ray instance (extra: ssrbench[ray]) -- the same numbers",
)
@click.option(
    "--address",
    type=RayAddressType(),
    default=None,
    help="--executor ray: the cluster, host:port (ray start --head prints it), ray://host:10001 (Ray "
    "Client) or auto (the cluster this machine joined); default: start a local Ray instance",
)
@click.option(
    "--cpus-per-task",
    type=FiniteFloat(gt=0, le=MAX_THREADS),
    default=None,
    help="--executor ray: CPUs each unit asks for (default 1); also its torch threads unless --threads",
)
@click.option(
    "--gpus-per-task",
    type=FiniteFloat(ge=0, le=MAX_GPUS_PER_TASK),
    default=None,
    help="--executor ray: GPUs each unit asks for (default 0); above 0, units run on CUDA on GPU workers",
)
@click.option(
    "--max-retries",
    type=click.IntRange(min=0, max=MAX_RETRIES),
    default=None,
    help="--executor ray: times a unit whose worker died is started again (default 2; attempts recorded)",
)
@click.option(
    "--shared-cache",
    is_flag=True,
    help="--executor ray: --cache-dir is on a filesystem every node mounts at that path; workers use it "
    "directly (default: weights travel through Ray's object store to and from the driver's cache)",
)
@click.option(
    "--estimate",
    is_flag=True,
    help="print what the run would cost -- per training stage and per attack: images, passes, FLOPs (counted on "
    "the run's own models) and minutes on this machine and on a kept GPU measurement -- and run nothing "
    "(no data is read; a --base file need not be there yet)",
)
@click.option(
    "--format",
    "estimate_format",
    type=click.Choice(["table", "markdown"]),
    default="table",
    show_default=True,
    help="with --estimate: a table on the terminal, or markdown for a page (the kept GPU's minutes only: this "
    "machine's timing differs from run to run)",
)
@_preset_overrides
@_friendly
def run(
    tasks,
    attacks,
    modes,
    adaptive,
    cascade,
    cascade_order,
    preset,
    backbone,
    data_dir,
    download,
    out,
    device,
    seed,
    seeds,
    deterministic,
    attack_eps,
    attack_steps,
    reverse_eps,
    reverse_steps,
    classifier_checkpoint,
    model_dir,
    base_checkpoint,
    threads,
    attack_memory,
    config_dirs,
    cache_dir,
    retrain,
    zoo_dir,
    no_zoo,
    zoo_only,
    quiet,
    progress,
    executor,
    address,
    cpus_per_task,
    gpus_per_task,
    max_retries,
    shared_cache,
    estimate,
    estimate_format,
    **overrides,
) -> None:
    """Train, attack, reverse-attack and evaluate every task x attack x mode cell.

    \b
    Example:
      ssrbench run --tasks inpaint --attacks fgsm,pgd2 --data-dir ../shared/data
    """
    import torch

    from ..core.fileio import check_writable, sweep_stale_temps
    from ..core.progress import Reporter
    from ..leaderboard import render, store
    from ..models.environment import make_deterministic, resolve_device
    from ..run.runner import run as run_all
    from ..training.cache import ModelCache

    ray_options = {
        "--address": address,
        "--cpus-per-task": cpus_per_task,
        "--gpus-per-task": gpus_per_task,
        "--max-retries": max_retries,
        "--shared-cache": shared_cache or None,
    }
    given = [name for name, value in ray_options.items() if value is not None]
    if executor == "local" and given:
        raise click.UsageError(f"{given[0]} is an option of --executor ray; add --executor ray, or leave it out")
    try:
        dev = resolve_device(device)
    except (ValueError, RuntimeError) as exc:
        raise click.BadParameter(str(exc), param_hint="--device") from exc
    if threads:
        torch.set_num_threads(threads)
    if deterministic:
        make_deterministic()
    units_on = None
    if executor == "ray":
        units_on = _ray_executor(
            address, cpus_per_task, gpus_per_task, max_retries, shared_cache, threads, deterministic, device
        )
    if estimate_format != "table" and not estimate:
        raise click.UsageError("--format is the form of --estimate's table: add --estimate, or leave it out")
    if cascade_order is not None and not cascade:
        raise click.UsageError("--cascade-order orders a cascade: add --cascade, or leave it out")
    spec, run_notes = run_spec(
        estimate=estimate,
        tasks=tasks,
        attacks=attacks,
        modes=modes,
        adaptive=adaptive,
        cascade=cascade,
        cascade_order=cascade_order,
        preset=preset,
        backbone=backbone,
        seed=seed,
        seeds=seeds,
        attack_eps=attack_eps,
        attack_steps=attack_steps,
        reverse_eps=reverse_eps,
        reverse_steps=reverse_steps,
        classifier_checkpoint=classifier_checkpoint,
        config_dirs=config_dirs,
        attack_memory=attack_memory,
        model_dir=model_dir,
        base_checkpoint=base_checkpoint,
        **overrides,
    )
    if estimate:
        from ..run.estimate import estimate as estimate_cost
        from .estimate import markdown_estimate, render_estimate

        if estimate_format == "markdown":
            click.echo(markdown_estimate(estimate_cost(spec, measure_here=False), spec))
        else:
            render_estimate(estimate_cost(spec, device=dev), spec, Console())
        return
    out = out or Path("leaderboards") / f"{preset}.json"
    check_writable(out)
    cache = ModelCache(cache_dir, zoo=zoo_for(zoo_dir, no_zoo, zoo_only, retrain), zoo_only=zoo_only)
    cache.prepare()
    sweep_stale_temps(out.parent, out.name)
    console = Console(stderr=True)
    with Reporter(console, mode=progress or ("none" if quiet else "auto")) as reporter:
        with reporter.bar(f"load {spec.dataset}", 1) as advance:
            data = DATASETS.get(spec.dataset)(data_dir, download=download)
            advance()
        board = run_all(
            spec,
            data,
            device=dev,
            cache=cache,
            reporter=reporter,
            retrain=retrain,
            notes=run_notes,
            command=["ssrbench", *sys.argv[1:]] if sys.argv and "ssrbench" in Path(sys.argv[0]).name else None,
            executor=units_on,
        )
    store.save(board, out)
    if not quiet:
        render.render(board)
        console.print(Text.assemble("leaderboard written to ", text(out, style="bold")))


def run_spec(
    *,
    tasks,
    attacks,
    modes,
    adaptive,
    preset,
    backbone,
    seed,
    seeds,
    attack_eps,
    attack_steps,
    reverse_eps,
    reverse_steps,
    classifier_checkpoint,
    config_dirs,
    cascade=False,
    cascade_order=None,
    attack_memory=None,
    model_dir=None,
    base_checkpoint=None,
    estimate=False,
    **overrides,
):
    """The RunSpec that `ssrbench run`'s options describe, and the notes it adds (extras left out of
    --adaptive): what a run evaluates, and what ``command_spec`` recomputes from a recorded command."""
    from ..run.spec import resolve

    defaults = preset_run(preset)
    tasks, attacks, modes = (
        tasks or list(defaults.tasks),
        attacks or list(defaults.attacks),
        modes or list(defaults.modes),
    )
    run_notes = []
    if adaptive:
        attacks = attacks + [a for a in ADAPTIVE_SUITE.available() if a not in attacks]
        run_notes = ADAPTIVE_SUITE.left_out()
    values = {k: v for k, v in overrides.items() if v is not None}
    if backbone:
        values["backbone"] = backbone
    resolved_preset = resolve_preset(preset, values)
    grid = Grid(attack_eps, attack_steps, reverse_eps, reverse_steps)
    spec = resolve(
        tasks,
        attacks,
        modes,
        preset,
        resolved_preset,
        seeds or [seed],  # --seeds replaces --seed: from here on the one list
        config_dirs=list(config_dirs),
        classifier_checkpoint=classifier_checkpoint,
        grid=grid,
        cascade=(cascade_order or "cost") if cascade else None,
        attack_memory=attack_memory,
        model_dir=model_dir,
        base_checkpoint=base_checkpoint,
        load_base=not estimate,
    )
    if cascade:
        probes = [a for a in attacks if a not in {c.name for c in spec.attacks}]
        if probes:
            run_notes.append(
                f"--cascade leaves out the sanity probe {', '.join(probes)}: a probe must see every image (run it "
                f"without --cascade)"
            )
    return spec, run_notes


def command_spec(command: list[str]):
    """The RunSpec the current code resolves from a recorded `ssrbench run ...` command (a leaderboard's or
    a zoo entry's): the same options, today's presets, configs and defaults -- so a stage key it yields that
    differs from the recorded one means the code has changed what that command trains."""
    if command[:2] != ["ssrbench", "run"]:
        raise click.UsageError(f"{printable(' '.join(command[:2]))!s} is not an `ssrbench run` command")
    ctx = run.make_context("run", list(command[2:]))
    keep = set(inspect.signature(run_spec).parameters) | {f.name for f in preset_fields() if f.name != "backbone"}
    params = {k: v for k, v in ctx.params.items() if k in keep}
    return run_spec(**params)[0]


def _ray_executor(address, cpus, gpus, max_retries, shared_cache, threads, deterministic, device):
    """The Ray executor the options describe; Ray itself is imported (and a missing extra reported) here,
    before any data is read."""
    from ..core.extras import require
    from ..run.ray_executor import RayExecutor, WorkerSettings, check_address

    require("ray", "--executor ray")
    if address not in (None, "auto"):
        check_address(address)  # before the data is read: an unreachable cluster fails in seconds
    gpus = gpus or WorkerSettings.gpus  # the option's defaults are the settings' own
    if device not in ("auto", "cpu" if gpus == 0 else "cuda"):
        raise click.BadParameter(
            f"{device!r}: with --executor ray the units' device follows --gpus-per-task (CUDA "
            f"when above 0, else the CPU); leave --device out",
            param_hint="--device",
        )
    cpus = cpus or WorkerSettings.cpus
    settings = WorkerSettings(
        cpus=cpus,
        gpus=gpus,
        threads=threads or max(1, int(cpus)),
        deterministic=deterministic,
        max_retries=WorkerSettings.max_retries if max_retries is None else max_retries,
        shared_cache=shared_cache,
    )
    return RayExecutor(address, settings)
