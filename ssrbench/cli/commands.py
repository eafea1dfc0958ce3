"""The ``ssrbench`` command: run, list, show."""

from __future__ import annotations

import functools
import inspect
import sys
from collections import Counter
from pathlib import Path

import click
from rich.console import Console
from rich.text import Text

from ..adversarial.base import ATTACKS
from ..core.errors import TERMINATED, SSRBenchError, Terminated, sigterm_raises
from ..core.limits import MAX_GPUS_PER_TASK, MAX_IMAGES, MAX_RETRIES, MAX_SEED, MAX_SEEDS, MAX_THREADS, shown
from ..core.plaintext import json_text, printable, text
from ..core.presets import DEFAULT_PRESET, PRESETS, preset_fields, resolve_preset
from ..core.progress import PROGRESS_MODES
from ..data.datasets import DATA_DIR_ENV, DATASETS
from ..leaderboard.records import EXECUTORS
from ..pretext.base import TASKS
from ..run.config import load_task_config
from ..run.suites import load_suite
from ..run.sweep import Grid, parse_budgets, parse_steps
from ..training.cache import CACHE_DIR_ENV
from ..training.zoo import ZOO_DIR_ENV
from .catalogue import SECTIONS, table
from .types import FiniteFloat, RayAddressType, preset_param_type

ADAPTIVE_SUITE = load_suite("adaptive")  # what --adaptive adds: attacks/suites/adaptive.toml


MAX_ERROR_CHARS = 1_000  # an error line's length, at most (plus the note of what was left out)


class _Fail(click.ClickException):
    """An error message and exit status, in one line. The message often quotes a file (a leaderboard's names,
    a config's values, a plugin's error): it is printed as text, its control characters escaped."""

    def __init__(self, message: str, exit_code: int):
        line = printable(" ".join(part.strip() for part in message.splitlines() if part.strip()))
        if len(line) > MAX_ERROR_CHARS:  # a hostile file's name can be pages long: the line stays readable
            cut = len(line) - MAX_ERROR_CHARS
            line = f"{line[: MAX_ERROR_CHARS * 3 // 4]} … ({cut} characters left out) … {line[-MAX_ERROR_CHARS // 4 :]}"
        super().__init__(line)
        self.exit_code = exit_code


INTERRUPTED = 130  # what shells expect of a process ended by Ctrl-C (128 + SIGINT)


def _friendly(fn):
    """User errors become one clear message and an exit status, never a traceback; Ctrl-C exits 130, SIGTERM 143."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            with sigterm_raises():  # SIGTERM cleans up as Ctrl-C does, and exits 143
                return fn(*args, **kwargs)
        except SSRBenchError as exc:
            raise _Fail(str(exc), exc.exit_code) from exc
        except OSError as exc:
            raise _Fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "), 1) from exc
        except KeyboardInterrupt as exc:
            raise _Fail(
                ("terminated" if isinstance(exc, Terminated) else "interrupted")
                + ": no file was written or replaced; every model trained so far is in the cache, "
                "a stage in training at its last finished epoch and an evaluation at its last finished batch, "
                "so the same command resumes",
                TERMINATED if isinstance(exc, Terminated) else INTERRUPTED,
            ) from exc

    return wrapper


def _sweep_values(parse):
    """A click callback for a sweep list: None when absent, else the parsed values (bad input: exit 2)."""

    def callback(_ctx, _param, value: str | None):
        if value is None:
            return None
        try:
            return parse(value)
        except ValueError as exc:
            raise click.BadParameter(str(exc)) from None

    return callback


def _seeds(_ctx, _param, value: str | None) -> list[int] | None:
    """``0,1,2`` (the seeds) or ``3`` (that many, from 0); bounded before a list is made of a count."""
    if value is None:
        return None
    items = [v.strip() for v in value.split(",")]
    if not value.strip() or any(not v for v in items):
        raise click.BadParameter(f"{shown(value)}: give seeds as 0,1,2 or a count such as 3")
    if len(items) > MAX_SEEDS:
        raise click.BadParameter(f"{shown(value)}: {len(items)} seeds; a run takes at most {MAX_SEEDS}")
    try:
        numbers = [int(v) for v in items]
    except ValueError:
        raise click.BadParameter(f"{shown(value)}: seeds must be integers, e.g. 0,1,2 or 3") from None
    if any(n < 0 for n in numbers):
        raise click.BadParameter(f"{shown(value)}: seeds must not be negative")
    if len(numbers) == 1:
        if numbers[0] < 1:
            raise click.BadParameter(f"{shown(value)}: a count of seeds must be at least 1")
        if numbers[0] > MAX_SEEDS:
            raise click.BadParameter(f"{shown(value)}: a count of seeds must be at most {MAX_SEEDS}")
        return list(range(numbers[0]))
    too_big = [n for n in numbers if n > MAX_SEED]
    if too_big:
        raise click.BadParameter(
            f"{shown(value)}: seed {shown(too_big[0])} is above {MAX_SEED} (2**32 - 1, the "
            f"largest seed every random generator of the run accepts)"
        )
    if len(set(numbers)) != len(numbers):
        raise click.BadParameter(f"{shown(value)}: a seed is repeated")
    return numbers


def _csv(_ctx, _param, value: str | None) -> list[str] | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise click.BadParameter("give at least one name (comma-separated)")
    if len(set(items)) != len(items):
        raise click.BadParameter(f"a name is repeated in {value!r}")
    return items


# options shared by several commands, declared once
DATA_DIR = click.option(
    "--data-dir",
    type=click.Path(path_type=Path),
    envvar=DATA_DIR_ENV,
    default=None,
    show_envvar=True,
    help="folder containing cifar-10-batches-py (default ~/.cache/ssrbench/data)",
)
DOWNLOAD = click.option(
    "--download/--no-download",
    default=True,
    show_default=True,
    help="download CIFAR-10 with torchvision when it is not in --data-dir",
)
CONFIG_DIRS = click.option(
    "--config-dir",
    "config_dirs",
    type=click.Path(path_type=Path, exists=True, file_okay=False),
    multiple=True,
    help="extra folder of named configs (with tasks/ and attacks/ inside, or the "
    "TOML files directly); searched before the built-in ones; repeatable",
)
PROGRESS = click.option(
    "--progress",
    type=click.Choice(PROGRESS_MODES),
    default=None,
    help="progress on stderr: auto (rich bars when stderr is a terminal, plain lines otherwise), "
    "rich, plain (for log files, CI, nohup, Slurm: a timestamped, flushed line as each stage "
    "starts and ends, per epoch with its losses, per model x attack, each with elapsed time "
    "and ETA), none. Default: auto, or none with --quiet",
)

ZOO_DIR = click.option(
    "--zoo-dir",
    type=click.Path(path_type=Path, file_okay=False),
    envvar=ZOO_DIR_ENV,
    default=None,
    show_envvar=True,
    help="the zoo of reference weights (default: the one installed with ssrbench, or zoo/ beside the package)",
)


def zoo_for(zoo_dir: Path | None, no_zoo: bool, zoo_only: bool, retrain: bool):
    """The zoo a run's cache consults (None with --no-zoo or --retrain); contradictory options are refused."""
    from ..training.zoo import Zoo

    if zoo_only and (no_zoo or retrain):
        raise click.UsageError(
            f"--zoo-only and {'--no-zoo' if no_zoo else '--retrain'} contradict each other; give one of them"
        )
    if zoo_dir is not None and not zoo_dir.is_dir():
        raise click.BadParameter(
            f"{printable(str(zoo_dir))} is not a folder; give the folder that holds manifest.json",
            param_hint="--zoo-dir",
        )
    return None if no_zoo or retrain else Zoo(zoo_dir)


