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


def test_a_sweep_point_carries_its_coordinates_as_data_and_old_files_read_them_from_their_names():
    """A point's place (the config it came from, its eps and steps) is a ``SweepPoint`` on its config and on its
    cells' components; only the migration of schema-6 files, which had nothing else, reads names."""
    from ssrbench.run.config import load_attack_config, load_task_config
    from ssrbench.run.sweep import Grid, expand

    from .helpers import committed

    grid = Grid(attack_eps=(1 / 255, 4 / 255), reverse_eps=(0.0, 8 / 255), attack_steps=(3,))
    tasks, attacks = expand([load_task_config("inpaint")], [load_attack_config("pgd10")], grid)
    assert [(a.point.of, a.point.eps, a.point.steps) for a in attacks] == [("pgd10", 1 / 255, 3), ("pgd10", 4 / 255, 3)]
    assert [a.name for a in attacks] == ["pgd10@eps=1/255,steps=3", "pgd10@eps=4/255,steps=3"]
    assert [(t.point.of, t.point.eps, t.point.steps) for t in tasks] == [
        ("inpaint", 0.0, None),
        ("inpaint", 8 / 255, None),
    ]
    assert all("point" not in c.model_dump() for c in [*tasks, *attacks])  # not in the recorded config: same hash
    board = committed(Path(__file__).resolve().parents[1] / "leaderboards" / "quick-sweep.json")
    assert board.source_schema_version == 6
    for c in board.cells:  # migrated: the coordinates the cell's own threat model and reverse attack record
        assert c.attack.point.eps == pytest.approx(c.threat.eps) and c.attack.point.of in ("pgd10", "bpda-pgd10")
        assert c.task.point.eps == pytest.approx(c.reverse.eps) and c.task.point.of in ("inpaint", "rotation")
    assert not any(c.attack.point or c.task.point for c in committed(board_path("quick.json")).cells)


def board_path(name: str) -> Path:
    return Path(__file__).resolve().parents[1] / "leaderboards" / name


def test_a_config_file_cannot_set_a_sweep_point(tmp_path):
    from ssrbench.core.errors import ConfigError
    from ssrbench.run.config import load_attack_config

    (tmp_path / "attacks").mkdir()
    (tmp_path / "attacks" / "mine.toml").write_text('kind = "pgd"\n[point]\nof = "pgd10"\n', encoding="utf-8")
    with pytest.raises(ConfigError, match="point cannot be set in a config file"):
        load_attack_config("mine", [tmp_path])
