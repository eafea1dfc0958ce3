"""Rewrite every generated block of README.md from the committed leaderboards.

A block is ``<!-- NAME: ARGS -->`` ... ``<!-- NAME end -->``; its body is ``ssrbench NAME ARGS --format
markdown``, unedited (the tests check each block against that command). Run from the repository root:

    python scripts/regenerate_readme.py          # rewrite README.md
    python scripts/regenerate_readme.py --check  # exit 1 naming the blocks that differ, change nothing
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from pathlib import Path

from click.testing import CliRunner

from ssrbench.cli import cli

COMMANDS = ("show", "base-findings", "seed-findings", "task-ranking", "curves", "versus-report", "zoo")
BLOCK = re.compile(r"<!-- (" + "|".join(COMMANDS) + r"): ([^>]+?) -->\n(.*?)\n<!-- \1 end -->", re.DOTALL)


def generated(command: str, args: str) -> str:
    res = CliRunner().invoke(cli, [command, *shlex.split(args), "--format", "markdown"], catch_exceptions=False)
    if res.exit_code != 0:
        raise SystemExit(f"ssrbench {command} {args}: exit {res.exit_code}\n{res.output}")
    return res.output.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="only report the blocks that differ (exit 1 if any)")
    ap.add_argument("--readme", type=Path, default=Path("README.md"))
    a = ap.parse_args()
    text = a.readme.read_text(encoding="utf-8")
    stale = []

    def replace(m: re.Match) -> str:
        body = generated(m.group(1), m.group(2))
        if body != m.group(3).strip():
            stale.append(f"{m.group(1)}: {m.group(2)}")
        return f"<!-- {m.group(1)}: {m.group(2)} -->\n{body}\n<!-- {m.group(1)} end -->"

    new = BLOCK.sub(replace, text)
    for s in stale:
        print(f"{'differs' if a.check else 'regenerated'}: {s}")
    if a.check:
        sys.exit(1 if stale else 0)
    if new != text:
        a.readme.write_text(new, encoding="utf-8")


if __name__ == "__main__":
    main()