def _preset_overrides(fn):
    """One option per preset field (``--epochs-classifier`` ...), so every preset value can be overridden;
    the backbone has its own option, --backbone."""
    for f in reversed([f for f in preset_fields() if f.name != "backbone"]):
        fn = click.option(
            f"--{f.name.replace('_', '-')}",
            f.name,
            type=preset_param_type(f),
            default=None,
            help=f"override the preset: {f.description}",
        )(fn)
    return fn


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(package_name="ssrbench")
def cli() -> None:
    """Can a self-supervised reverse attack undo an adversarial attack?

    Trains shared-backbone models (classifier + self-supervised task), attacks them, applies the
    reverse attack, and writes Clean / Clean+Rev / Adv / Adv+Rev accuracy for every
    task x attack x training-mode cell into a versioned JSON leaderboard.
    """


@cli.command()
@click.option(
    "--tasks",
    callback=_csv,
    default="inpaint",
    show_default=True,
    help="comma-separated task configs (`ssrbench list tasks`)",
)
@click.option(
    "--attacks",
    callback=_csv,
    default="fgsm,pgd2",
    show_default=True,
    help="comma-separated attack configs (`ssrbench list attacks`)",
)
@click.option(
    "--modes",
    callback=_csv,
    default="multitask,classifier-first",
    show_default=True,
    help="comma-separated training modes",
)
@click.option(
    "--adaptive",
    is_flag=True,
    help=f"add the adaptive suite ({ADAPTIVE_SUITE.describe()}): attacks that see the defense, plus a "
    "large-eps sanity probe; the worst case over all attacks is reported",
)
@click.option(
    "--preset",
    type=click.Choice(sorted(PRESETS)),
    default=DEFAULT_PRESET,
    show_default=True,
    help="run size: smoke (seconds), quick (laptop CPU), quick-robust (quick on an adversarially trained base), "
    "seed (the source report, its architecture), full (paper scale, GPU)",
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
    "--threads",
    type=click.IntRange(min=1, max=MAX_THREADS),
    default=None,
    help=f"torch CPU threads, at most {MAX_THREADS} (recorded; results can depend on it)",
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
@_preset_overrides
@_friendly
def run(
    tasks,
    attacks,
    modes,
    adaptive,
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
    threads,
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
    spec, run_notes = run_spec(
        tasks=tasks,
        attacks=attacks,
        modes=modes,
        adaptive=adaptive,
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
        **overrides,
    )
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
    **overrides,
):
    """The RunSpec that `ssrbench run`'s options describe, and the notes it adds (extras left out of
    --adaptive): what a run evaluates, and what ``command_spec`` recomputes from a recorded command."""
    from ..run.runner import resolve

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
        seed,
        config_dirs=list(config_dirs),
        seeds=seeds,
        classifier_checkpoint=classifier_checkpoint,
        grid=grid,
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
    gpus = gpus or 0.0
    if device not in ("auto", "cpu" if gpus == 0 else "cuda"):
        raise click.BadParameter(
            f"{device!r}: with --executor ray the units' device follows --gpus-per-task (CUDA "
            f"when above 0, else the CPU); leave --device out",
            param_hint="--device",
        )
    cpus = cpus or 1.0
    settings = WorkerSettings(
        cpus=cpus,
        gpus=gpus,
        threads=threads or max(1, int(cpus)),
        deterministic=deterministic,
        max_retries=2 if max_retries is None else max_retries,
        shared_cache=shared_cache,
    )
    return RayExecutor(address, settings)


@cli.command(name="list")
@click.argument("what", type=click.Choice(SECTIONS), required=False)
@CONFIG_DIRS
@_friendly
def list_(what, config_dirs) -> None:
    """List what can be named in `ssrbench run` (everything when WHAT is omitted)."""
    from ..leaderboard.render import wide_console

    console = wide_console()
    for section in [what] if what else SECTIONS:
        console.print(table(section, list(config_dirs)))


FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["rich", "markdown", "json"]),
    default="rich",
    show_default=True,
    help="terminal tables, Markdown (README/paper ready) or JSON",
)


