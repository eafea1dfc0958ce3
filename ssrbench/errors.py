"""User-facing errors: the CLI turns these into a message and an exit status, never a traceback."""

from __future__ import annotations

from pydantic import ValidationError


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


def format_validation_error(where: str, exc: ValidationError, prefix: str = "") -> str:
    """A pydantic error as ssrbench shows it: the file (or object), then one line per bad field."""
    lines = [f"{where}: invalid config"]
    for err in exc.errors():
        field = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
        lines.append(f"  {field or '<root>'}: {err['msg']}")
    return "\n".join(lines)
