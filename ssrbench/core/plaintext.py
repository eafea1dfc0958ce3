"""Strings read from files, printed as the characters they are.

A leaderboard, a config or a plugin's metadata is data: its strings (names, notes, commands, error text)
must reach the terminal as text, never as instructions to it. Control characters -- C0, DEL, C1 (so every
ESC sequence: a title set by OSC, a screen cleared by CSI), bidi overrides and Unicode line separators --
are shown escaped, as Python writes them (``\\x1b``); rich never reads such a string as markup; a Markdown
table cell never breaks its table. Use these where a string from a file is printed.
"""

from __future__ import annotations

import re

from rich.markup import escape
from rich.text import Text

# C0, DEL, C1; bidi embeddings, overrides and isolates and the marks (text that reads backwards on screen);
# the Unicode line and paragraph separators (a line break no one typed)
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")
_SHORT = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}
# what JSON lets through unescaped that a terminal may still act on (JSON escapes C0 itself)
_JSON_UNSAFE = re.compile("[\x7f-\x9f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069\u2028\u2029]")


def _escaped(ch: str) -> str:
    o = ord(ch)
    return _SHORT.get(ch) or (f"\\x{o:02x}" if o < 0x100 else f"\\u{o:04x}")


def printable(value: object, keep: str = "") -> str:
    """``value`` as text that prints as itself: every control character escaped (``\\x1b``), but those in
    ``keep`` (e.g. ``"\\n"`` for a message of several lines)."""
    return _UNSAFE.sub(lambda m: m.group() if m.group() in keep else _escaped(m.group()), str(value))


def text(value: object, style: str = "", keep: str = "") -> Text:
    """``value`` for rich: a ``Text``, so ``[bold]`` or ``[/x]`` in it is shown, not applied (nor a crash)."""
    return Text(printable(value, keep), style=style)


def markup(value: object) -> str:
    """``value`` for a rich API that only takes markup (a progress column's template): printable, brackets escaped."""
    return escape(printable(value))


def md(value: object) -> str:
    """``value`` inside a Markdown line or table cell: printable, on one line, ``|`` escaped."""
    return printable(value).replace("|", "\\|")


def json_text(text: str) -> str:
    """JSON text (any ``json``/pydantic output) made safe to print: the characters JSON leaves raw but a terminal
    may act on (DEL, C1, bidi, line separators) written as ``\\u`` escapes -- the same JSON value."""
    return _JSON_UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