@cli.command()
@click.argument("file")
@FORMAT
@click.option("--per-seed", is_flag=True, help="every seed's cells instead of the aggregate across seeds")
@_friendly
def show(file: str, fmt: str, per_seed: bool) -> None:
    """Render a leaderboard FILE (a path, or REV:PATH from git history); validated and migrated on load.

    A leaderboard of several seeds is shown aggregated (mean, sd and interval across seeds); --per-seed
    shows every seed's cells.
    """
    from ..leaderboard import render, store
    from ..leaderboard.compare import load_side

    board = load_side(file)
    if fmt == "rich":
        render.render(board, per_seed=per_seed)
    elif fmt == "markdown":
        click.echo(render.markdown(board, per_seed=per_seed))
    else:
        click.echo(json_text(store.dumps(board)), nl=False)


@cli.command()
@click.argument("old")
@click.argument("new")
@click.option(
    "--threshold",
    type=FiniteFloat(ge=0, le=100),
    default=1.0,
    show_default=True,
    help="smallest change, in accuracy points, that can count as better/worse",
)
@click.option(
    "--alpha",
    type=FiniteFloat(gt=0, le=1),
    default=0.05,
    show_default=True,
    help="significance level of the paired McNemar test",
)
@click.option(
    "--fail-on-regression",
    is_flag=True,
    help="exit 1 when any comparable cell gets significantly worse, or when no cell could be compared at all (for CI)",
)
@click.option(
    "--allow-no-comparable",
    is_flag=True,
    help="with --fail-on-regression: pass even when the two files share no comparable cell",
)
@FORMAT
@_friendly
def compare(
    old: str, new: str, threshold: float, alpha: float, fail_on_regression: bool, allow_no_comparable: bool, fmt: str
) -> None:
    """Compare two leaderboards cell by cell. Each side is a file or REV:PATH (e.g. HEAD~3:leaderboards/quick.json).

    Cells are matched by task, attack, mode, backbone, dataset and preset. A metric is shown as better
    or worse only when it moves by at least --threshold points AND a paired test on the same images
    says so; cells computed differently are marked not comparable with the reason.
    """
    from ..leaderboard.compare import compare as run_compare
    from ..leaderboard.compare import load_side
    from ..leaderboard.render import render_comparison

    result = run_compare(load_side(old), load_side(new), threshold=threshold, alpha=alpha)
    shown = render_comparison(result, fmt, threshold=threshold, alpha=alpha)
    if shown is not None:
        click.echo(shown)
    regressed = [r for r in result if r.regressed]
    if fail_on_regression and regressed:
        raise _Fail(f"{len(regressed)} cell(s) regressed: " + ", ".join("/".join(r.key[:3]) for r in regressed), 1)
    if fail_on_regression and not allow_no_comparable and not any(r.status == "compared" for r in result):
        statuses = ", ".join(f"{n} {s}" for s, n in Counter(r.status for r in result).items()) or "no cells"
        raise _Fail(
            f"no comparable cells between {old} and {new} ({statuses}): nothing was checked; compare files "
            f"of the same configuration, or pass --allow-no-comparable",
            1,
        )


def _echo_markdown(body: str, fmt: str) -> None:
    """A study's Markdown as it is (ready for the docs), or rendered for the terminal. Each study escapes the file's
    strings in its cells; no control character reaches the terminal even if one is missed."""
    body = printable(body, keep="\n")
    if fmt == "markdown":
        click.echo(body)
        return
    from rich.markdown import Markdown

    from ..leaderboard.render import wide_console

    wide_console().print(Markdown(body))


