"""One leaderboard as a documentation page: where it came from, then the tables `show --format markdown` prints.

The docs site builds one such page per committed leaderboard (``scripts/docs_pages.py``), so a page can only say
what its file says: nothing on it is typed by hand.
"""

from __future__ import annotations

import shlex

from ..core.plaintext import md, printable
from . import render
from .schema import Leaderboard


def _code(value: object) -> str:
    """Inline code in a Markdown table cell: printable, on one line, no backtick that could end it."""
    return "`` " + printable(value).replace("`", "'") + " ``"


def provenance_rows(board: Leaderboard) -> list[tuple[str, str]]:
    """What produced the file, as (field, Markdown) rows: command, code, machine, data, time, weights."""
    env = board.environment
    commit = board.git_commit[:10] if board.git_commit else "unknown"
    machine = ", ".join(x for x in (env.device_name or env.device, env.cpu_capability, f"{env.threads} threads") if x)
    zoo = sum(1 for t in board.training if t.zoo_sha256)
    trained = sum(1 for t in board.training if not t.cached and not t.zoo_sha256)
    stages = (
        f"{len(board.training)} stages: {zoo} from the zoo, {trained} trained in the run, "
        f"{len(board.training) - zoo - trained} from the machine's cache"
    )
    seeds = sorted({c.seed for c in board.cells})
    rows = [
        ("command", _code(shlex.join(board.command))),
        (
            "code",
            f"ssrbench {md(board.ssrbench_version)}, commit {_code(commit)}"
            f"{' (uncommitted changes)' if board.git_dirty else ''}",
        ),
        ("created", f"{board.created:%Y-%m-%d %H:%M} UTC"),
        (
            "machine",
            md(f"{machine}; torch {env.torch}, timm {env.timm}")
            + ("; deterministic algorithms" if env.deterministic else ""),
        ),
        (
            "data",
            f"{md(board.dataset.name)}, {board.dataset.eval_images} test images "
            f"({md(board.dataset.eval_selection)}), fingerprint {_code(board.dataset.fingerprint[:16])}",
        ),
        (
            "preset",
            f"{md(board.preset)}; seeds {', '.join(map(str, seeds))}; config hash {_code(board.config_hash[:16])}",
        ),
        ("cells", f"{len(board.cells)}"),
        ("weights", stages),
        ("time", f"{board.seconds_total / 60:.1f} minutes"),
    ]
    if board.merged_from:
        rows.append(("merged from", f"{len(board.merged_from)} files"))
    return rows


def page(board: Leaderboard, path: str, json_link: str | None = None) -> str:
    """The Markdown page of the leaderboard at ``path`` (as the repository names it)."""
    lines = [f"# {md(path)}", ""]
    if json_link:
        lines += [
            f"The file itself: [{md(path.rsplit('/', 1)[-1])}]({json_link}). `ssrbench show {md(path)}` prints "
            "these tables in a terminal; `ssrbench reproduce` re-checks them on the zoo's weights.",
            "",
        ]
    lines += ["| | |", "|---|---|", *(f"| {k} | {v} |" for k, v in provenance_rows(board)), ""]
    tables = render.markdown(board).split("\n", 1)[1]  # without its header comment: the rows above say more
    lines.append(tables.replace("<", "&lt;"))  # a string of the file can open no HTML tag on the page
    return "\n".join(lines).rstrip() + "\n"
