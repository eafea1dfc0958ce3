"""One form per value (issue: the house): a budget is written by one function and a seed label built in one
place, so a table, a page, a name and a message never disagree on how they show the same value."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from ssrbench.core.budget import format_budget
from ssrbench.core.limits import parse_number
from ssrbench.leaderboard.records import seeded

PACKAGE = Path(__file__).resolve().parents[1] / "ssrbench"


@pytest.mark.parametrize("eps, text", [(8 / 255, "8/255"), (0.5 / 255 * 2, "1/255"), (0.1, "0.1"), (0.0, "0/255")])
def test_a_budget_is_written_as_papers_write_it_and_reads_back(eps, text):
    assert format_budget(eps) == text
    assert parse_number(format_budget(eps)) == pytest.approx(eps, abs=1e-9)


def _sources_matching(pattern: str) -> list[str]:
    rx = re.compile(pattern)
    return sorted(
        f"{p.relative_to(PACKAGE)}:{n}"
        for p in PACKAGE.rglob("*.py")
        for n, line in enumerate(p.read_text(encoding="utf-8").splitlines(), 1)
        if rx.search(line)
    )


def test_only_format_budget_writes_a_budget_over_255():
    """An f-string that ends a number with "/255" anywhere else is a second way of writing a budget."""
    found = _sources_matching(r"\}/255")
    assert len(found) == 1 and found[0].startswith("core/budget.py:"), found


def test_only_seeded_builds_a_seed_label():
    assert seeded("pgd10", 3) == "pgd10 (seed 3)" and seeded("pgd10", 3, shown=False) == "pgd10"
    found = _sources_matching(r"\(seed \{")
    assert len(found) == 1 and found[0].startswith("leaderboard/records.py:"), found