# the study commands: a leaderboard (or several) turned into a generated docs section
STUDY_FORMAT = click.option(
    "--format",
    "fmt",
    type=click.Choice(["rich", "markdown"]),
    default="rich",
    show_default=True,
    help="terminal or Markdown (the docs' sections are this output, unedited)",
)


def _print_study(make, fmt: str) -> None:
    """Print ``make()``'s Markdown; a leaderboard the study cannot use (ValueError) is exit 2."""
    try:
        body = make()
    except ValueError as exc:
        raise _Fail(str(exc), 2) from exc
    _echo_markdown(body, fmt)


@cli.command("versus-report")
@click.argument("file", default="leaderboards/seed.json")
@STUDY_FORMAT
@_friendly
def versus_report(file: str, fmt: str) -> None:
    """Set a leaderboard FILE (default leaderboards/seed.json) beside the source report's Table I.

    Cell by cell with the difference, the reverse attack's effect in each cell with a paired test on
    the same images, and whether each of the report's four findings reproduces. Made for a run of
    `ssrbench run --preset seed --tasks inpaint --attacks fgsm,pgd2`.
    """
    from ..leaderboard.compare import load_side
    from ..studies.source_report import markdown

    _print_study(lambda: markdown(load_side(file), file), fmt)


@cli.command("seed-findings")
@click.argument("file", default="leaderboards/quick-seeds.json")
@STUDY_FORMAT
@_friendly
def seed_findings(file: str, fmt: str) -> None:
    """The source report's four findings judged across the training seeds of FILE (default
    leaderboards/quick-seeds.json): each reverse-attack effect as mean ± sd over seeds with a
    seeds-then-images interval, and whether each finding survives seed variation."""
    from ..leaderboard.compare import load_side
    from ..studies.seed_findings import markdown

    _print_study(lambda: markdown(load_side(file), file), fmt)


@cli.command("task-ranking")
@click.argument("files", nargs=-1, required=True)
@STUDY_FORMAT
@_friendly
def task_ranking(files: tuple[str, ...], fmt: str) -> None:
    """Tasks side by side across leaderboards FILES: clean cost, Adv+Rev gains and worst cases, recomputed
    from the per-image flags on the first images every file evaluated, so rows are comparable."""
    from ..leaderboard.compare import load_side
    from ..studies.task_ranking import markdown

    _print_study(lambda: markdown([(f, load_side(f)) for f in files]), fmt)


@cli.command("base-findings")
@click.argument("file", default="leaderboards/quick-robust.json")
@click.option(
    "--alpha",
    type=FiniteFloat(gt=0, le=1),
    default=0.05,
    show_default=True,
    help="family-wise significance level: verdicts are judged on Holm-adjusted p-values",
)
@STUDY_FORMAT
@_friendly
def base_findings(file: str, alpha: float, fmt: str) -> None:
    """Does the reverse attack beat its robust base? Per task, mode and seed of FILE (default
    leaderboards/quick-robust.json): the defended worst case over every attack against the classifier
    trained alone, undefended, attacked alike (its own attacks, AutoAttack, transfer both ways), on the same
    images; a randomised defense with one draw and with every draw; McNemar p-values, Holm-adjusted over the
    file's verdicts; the two-sided answer in words, and with several seeds whether it holds across them."""
    from ..leaderboard.compare import load_side
    from ..studies.robust_base import markdown

    _print_study(lambda: markdown(load_side(file), file, alpha), fmt)


# `plot` and `curves` draw or print only the named configs of a leaderboard
SELECT_TASKS = click.option(
    "--tasks",
    callback=_csv,
    default=None,
    help="only these task configs, as the leaderboard names them (a sweep point: inpaint@rev=8/255)",
)
SELECT_ATTACKS = click.option(
    "--attacks",
    callback=_csv,
    default=None,
    help="only these attack configs, as the leaderboard names them (a sweep point: pgd10@eps=8/255)",
)


@cli.command()
@click.argument("file")
@SELECT_TASKS
@SELECT_ATTACKS
@STUDY_FORMAT
@_friendly
def curves(file: str, tasks: list[str] | None, attacks: list[str] | None, fmt: str) -> None:
    """The numbers behind `plot --kind eps` and `--kind reverse`, as tables, from a sweep leaderboard FILE
    (`run --attack-eps ... --reverse-eps ...`): accuracy against the attack's eps -- Adv, Adv+Rev of each
    attack and their per-image worst case -- and the reverse attack's gain and clean cost against its eps."""
    from ..leaderboard.compare import load_side
    from ..studies.curves import markdown

    _print_study(lambda: markdown(load_side(file), file, tasks, attacks), fmt)


