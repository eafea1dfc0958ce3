"""Progress on stderr: rich bars on a terminal, plain timestamped lines in a log file, or nothing.

A run's output often goes to a file (CI, ``nohup``, Slurm, Ray jobs, ``make run > run.log 2>&1``), where
rich's live bars show nothing until the end. Plain mode writes one flushed line, with elapsed time and an
ETA, when a bar starts and ends, for every *milestone* (a finished epoch, a model x attack result) and at
most every ``every`` seconds for the rest (per-batch updates), so ``tail -f`` follows a run and a log stays
readable. Call sites use ``bar``/``log`` alike in every mode. A ``sink`` takes the plain lines instead of a
stream: a Ray worker's lines go to the driver, which writes them in its own form.
"""

from __future__ import annotations

import re
import sys
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Literal, TextIO, get_args

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

from .errors import Terminated
from .plaintext import markup, printable, text

ProgressMode = Literal["auto", "rich", "plain", "none"]
PROGRESS_MODES: tuple[str, ...] = get_args(ProgressMode)
PLAIN_EVERY_S = 30.0  # plain mode: at most one line per bar this often, milestones, starts and ends aside

Advance = Callable[..., None]  # advance(n=1, info="", *, milestone=False)
_ANSI = re.compile(r"\x1b(\[[0-?]*[ -/]*[@-~]|\][^\x07\x1b]*(\x07|\x1b\\)|[@-Z\\-_])")


def resolve_mode(mode: ProgressMode, stream: TextIO | None = None) -> Literal["rich", "plain", "none"]:
    """``auto``: rich when ``stream`` (stderr by default) is a terminal, plain lines otherwise."""
    if mode not in PROGRESS_MODES:
        raise ValueError(f"progress mode {mode!r}: choose one of {', '.join(PROGRESS_MODES)}")
    if mode != "auto":
        return mode
    stream = stream if stream is not None else sys.stderr
    try:
        return "rich" if stream.isatty() else "plain"
    except (AttributeError, ValueError):  # no isatty, or a closed stream
        return "plain"


def duration(seconds: float) -> str:
    """``42s``, ``3m07s``, ``1h05m``: short enough for every line."""
    s = max(0, int(round(seconds)))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m{s % 60:02d}s"
    return f"{s // 3600}h{s % 3600 // 60:02d}m"


def plain_text(message: str) -> str:
    """``message`` as a log file should hold it: text (never markup), no ANSI codes, no carriage returns, any
    other control character shown escaped."""
    lines = _ANSI.sub("", message).replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return "\n".join(printable(line) for line in lines)


