"""Commands for task and plugin authors: peek (a task's pictures) and check-plugin."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console

from ..adversarial.base import ATTACKS
from ..core.plaintext import printable, text
from ..pretext.base import TASKS
from ..run.config import load_task_config
from .app import (
    CONFIG_DIRS,
    DATA_DIR,
    DOWNLOAD,
    _friendly,
    cli,
)


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
