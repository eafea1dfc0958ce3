"""Progress bars for long work (rich), or nothing with --quiet."""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .plaintext import markup, text


class Reporter:
    def __init__(self, console: Console | None = None, quiet: bool = False):
        self.console = console or Console(stderr=True)
        self.quiet = quiet
        self._progress: Progress | None = None

    def __enter__(self) -> "Reporter":
        if not self.quiet:
            self._progress = Progress(
                TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"), TimeElapsedColumn(), TimeRemainingColumn(),
                console=self.console, transient=False,
            )
            self._progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self._progress is not None:
            self._progress.__exit__(*exc)
            self._progress = None

    @contextmanager
    def bar(self, description: str, total: int) -> Iterator[Callable[..., None]]:
        """Yields ``advance(n=1, info="")``. ``description`` and ``info`` are text (they name configs read from
        files): the columns' markup templates get them escaped."""
        if self._progress is None:
            yield lambda n=1, info="": None
            return
        tid = self._progress.add_task(markup(description), total=total, info="")
        try:
            yield lambda n=1, info="": self._progress.update(tid, advance=n, info=markup(info))
        finally:
            self._progress.stop_task(tid)

    def log(self, message: str, style: str = "") -> None:
        """Log ``message`` as text in ``style`` (it quotes configs and notes read from files: never markup)."""
        if not self.quiet:
            (self._progress.console if self._progress else self.console).log(text(message, style=style, keep="\n"))