@cli.command()
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option(
    "--kind",
    type=click.Choice(["eps", "reverse", "pareto", "roc"]),
    required=True,
    help="eps: accuracy vs attack eps; reverse: the reverse attack's gain and clean cost vs its eps; pareto: "
    "clean vs worst-case accuracy with the front; roc: the pretext metric as an attack detector",
)
@click.option(
    "--out", type=click.Path(path_type=Path, dir_okay=False), required=True, help="figure to write (.png or .svg)"
)
@SELECT_TASKS
@SELECT_ATTACKS
@_friendly
def plot(file: Path, kind: str, out: Path, tasks: list[str] | None, attacks: list[str] | None) -> None:
    """Draw a figure from a leaderboard FILE (needs the `plot` extra: pip install 'ssrbench[plot]').

    The figure's caption names the leaderboard, commit, preset and images; its metadata holds the file's
    SHA-256, so a figure can be checked against the leaderboard it claims to show.
    """
    import hashlib

    from ..core.fileio import check_writable, read_regular_file
    from ..leaderboard import store
    from ..studies.plots import plot as draw

    check_writable(out)
    data = read_regular_file(file)  # read once: the figure's SHA-256 is of the bytes it shows
    try:
        draw(
            store.loads(data, str(file)),
            file,
            kind,
            out,
            tasks=tasks,
            attacks=attacks,
            digest=hashlib.sha256(data).hexdigest(),
        )
    except ValueError as exc:
        raise _Fail(f"{file}: {exc}", 2) from exc
    Console(stderr=True).print(text(f"figure written to {out}"))


@cli.command()
@click.argument("files", nargs=-1)
@click.option(
    "--out",
    type=click.Path(path_type=Path, file_okay=False),
    required=True,
    help="folder to write the site into (created if missing; its pages are replaced one by one)",
)
@click.option(
    "--compare",
    "versus",
    nargs=2,
    default=None,
    metavar="OLD NEW",
    help="also a compare page of two leaderboards (files or REV:PATH), judged as `ssrbench compare` does",
)
@click.option(
    "--figures/--no-figures",
    default=True,
    show_default=True,
    help="draw each leaderboard's figures (the `plot` extra; without it the pages say so)",
)
@_friendly
def site(files: tuple[str, ...], out: Path, versus: tuple[str, str] | None, figures: bool) -> None:
    """Write leaderboards as a static site into --out: an index, one page per FILE (a file, REV:PATH, or a
    folder for every *.json under it; default leaderboards/), and with --compare a page of two files.

    The folder opens from file:// -- no server, no network. Each page holds the file's provenance, a sortable,
    filterable table of every cell (the four accuracies with intervals, both effects, its model's worst case and
    verdict against the static base, cost), the verdict, worst-case, randomised-defense, detection, gated and
    cost tables, the figures, and each cell's details. Every number is made by the code that renders `show`.
    """
    from ..core.fileio import check_writable_dir
    from ..studies import site as build_site

    check_writable_dir(out, "--out")
    try:
        left_out = build_site.build(files or ("leaderboards",), out, versus=versus, figures=figures)
    except ValueError as exc:
        raise _Fail(str(exc), 2) from exc
    err = Console(stderr=True)
    missing = [why for why in left_out if "no figures" in why]
    if missing:  # the extra is missing: one line, not one per file
        err.print(text(missing[0].split(": ", 1)[1]))
    elif left_out:
        err.print(text(f"{len(left_out)} figures not drawn where a file has no cells for them (each page says why)"))
    err.print(text(f"site written to {out / 'index.html'} (open it in a browser; it needs no server)"))


@cli.command()
@click.argument("files", nargs=-1, required=True)
@click.option(
    "--out", type=click.Path(path_type=Path, dir_okay=False), required=True, help="merged leaderboard to write"
)
@_friendly
def merge(files: tuple[str, ...], out: Path) -> None:
    """Combine leaderboards of the same configuration run separately (other tasks, other machines)."""
    from ..leaderboard import store
    from ..leaderboard.compare import load_side
    from ..leaderboard.merge import merge as run_merge

    board = run_merge([load_side(f) for f in files], list(files), ["ssrbench", "merge", *files, "--out", str(out)])
    store.save(board, out)
    Console(stderr=True).print(text(f"merged {len(files)} leaderboards ({len(board.cells)} cells) into {out}"))


@cli.command()
@click.argument("task")
@DATA_DIR
@DOWNLOAD
@click.option("--images", "n", type=click.IntRange(1, 64), default=6, show_default=True, help="how many test images")
@click.option("--scale", type=click.IntRange(1, 16), default=4, show_default=True, help="pixel magnification")
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="PNG to write (default <task>-view.png)",
)
@CONFIG_DIRS
@_friendly
def peek(task, data_dir, download, n, scale, out, config_dirs) -> None:
    """Save a picture of what TASK's network sees: each row one test image, then the task's views of it."""
    from torchvision.utils import save_image

    from ..core.fileio import atomic_write, check_writable
    from .preview import first_test_images, preview_grid

    cfg = load_task_config(task, list(config_dirs))
    instance = TASKS.get(cfg.kind)(cfg.params)
    out = out or Path(f"{task}-view.png")
    check_writable(out)
    picture = preview_grid(instance, first_test_images(n, data_dir, download), scale)
    if picture is None:
        raise click.UsageError(f"task {task!r} defines no preview")
    grid, views = picture
    atomic_write(out, lambda fh: save_image(grid, fh, format="png"))  # never half a picture
    Console().print(text(f"wrote {out}: columns = original, " + ", ".join(views)))


