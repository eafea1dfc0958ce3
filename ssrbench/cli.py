"""The ``ssrbench`` command: run, list, show."""

from __future__ import annotations

import functools
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from .config import list_named, load_attack_config, load_task_config
from .data import DATA_DIR_ENV
from .errors import SSRBenchError
from .presets import DEFAULT_PRESET, PRESETS, Preset
from .registry import ATTACKS, BACKBONES, DATASETS, MODES, TASKS
from .training.cache import CACHE_DIR_ENV


class _Fail(click.ClickException):
    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def _friendly(fn):
    """User errors become one clear message and an exit status, never a traceback."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except SSRBenchError as exc:
            raise _Fail(str(exc), exc.exit_code) from exc
        except OSError as exc:
            raise _Fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "), 1) from exc

    return wrapper


def _csv(_ctx, _param, value: str | None) -> list[str] | None:
    if value is None:
        return None
    items = [v.strip() for v in value.split(",") if v.strip()]
    if not items:
        raise click.BadParameter("give at least one name (comma-separated)")
    if len(set(items)) != len(items):
        raise click.BadParameter(f"a name is repeated in {value!r}")
    return items


def _preset_overrides(fn):
    """One option per preset field (``--epochs-classifier`` ...), so every preset value can be overridden."""
    for name, field in reversed(list(Preset.model_fields.items())):
        if name == "backbone":
            continue
        ann = field.annotation
        typ = {int: click.IntRange(min=1 if name != "train_images" else 1), float: float}.get(ann, None)
        if "epochs" in name:
            typ = click.IntRange(min=0)
        if typ is None:  # Optional[int]
            typ = click.IntRange(min=1)
        fn = click.option(f"--{name.replace('_', '-')}", name, type=typ, default=None,
                          help=f"override the preset: {field.description or name.replace('_', ' ')}")(fn)
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
@click.option("--tasks", callback=_csv, default="inpaint", show_default=True,
              help="comma-separated task configs (`ssrbench list tasks`)")
@click.option("--attacks", callback=_csv, default="fgsm,pgd2", show_default=True,
              help="comma-separated attack configs (`ssrbench list attacks`)")
@click.option("--modes", callback=_csv, default="multitask,classifier-first", show_default=True,
              help="comma-separated training modes")
@click.option("--preset", type=click.Choice(sorted(PRESETS)), default=DEFAULT_PRESET, show_default=True,
              help="run size: smoke (seconds), quick (laptop CPU), full (paper scale, GPU)")
@click.option("--backbone", default=None, help="any timm model name, or an ssrbench backbone (default: the preset's)")
@click.option("--data-dir", type=click.Path(path_type=Path), envvar=DATA_DIR_ENV, default=None, show_envvar=True,
              help="folder containing cifar-10-batches-py (default ~/.cache/ssrbench/data)")
@click.option("--download/--no-download", default=True, show_default=True,
              help="download CIFAR-10 with torchvision when it is not in --data-dir")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="leaderboard file to write (default leaderboards/<preset>.json)")
@click.option("--device", default="auto", show_default=True, help="auto (CUDA when present, else CPU), cpu, cuda, cuda:1 ...")
@click.option("--seed", type=int, default=0, show_default=True, help="seed for initialisation, data order, attacks")
@click.option("--config-dir", "config_dirs", type=click.Path(path_type=Path, exists=True, file_okay=False), multiple=True,
              help="extra folder of named configs (with tasks/ and attacks/ inside, or the TOML files directly); "
                   "searched before the built-in ones; repeatable")
@click.option("--cache-dir", type=click.Path(path_type=Path), envvar=CACHE_DIR_ENV, default=None, show_envvar=True,
              help="trained-model cache (default ~/.cache/ssrbench/models)")
@click.option("--retrain", is_flag=True, help="ignore cached models and train again (the cache is refreshed)")
@click.option("--quiet", "-q", is_flag=True, help="no progress bars or table, only errors")
@_preset_overrides
@_friendly
def run(tasks, attacks, modes, preset, backbone, data_dir, download, out, device, seed, config_dirs, cache_dir,
        retrain, quiet, **overrides) -> None:
    """Train, attack, reverse-attack and evaluate every task x attack x mode cell.

    \b
    Example:
      ssrbench run --tasks inpaint --attacks fgsm,pgd2 --data-dir ../shared/data
    """
    from .data import load_cifar10  # noqa: F401 - heavy imports only when running
    from .environment import resolve_device
    from .fileio import check_writable
    from .leaderboard import render, store
    from .progress import Reporter
    from .runner import resolve, run as run_all
    from .training.cache import ModelCache

    values = {k: v for k, v in overrides.items() if v is not None}
    if backbone:
        values["backbone"] = backbone
    base = PRESETS[preset]
    resolved_preset = Preset(**{**base.model_dump(), **values})
    try:
        dev = resolve_device(device)
    except (ValueError, RuntimeError) as exc:
        raise click.BadParameter(str(exc), param_hint="--device") from exc
    spec = resolve(tasks, attacks, modes, preset, resolved_preset, seed, config_dirs=list(config_dirs))
    out = out or Path("leaderboards") / f"{preset}.json"
    check_writable(out)
    console = Console(stderr=True)
    with Reporter(console, quiet=quiet) as reporter:
        reporter.log(f"loading {spec.dataset}")
        data = DATASETS.get(spec.dataset)(data_dir, download=download)
        board = run_all(spec, data, device=dev, cache=ModelCache(cache_dir), reporter=reporter, retrain=retrain,
                        command=["ssrbench", *sys.argv[1:]] if sys.argv and "ssrbench" in Path(sys.argv[0]).name else None)
    store.save(board, out)
    if not quiet:
        render.render(board)
        console.print(f"leaderboard written to [bold]{out}[/bold]")


@cli.command(name="list")
@click.argument("what", type=click.Choice(["tasks", "attacks", "modes", "backbones", "datasets", "presets"]),
                required=False)
@click.option("--config-dir", "config_dirs", type=click.Path(path_type=Path, exists=True, file_okay=False), multiple=True,
              help="extra folder of named configs, as for `run`")
@_friendly
def list_(what, config_dirs) -> None:
    """List what can be named in `ssrbench run` (everything when WHAT is omitted)."""
    from .leaderboard.render import wide_console

    console = wide_console()
    dirs = list(config_dirs)
    sections = [what] if what else ["tasks", "attacks", "modes", "backbones", "datasets", "presets"]
    for section in sections:
        t = Table(title=section, title_justify="left")
        if section == "tasks":
            for col in ("name", "task", "version", "from", "reverse attack", "config"):
                t.add_column(col)
            named = list_named("tasks", dirs)
            for name in sorted(set(named) | set(TASKS.names())):
                cfg = load_task_config(name, dirs)
                cls, origin = TASKS.get(cfg.task), TASKS.origin(cfg.task)
                r = cfg.reverse
                t.add_row(name, cfg.task, cls.version, f"{origin.distribution} {origin.version}",
                          f"{r.steps} steps, eps {r.eps * 255:.3g}/255, step {r.step_size * 255:.3g}/255",
                          str(named.get(name, "(defaults)")))
        elif section == "attacks":
            for col in ("name", "kind", "params", "description"):
                t.add_column(col)
            for name in sorted(set(list_named("attacks", dirs)) | set(ATTACKS.names())):
                cfg = load_attack_config(name, dirs)
                params = ", ".join(f"{k}={_fmt(v)}" for k, v in cfg.params.items())
                t.add_row(name, cfg.kind, params, cfg.description)
        elif section == "presets":
            t.add_column("option")
            for name in PRESETS:
                t.add_column(name, justify="right")
            for f in Preset.model_fields:
                t.add_row(f"--{f.replace('_', '-')}", *[str(getattr(p, f)) for p in PRESETS.values()])
        else:
            reg = {"modes": MODES, "backbones": BACKBONES, "datasets": DATASETS}[section]
            t.add_column("name")
            t.add_column("from")
            t.add_column("about")
            for name in reg.names():
                obj, origin = reg.get(name), reg.origin(name)
                about = getattr(obj, "description", None) or (obj.__doc__ or "").strip().split("\n")[0]
                t.add_row(name, f"{origin.distribution} {origin.version}", about)
            if section == "backbones":
                t.caption = "any other timm model name works too (adapted to 32x32): see timm.list_models()"
        console.print(t)


def _fmt(v) -> str:
    if isinstance(v, float) and 0 < v < 1:
        return f"{v * 255:.3g}/255"
    return str(v)


@cli.command()
@click.argument("file", type=click.Path(path_type=Path, dir_okay=False))
@_friendly
def show(file: Path) -> None:
    """Render a leaderboard FILE as tables (validated and migrated on load)."""
    from .leaderboard import render, store

    render.render(store.load(file))


def main() -> None:
    cli()


if __name__ == "__main__":
    main()
