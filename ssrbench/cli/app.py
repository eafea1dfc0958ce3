"""The ``ssrbench`` Click group, what its commands share (errors as one line, common options), and ``main``."""

from __future__ import annotations

import functools
from pathlib import Path

import click

from ..core.errors import TERMINATED, SSRBenchError, Terminated, sigterm_raises
from ..core.limits import MAX_SEED, MAX_SEEDS, shown
from ..core.plaintext import printable
from ..core.presets import preset_fields
from ..core.progress import PROGRESS_MODES
from ..data.datasets import DATA_DIR_ENV
from ..run.suites import load_suite
from ..training.zoo import ZOO_DIR_ENV
from .types import preset_param_type

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


def main() -> None:
    cli()