@cli.command("check-plugin")
@click.argument("name")
@_friendly
def check_plugin(name: str) -> None:
    """Check that the task or attack kind NAME keeps its contract, on a tiny model (seconds, no data).

    Prints PASS, or FAIL with the broken promise and its reason (exit 1). These are the checks a
    plugin's own tests should run: ssrbench.run.testing.check_task_contract / check_attack_contract.
    """
    import difflib
    import traceback

    import torch

    from ..core.errors import UnknownNameError
    from ..run.testing import check_attack_contract, check_task_contract

    found = [
        (reg, check) for reg, check in ((TASKS, check_task_contract), (ATTACKS, check_attack_contract)) if name in reg
    ]
    if not found:
        for reg in (TASKS, ATTACKS):
            if reg.skipped(name) is not None:
                raise reg.missing(name)  # installed but skipped: say why
        known = sorted(set(TASKS.names()) | set(ATTACKS.names()))
        raise UnknownNameError("task or attack kind", name, known, difflib.get_close_matches(name, known, n=3))
    torch.set_num_threads(1)  # tiny models: threads only cost time on a busy machine
    failed = False
    for reg, check in found:
        origin = reg.origin(name)
        what = f"{reg.kind} {name!r} ({origin.distribution} {origin.version})"
        try:
            check(reg.get(name))
        except AssertionError as exc:
            failed = True
            click.echo(printable(f"FAIL  {what}: {exc}", keep="\n"))
        except Exception as exc:  # noqa: BLE001 - a crash inside the plugin is a broken promise too
            failed = True
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            click.echo(
                printable(f"FAIL  {what}: {type(exc).__name__}: {exc} (at {frame.filename}:{frame.lineno})", keep="\n")
            )
        else:
            click.echo(printable(f"PASS  {what}"))
    if failed:
        raise click.exceptions.Exit(1)


@cli.group()
def zoo() -> None:
    """The zoo: reference weights of every model a committed leaderboard evaluated, shipped with ssrbench.

    `ssrbench run` loads a stage's weights from the zoo when its key -- the hash of everything the weights
    depend on, computed by the current training code -- is an entry, and the file's SHA-256, names, shapes
    and dtypes check out; --no-zoo trains instead.
    """


@zoo.command(name="list")
@ZOO_DIR
@click.option(
    "--stale",
    is_flag=True,
    help="only the stale entries: those the run that trained them, resolved by "
    "the current code, no longer keys the same (never loaded; regenerate them)",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["rich", "markdown"]),
    default="rich",
    show_default=True,
    help="markdown: per committed leaderboard, its entries or why it is not in the zoo (the docs' zoo table)",
)
@_friendly
def zoo_list(zoo_dir, stale, fmt) -> None:
    """List the zoo's entries (key, stage, size, where and how long they trained, the leaderboards that use them,
    stale or current) and the committed leaderboards whose weights it does not hold, with the reason."""
    from rich.table import Table

    from ..leaderboard.render import wide_console
    from ..run.reproduce import entry_status, zoo_markdown
    from ..training.zoo import Zoo

    z = Zoo(zoo_dir)
    manifest = z.manifest()
    if fmt == "markdown":
        click.echo(zoo_markdown(manifest))
        return
    statuses = [entry_status(e, command_spec) for e in manifest.entries]
    shown = [st for st in statuses if st.stale or not stale]
    tbl = Table(
        title=f"zoo {z.root}: {len(manifest.entries)} entries, {manifest.total_bytes / 1e6:.1f} MB"
        + (f" -- {len(shown)} stale" if stale else "")
    )
    for col in ("entry", "stage", "preset", "seed", "MB", "trained on", "min", "leaderboards", "status"):
        tbl.add_column(col)
    for st in shown:
        e, env = st.entry, st.entry.training.environment
        where = " ".join(str(env.get(k)) for k in ("device", "cpu_capability") if env.get(k))
        tbl.add_row(
            text(e.key),
            text(e.stage),
            text(e.preset),
            str(e.seed),
            f"{e.bytes / 1e6:.2f}",
            text(where),
            f"{e.training.seconds / 60:.1f}",
            text(", ".join(e.leaderboards) or "-"),
            text("stale: " + st.why if st.stale else "current", style="red" if st.stale else "green"),
        )
    console = wide_console()
    console.print(tbl)
    if not stale:
        for n in manifest.not_in_zoo:
            console.print(text(f"not in the zoo: {n.leaderboard} -- {n.reason}"))


@zoo.command(name="add")
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path, file_okay=False),
    envvar=CACHE_DIR_ENV,
    default=None,
    show_envvar=True,
    help="the model cache the run that wrote FILE trained into",
)
@ZOO_DIR
@_friendly
def zoo_add(file, cache_dir, zoo_dir) -> None:
    """Put the weights of leaderboard FILE's stages into the zoo, from the model cache its run trained into.

    \b
    The regeneration recipe (a change to training code changes the keys; the zoo then needs new weights):
      ssrbench run ... --no-zoo --cache-dir C --out F     # from a clean checkout: the weights and F
      ssrbench zoo add F --cache-dir C                    # F's weights into zoo/ with their provenance
    A stage whose weights are already an entry only adds FILE (when inside this folder) to the entry's
    leaderboards. FILE's run must be of a clean commit; the zoo's budget is 60 MB.
    """
    from ..leaderboard import store
    from ..run.reproduce import add_to_zoo
    from ..training.cache import ModelCache
    from ..training.zoo import Zoo

    board = store.load(file)
    for line in add_to_zoo(board, file, ModelCache(cache_dir), Zoo(zoo_dir)):
        click.echo(printable(line))


