"""Rewrite every generated block of README.md and docs/ from the committed leaderboards and the zoo.

A block is ``<!-- NAME: ARGS -->`` ... ``<!-- NAME end -->``; its body is ``ssrbench NAME ARGS --format
markdown``, unedited (``tests/test_docs.py`` checks each block against that command). Run from the
repository root:

    python scripts/regenerate_docs.py          # rewrite the pages whose blocks differ
    python scripts/regenerate_docs.py --check  # exit 1 naming the blocks that differ, change nothing
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
# The checkout's ssrbench, not an installed copy that may predate it (its bundled zoo among it).
sys.path.insert(0, str(REPO))
COMMANDS = ("show", "base-findings", "seed-findings", "task-ranking", "curves", "versus-report", "zoo", "run")
BLOCK = re.compile(r"<!-- (" + "|".join(COMMANDS) + r"): ([^>]+?) -->\n(.*?)\n<!-- \1 end -->", re.DOTALL)


def pages(root: Path = REPO) -> list[Path]:
    """Every hand-written page: the README, then docs/ (generated pages exist only in a built site)."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def blocks(text: str) -> Iterator[tuple[str, str, str]]:
    """(command, arguments, body) of each generated block of a page."""
    for m in BLOCK.finditer(text):
        yield m.group(1), m.group(2), m.group(3)


def generated(command: str, args: str) -> str:
    """What the block's command prints now (run from the repository root, as the block's paths are)."""
    from click.testing import CliRunner

    from ssrbench.cli import cli

    res = CliRunner().invoke(cli, [command, *shlex.split(args), "--format", "markdown"], catch_exceptions=False)
    if res.exit_code != 0:
        raise SystemExit(f"ssrbench {command} {args}: exit {res.exit_code}\n{res.output}")
    return res.output.strip()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--check", action="store_true", help="only report the blocks that differ (exit 1 if any)")
    a = ap.parse_args()
    stale = []
    for page in pages(Path.cwd()):
        text = page.read_text(encoding="utf-8")

        def replace(m: re.Match) -> str:
            body = generated(m.group(1), m.group(2))
            if body != m.group(3).strip():
                stale.append(f"{page.relative_to(Path.cwd())}: {m.group(1)}: {m.group(2)}")
            return f"<!-- {m.group(1)}: {m.group(2)} -->\n{body}\n<!-- {m.group(1)} end -->"

        new = BLOCK.sub(replace, text)
        if new != text and not a.check:
            page.write_text(new, encoding="utf-8")
    for s in stale:
        print(f"{'differs' if a.check else 'regenerated'}: {s}")
    if a.check:
        sys.exit(1 if stale else 0)


if __name__ == "__main__":
    main()
