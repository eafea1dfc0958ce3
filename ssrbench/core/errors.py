"""User-facing errors: the CLI turns these into a message and an exit status, never a traceback."""

from __future__ import annotations

import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from pydantic import ValidationError

from .limits import shown


class SSRBenchError(Exception):
    """A problem the user can fix; `exit_code` is what the CLI returns."""

    exit_code = 1


class UnknownNameError(SSRBenchError, KeyError):
    exit_code = 2

    def __init__(self, kind: str, name: str, known: list[str], suggestions: list[str]):
        self.kind, self.name, self.known, self.suggestions = kind, name, known, suggestions
        hint = f" Did you mean {' or '.join(repr(s) for s in suggestions)}?" if suggestions else ""
        listed = ", ".join(known) if known else "none registered"
        super().__init__(f"unknown {kind} {name!r}.{hint} Known: {listed}.")

    def __str__(self) -> str:  # KeyError would otherwise print the repr of the message
        return self.args[0]


class ConfigError(SSRBenchError):
    exit_code = 2


class DataError(SSRBenchError):
    exit_code = 1


class DataFormatError(DataError):
    """The data is there but malformed or unsafe: bad input, like a bad option."""

    exit_code = 2


def first_problem(exc: ValidationError) -> tuple[tuple, str, str]:
    """A pydantic error's first problem as ssrbench's one-line errors show it: its location, its reason, and
    what follows the reason -- the value (shortened) and how many more problems there are."""
    errors = exc.errors()
    err = errors[0] if errors else {"loc": (), "msg": str(exc), "type": "value_error"}
    value = err.get("input")
    got = (
        f" (got {shown(value)})"
        if err["type"] != "value_error" and "input" in err and not isinstance(value, (dict, list))
        else ""
    )
    more = f" (and {len(errors) - 1} more problem{'s' * (len(errors) > 2)})" if len(errors) > 1 else ""
    return tuple(err["loc"]), err["msg"].removeprefix("Value error, "), got + more


def format_validation_error(where: str, exc: ValidationError, prefix: str = "") -> str:
    """A pydantic error as ssrbench shows it, in one line: the file (or object), the first bad field, its
    reason and the value (shortened), and how many more problems there are."""
    loc, msg, rest = first_problem(exc)
    field = ".".join(str(p) for p in (prefix, *loc) if p != "")
    return f"{where}: invalid config: {field or '<root>'}: {msg}{rest}".replace("\n", " ")


class Terminated(KeyboardInterrupt):
    """SIGTERM (a scheduler's or ``kill``'s), raised where the process is, as Ctrl-C is: without a handler Python
    dies at once, skipping every ``finally`` -- a temp file mid-write stayed behind and no message was given."""


TERMINATED = 143  # what shells expect of a process ended by SIGTERM (128 + 15)


def _raise_terminated(_signum, _frame) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # a second SIGTERM ends a cleanup that hangs, as before
    raise Terminated()


@contextmanager
def sigterm_raises() -> Iterator[None]:
    """Within this block SIGTERM raises ``Terminated`` (a KeyboardInterrupt), so cleanup runs -- in the main
    thread, and only where SIGTERM still has Python's default (an embedding program's own handler is kept)."""
    installed = (
        threading.current_thread() is threading.main_thread() and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL
    )
    if installed:
        signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        if installed:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