class Reporter:
    """Progress bars (``bar``) and messages (``log``) in one of three forms: ``rich``, ``plain``, ``none``.

    ``mode`` is the ``--progress`` value as given (``auto`` resolved against ``stream``); ``quiet=True`` is
    ``mode="none"``, for callers that only silence it. Plain lines go to ``stream`` (stderr when None), or,
    unstamped, to ``sink`` (which makes any mode but ``none`` plain: whoever reads the sink decides the
    form); ``clock`` and ``every`` rate-limit them (a fake clock in tests)."""

    def __init__(
        self,
        console: Console | None = None,
        quiet: bool = False,
        *,
        mode: ProgressMode = "auto",
        stream: TextIO | None = None,
        clock: Callable[[], float] = time.monotonic,
        every: float = PLAIN_EVERY_S,
        sink: Callable[[str], None] | None = None,
    ):
        if quiet or mode == "none":
            self.mode = "none"
        elif sink is not None:
            self.mode = "plain"
        elif mode == "auto" and stream is None and console is not None:  # the console knows (force_terminal too)
            self.mode = "rich" if console.is_terminal else "plain"
        else:
            self.mode = resolve_mode(mode, stream)
        self.quiet = self.mode == "none"
        self.console = console or Console(stderr=True)
        self.stream = stream if stream is not None else (console.file if console is not None else None)
        self.clock, self.every, self.sink = clock, every, sink
        self._progress: Progress | None = None

    def __enter__(self) -> Reporter:
        if self.mode == "rich":
            self._progress = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[info]}"),
                TimeElapsedColumn(),
                TimeRemainingColumn(),
                console=self.console,
                transient=False,
            )
            self._progress.__enter__()
        if self.mode != "none":  # a warning (an unreadable cache entry, retrained) is a line of the log like any other
            self._showwarning, warnings.showwarning = warnings.showwarning, self._warning
        return self

    def __exit__(self, *exc) -> None:
        if self.mode != "none":
            warnings.showwarning = self._showwarning
        if self._progress is not None:
            self._progress.__exit__(*exc)
            self._progress = None

    def _warning(self, message, category, filename, lineno, file=None, line=None) -> None:
        """``warnings.showwarning`` while the reporter is open: one line, as text, in the reporter's form."""
        self.log(f"warning: {message}", style="yellow")

    @contextmanager
    def bar(self, description: str, total: int, *, unit: str = "", done: int = 0, info: str = "") -> Iterator[Advance]:
        """Yields ``advance(n=1, info="", *, milestone=False)``. ``done``: work finished before (a resumed
        stage), left out of the ETA; ``unit`` names the counted things in plain lines; ``milestone``: a
        plain line is written whatever the rate limit (rich shows it as the bar's info)."""
        if self.mode == "plain":
            with _PlainBar(self, description, total, unit, done, info) as advance:
                yield advance
            return
        if self._progress is None:
            yield lambda n=1, info="", *, milestone=False: None
            return
        progress = self._progress
        tid = progress.add_task(markup(description), total=total, completed=done, info=markup(info))
        try:
            yield lambda n=1, info="", *, milestone=False: progress.update(tid, advance=n, info=markup(info))
        finally:
            progress.stop_task(tid)

    def log(self, message: str, style: str = "") -> None:
        """Log ``message`` as text in ``style`` (it quotes configs and notes read from files: never markup)."""
        if self.mode == "plain":
            for line in plain_text(message).split("\n"):
                self._write(line)
        elif not self.quiet:
            (self._progress.console if self._progress else self.console).log(text(message, style=style, keep="\n"))

    def _write(self, line: str) -> None:
        """One timestamped plain line, flushed at once (a ``tail -f`` sees it); to the sink, without a stamp."""
        if self.sink is not None:
            self.sink(plain_text(line).replace(chr(10), " "))
            return
        stream = self.stream if self.stream is not None else sys.stderr
        stamp = time.strftime("%Y-%m-%d %H:%M:%S")
        stream.write(f"{stamp} {plain_text(line).replace(chr(10), ' ')}\n")  # descriptions name files' configs: text
        stream.flush()


class _PlainBar:
    """One bar's plain lines: its start, its end (or where it stopped), its milestones, and the rest at
    most every ``reporter.every`` seconds; each with the count, elapsed time and ETA."""

    def __init__(self, reporter: Reporter, description: str, total: int, unit: str, done: int, info: str):
        self.r, self.description, self.total, self.unit = reporter, description, total, unit
        self.done = self.first = done
        self.info = info
        self.t0 = self.last = reporter.clock()
        self.pending = False  # an update not written yet

    def __enter__(self) -> Advance:
        start = (
            f"started at {self._count()}"
            if self.done
            else "started" + (f", {self.total} {self.unit}" if self.unit else "")
        )
        self._line(start + (f", {plain_text(self.info)}" if self.info else ""))
        return self.advance

    def __exit__(self, kind, exc, _tb) -> None:
        elapsed = duration(self.r.clock() - self.t0)
        if kind is None:
            self._line(f"done {self._count()}, took {elapsed}")
        else:
            why = (
                "terminated"
                if issubclass(kind, Terminated)
                else "interrupted"
                if issubclass(kind, KeyboardInterrupt)
                else kind.__name__
            )
            self._line(f"stopped at {self._count()} after {elapsed} ({why})")

    def advance(self, n: int = 1, info: str = "", *, milestone: bool = False) -> None:
        self.done += n
        self.pending = self.pending or bool(n) or info != self.info
        self.info = info
        now = self.r.clock()
        # a finished bar's last update is left to its end line
        due = self.pending and now - self.last >= self.r.every and self.done < self.total
        if milestone or due:
            self._line(
                " | ".join(
                    p
                    for p in (
                        plain_text(info),
                        self._count(),
                        f"elapsed {duration(now - self.t0)}",
                        f"ETA {self._eta(now)}",
                    )
                    if p
                )
            )
            self.last, self.pending = now, False

    def _count(self) -> str:
        return f"{self.done}/{self.total}" + (f" {self.unit}" if self.unit else "")

    def _eta(self, now: float) -> str:
        if self.done >= self.total:
            return "0s"
        if self.done <= self.first or now <= self.t0:  # no rate to go by yet
            return "?"
        rate = (self.done - self.first) / (now - self.t0)
        return duration((self.total - self.done) / rate)

    def _line(self, text: str) -> None:
        self.r._write(f"{self.description}: {text}")