@zoo.command(name="verify")
@click.argument("entry")
@DATA_DIR
@ZOO_DIR
@click.option(
    "--cache-dir",
    type=click.Path(path_type=Path, file_okay=False),
    default=None,
    help="where the stage is trained again (default: a temporary folder, removed after)",
)
@click.option("--device", default="cpu", show_default=True, help="cpu, cuda, cuda:1 ...")
@click.option(
    "--against",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="when the weights differ: the leaderboard whose cells are evaluated again on them and compared "
    "(default: the first committed leaderboard the entry lists, if it is here)",
)
@click.option("--weights-only", is_flag=True, help="when the weights differ, do not evaluate any cells")
@PROGRESS
@_friendly
def zoo_verify(entry, data_dir, zoo_dir, cache_dir, device, against, weights_only, progress) -> None:
    """Train zoo ENTRY (its key, or the key's first 8+ characters) again from scratch -- its recorded command
    under the current code, the stages it starts from taken from the zoo -- and say whether the weights are
    bit-identical (deterministic training on the same kind of CPU). Exit 1 when they are not.

    \b
    Weights that differ are then judged where it matters, on the cells: the leaderboard --against (default:
    the entry's first committed one) is evaluated again with the new weights, every other stage from the
    zoo, and compared with the file as `ssrbench compare` does, seed-aware -- other weights must differ
    by more than seed-to-seed variation, which needs two seeds or more a side; with one the cells using
    the entry say "undecided".
    """
    import tempfile

    from ..core.progress import Reporter
    from ..leaderboard import store
    from ..leaderboard.render import render_comparison
    from ..models.environment import resolve_device
    from ..run.reproduce import verify_cells, verify_entry
    from ..training.zoo import Zoo, ZooError

    z = Zoo(zoo_dir)
    found = [e for e in z.manifest().entries if len(entry) >= 8 and e.key.startswith(entry)]
    if len(found) != 1:
        raise ZooError(
            f"{printable(entry)!s}: {'no' if not found else 'more than one'} zoo entry has that key; "
            f"`ssrbench zoo list` shows them"
        )
    try:
        dev = resolve_device(device)
    except (ValueError, RuntimeError) as exc:
        raise click.BadParameter(str(exc), param_hint="--device") from exc
    console = Console(stderr=True)
    with (
        tempfile.TemporaryDirectory(prefix="ssrbench-verify-") as tmp,
        Reporter(console, mode=progress or "auto") as reporter,
    ):
        e = found[0]
        data = DATASETS.get(e.spec["dataset"])(data_dir, download=False)
        if data.fingerprint != e.spec.get("data_fingerprint"):
            raise ZooError(
                f"zoo entry {e.key}: trained on other data ({str(e.spec.get('data_fingerprint'))[:12]}...) "
                f"than --data-dir holds ({data.fingerprint[:12]}...)"
            )
        if against is None and not weights_only:
            against = next((Path(rel) for rel in e.leaderboards if Path(rel).is_file()), None)
        board = store.load(against) if against is not None and not weights_only else None  # bad file: before training
        root = cache_dir or Path(tmp)
        v = verify_entry(e, command_spec, data, device=dev, zoo=z, cache_root=root, reporter=reporter)
        env = e.training.environment
        click.echo(
            printable(
                f"zoo entry {e.key} ({e.stage}): trained again in {v.seconds / 60:.1f} min -- "
                + (
                    "bit-identical weights"
                    if v.identical
                    else f"other weights: {v.tensors_differ} tensors differ, by at most {v.max_abs_diff:.3g}"
                )
                + f" (the entry was trained on {env.get('device_name', env.get('device'))}"
                + f" {env.get('cpu_capability', '')})"
            )
        )
        if v.identical:
            return
        if board is None:
            click.echo(
                printable(
                    "cells not compared: "
                    + (
                        "--weights-only"
                        if weights_only
                        else "the entry lists no committed leaderboard here; give --against FILE"
                    )
                )
            )
        else:
            _, result = verify_cells(board, against, e, data, device=dev, zoo=z, cache_root=root, reporter=reporter)
            shown = render_comparison(result, "rich")
            if shown is not None:
                click.echo(shown)
            verdicts = Counter(ch.verdict for r in result for ch in r.changes)
            click.echo(
                printable(
                    f"{against} evaluated again on the new weights: {len(result)} cells "
                    f"({sum(r.weights == 'differ' for r in result)} on other weights), metrics "
                    + ", ".join(f"{n} {verdict}" for verdict, n in sorted(verdicts.items()))
                    + (
                        "; 'undecided': one seed a side cannot tell other weights from seed variation (run --seeds 3)"
                        if verdicts.get("undecided")
                        else ""
                    )
                )
            )
    raise click.exceptions.Exit(1)


@zoo.command(name="remove")
@click.argument("keys", nargs=-1)
@click.option("--stale", is_flag=True, help="every stale entry (those `zoo list --stale` shows)")
@ZOO_DIR
@_friendly
def zoo_remove(keys, stale, zoo_dir) -> None:
    """Take entries out of the zoo: KEYS (full keys), or --stale for every entry the current training code no
    longer computes. Their files are deleted after the manifest is rewritten; the committed leaderboards that
    used them are named, to regenerate (`zoo add`) or list with a reason (`zoo missing`)."""
    from ..run.reproduce import entry_status, remove_entries
    from ..training.zoo import Zoo

    if not keys and not stale:
        raise click.UsageError("give the KEYS of the entries to remove, or --stale")
    z = Zoo(zoo_dir)
    chosen = list(keys)  # remove_entries takes a key given twice once
    if stale:
        chosen += [e.key for e in z.manifest().entries if entry_status(e, command_spec).stale]
    if not chosen:
        click.echo("no stale entry: nothing removed")
        return
    for line in remove_entries(z, chosen):
        click.echo(printable(line))


@zoo.command(name="missing")
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option("--reason", required=True, help="why its weights are not in the zoo (shown by `zoo list` and the docs)")
@ZOO_DIR
@_friendly
def zoo_missing(file, reason, zoo_dir) -> None:
    """List committed leaderboard FILE as one whose weights the zoo does not hold, with the reason."""
    from ..run.reproduce import mark_missing
    from ..training.zoo import Zoo

    mark_missing(Zoo(zoo_dir), file, reason)
    click.echo(printable(f"{file}: listed as not in the zoo"))


@cli.command()
@click.argument("file", type=click.Path(path_type=Path, exists=True, dir_okay=False))
@click.option(
    "--images",
    type=click.IntRange(min=1, max=MAX_IMAGES),
    default=None,
    help="only the file's first N images (default: all it evaluated)",
)
@DATA_DIR
@ZOO_DIR
@click.option(
    "--device",
    default="cpu",
    show_default=True,
    help="cpu, cuda, cuda:1 ... (the file's numbers were computed on the device its environment names)",
)
@click.option(
    "--threads",
    type=click.IntRange(min=1, max=MAX_THREADS),
    default=None,
    help="torch CPU threads (default: the file's own, as recorded)",
)
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="also write the re-run's leaderboard here",
)
@click.option("--check", is_flag=True, help="exit 1 unless every image of every cell agrees")
@click.option("--quiet", "-q", is_flag=True, help="only the summary line")
@PROGRESS
@_friendly
def reproduce(file, images, data_dir, zoo_dir, device, threads, out, check, quiet, progress) -> None:
    """Re-run leaderboard FILE's own recorded configuration on the zoo's weights -- nothing trained, nothing
    cached -- and report, per cell, on how many images every accuracy it records (Clean, Clean+Rev, Adv,
    Adv+Rev, every draw, transfer) is the same.

    \b
    Expected: 100% on the CPU kind (or GPU) and thread count the file names; another kind of kernel can round
    an image across a decision boundary, and the count says how many did.
    """
    import torch
    from rich.table import Table

    from ..core.fileio import check_writable
    from ..core.progress import Reporter
    from ..leaderboard import store
    from ..leaderboard.render import wide_console
    from ..models.environment import capture, resolve_device
    from ..run.reproduce import reproduce as run_reproduction
    from ..training.zoo import Zoo

    board = store.load(file)
    if out is not None:
        check_writable(out)
    try:
        dev = resolve_device(device)
    except (ValueError, RuntimeError) as exc:
        raise click.BadParameter(str(exc), param_hint="--device") from exc
    torch.set_num_threads(threads or board.environment.threads)
    console = Console(stderr=True)
    with Reporter(console, mode=progress or ("none" if quiet else "auto")) as reporter:
        data = DATASETS.get(board.dataset.name)(data_dir, download=False)
        result = run_reproduction(board, file, data, device=dev, zoo=Zoo(zoo_dir), reporter=reporter, images=images)
    if out is not None:
        store.save(result.board, out)
    here = capture(dev)
    there = board.environment
    if not quiet:
        tbl = Table(title=f"{file}: per-image agreement with the file, on its zoo weights")
        for col in ("cell", "images", "agree", "differs in"):
            tbl.add_column(col)
        for c in result.cells:
            tbl.add_row(
                text(c.label),
                str(c.n),
                f"{100 * c.agree / c.n:.1f}%" if c.n else "-",
                text(", ".join(c.differing) or "-"),
            )
        wide_console().print(tbl)
    pct = 100 * result.agree / result.total if result.total else 0.0
    summary = (
        f"{file}: {result.agree}/{result.total} cell-images agree ({pct:.2f}%), {len(result.cells)} cells on "
        f"the first {result.board.dataset.eval_images} images; here {here.device_name} {here.cpu_capability or ''}"
        f" {here.threads} threads, the file's {there.device_name} {there.cpu_capability or '(kind not recorded)'}"
        f" {there.threads} threads"
    )
    if result.other_weights:
        summary += (
            f"; the zoo's weights of {', '.join(result.other_weights)} are not the ones the file evaluated "
            f"(trained elsewhere): agreement below 100% is expected there"
        )
    click.echo(printable(summary))
    if check and result.agree != result.total:
        raise click.exceptions.Exit(1)


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
