"""Leaderboards across commits: matching, paired significance, not-comparable reasons, git, merge."""

import json
import subprocess

import numpy as np
import pytest
from click.testing import CliRunner

from ssrbench.cli import cli
from ssrbench.core.stats import mcnemar_exact
from ssrbench.leaderboard import store
from ssrbench.leaderboard.compare import compare, load_side
from ssrbench.leaderboard.merge import merge
from ssrbench.leaderboard.schema import Accuracy

from .conftest import consistent_board
from .helpers import FIXTURE


def _board():
    """The fixture, its models marked as one set of trained weights (so a change is the evaluation's)."""
    board = store.load(FIXTURE)
    return board.model_copy(
        update={"cells": [c.model_copy(update={"weights_sha256": f"{i:064x}"}) for i, c in enumerate(board.cells)]}
    )


def _set(cell, metric, flags):
    return cell.model_copy(update={metric: Accuracy.from_flags(np.asarray(flags, bool))})


def _with_cell(board, i, cell):
    cells = list(board.cells)
    cells[i] = cell
    return board.model_copy(update={"cells": cells})


def test_mcnemar_known_answers():
    a = np.array([True] * 10 + [False] * 10)
    assert mcnemar_exact(a, a) == (0, 0, 1.0)
    lost, gained, p = mcnemar_exact(a, ~a)  # 10 lost, 10 gained: no evidence either way
    assert (lost, gained) == (10, 10) and p == pytest.approx(1.0)
    b = a.copy()
    b[:6] = False  # 6 lost, 0 gained: p = 2 * 0.5**6
    assert mcnemar_exact(a, b)[2] == pytest.approx(2 * 0.5**6)
    with pytest.raises(ValueError, match="same images"):
        mcnemar_exact(a, a[:5])


def _big(n_images=400):
    """The fixture with every cell widened to n images (all wrong), so tests can build known changes."""
    board = _board()
    cells = [
        c.model_copy(
            update={m: Accuracy.from_flags(np.zeros(n_images, bool)) for m in ("clean", "clean_rev", "adv", "adv_rev")}
        )
        for c in board.cells
    ]
    return consistent_board(board, cells)


def test_identical_boards_are_unchanged_everywhere():
    res = compare(_board(), _board())
    assert all(r.status == "compared" for r in res) and len(res) == len(_board().cells)
    assert all(ch.verdict == "unchanged" for r in res for ch in r.changes)


def test_change_needs_threshold_and_significance():
    old = _big()
    flags = np.zeros(400, bool)
    flags[:40] = True  # +10 points, 40 gained, 0 lost: significant
    new = _with_cell(old, 0, _set(old.cells[0], "adv_rev", flags))
    small = np.zeros(400, bool)
    small[:2] = True  # +0.5 points: below the 1-point threshold
    new = _with_cell(new, 1, _set(new.cells[1], "adv_rev", small))
    res = {r.key: r for r in compare(old, new, threshold=1.0)}
    first = {c.metric: c for c in res[old.cells[0].group].changes}
    assert first["adv_rev"].verdict == "better" and first["adv_rev"].gained == 40
    assert first["clean"].verdict == "unchanged"
    assert {c.metric: c for c in res[old.cells[1].group].changes}["adv_rev"].verdict == "unchanged"
    # the same +10 points on too few images is not significant: 3 of 16 flips, p = 0.25
    tiny_old = _board()
    f = np.zeros(tiny_old.cells[0].adv.n, bool)
    f[:3] = True
    tiny_old = _with_cell(tiny_old, 0, _set(tiny_old.cells[0], "adv", np.zeros_like(f)))
    tiny_new = _with_cell(tiny_old, 0, _set(tiny_old.cells[0], "adv", f))
    ch = {c.metric: c for c in compare(tiny_old, tiny_new)[0].changes}["adv"]
    assert ch.delta > 10 and ch.p_value == pytest.approx(0.25) and ch.verdict == "unchanged"


@pytest.mark.parametrize(
    "edit,reason",
    [
        (
            lambda b: b.model_copy(update={"dataset": b.dataset.model_copy(update={"fingerprint": "0" * 64})}),
            "data fingerprint",
        ),
        (
            lambda b: _with_cell(
                b,
                0,
                b.cells[0].model_copy(
                    update={
                        "attack": b.cells[0].attack.model_copy(
                            update={"params": {**b.cells[0].attack.params, "eps": 0.01}}
                        )
                    }
                ),
            ),
            "attack config",
        ),
        (
            lambda b: _with_cell(
                b, 0, b.cells[0].model_copy(update={"task": b.cells[0].task.model_copy(update={"version": "9"})})
            ),
            "task version",
        ),
        (
            lambda b: _with_cell(
                b, 0, b.cells[0].model_copy(update={"reverse": b.cells[0].reverse.model_copy(update={"steps": 3})})
            ),
            "reverse",
        ),
    ],
)
def test_not_comparable_reasons(edit, reason):
    res = compare(_board(), edit(_board()))
    assert res[0].status == "not comparable" and any(reason in r for r in res[0].reasons)
    assert res[0].changes == []  # never diffed


def test_image_differences_are_not_comparable_but_migrated_schemas_are():
    other = _big(400)
    res = compare(_board(), other)
    assert all(r.status == "not comparable" and any("evaluated images" in x for x in r.reasons) for r in res)
    old = _board()
    old._source_schema_version = 0  # migrated on load: the same fields with the same meaning as the new side
    assert compare(old, _board())[0].status == "compared"


def test_unmatched_cells_are_listed():
    b = _board()
    fewer = b.model_copy(update={"cells": b.cells[1:]})
    statuses = {r.key: r.status for r in compare(b, fewer)}
    assert statuses[b.cells[0].group] == "only old"


def test_git_revision_form_and_ci_exit_code(tmp_path, monkeypatch):
    repo = tmp_path / "repo"
    repo.mkdir()
    git = lambda *a: subprocess.run(["git", *a], cwd=repo, check=True, capture_output=True)  # noqa: E731
    git("init", "-q")
    git("config", "user.email", "t@example.com")
    git("config", "user.name", "t")
    path = repo / "leaderboards" / "x.json"
    path.parent.mkdir()
    old = _big()
    store.save(old, path)
    git("add", ".")
    git("commit", "-qm", "old")
    worse = _with_cell(old, 0, _set(old.cells[0], "clean", np.zeros(400, bool)))
    flags = np.zeros(400, bool)
    flags[:100] = True
    better_first = _with_cell(old, 0, _set(old.cells[0], "clean", flags))
    store.save(better_first, path)
    git("commit", "-qam", "better")
    store.save(worse, path)  # working tree: back to all wrong = a regression against HEAD

    assert load_side("HEAD~1:leaderboards/x.json", repo) == old
    runner = CliRunner()
    monkeypatch.chdir(repo)
    ok = runner.invoke(
        cli, ["compare", "HEAD~1:leaderboards/x.json", "HEAD:leaderboards/x.json", "--fail-on-regression"]
    )
    assert ok.exit_code == 0, ok.output
    bad = runner.invoke(cli, ["compare", "HEAD:leaderboards/x.json", "leaderboards/x.json", "--fail-on-regression"])
    assert bad.exit_code == 1 and "regressed" in bad.output
    js = runner.invoke(cli, ["compare", "HEAD:leaderboards/x.json", "leaderboards/x.json", "--format", "json"])
    rows = json.loads(js.output)
    assert rows[0]["clean"]["verdict"] == "worse" and rows[0]["clean"]["lost"] == 100
    md = runner.invoke(cli, ["compare", "HEAD:leaderboards/x.json", "leaderboards/x.json", "--format", "markdown"])
    assert md.output.startswith("| task | attack |") and "**worse**" in md.output
    missing = runner.invoke(cli, ["compare", "HEAD~9:leaderboards/x.json", "leaderboards/x.json"])
    assert missing.exit_code == 2 and "git cannot read" in missing.output


def test_merge_combines_and_refuses(tmp_path):
    b = _board()
    mt = b.model_copy(update={"cells": [c for c in b.cells if c.mode == "multitask"]})
    cf = b.model_copy(update={"cells": [c for c in b.cells if c.mode == "classifier-first"]})
    merged = merge([mt, cf], ["mt.json", "cf.json"], ["ssrbench", "merge"])
    assert {c.id for c in merged.cells} == {c.id for c in b.cells}
    assert [m["file"] for m in merged.merged_from] == ["mt.json", "cf.json"]
    assert compare(b, merged)[0].status == "compared"
    # another seed's run merges beside it: its cells are other cells (seeds are part of a cell's identity)
    seed7 = b.model_copy(update={"seed": 7, "cells": [c.model_copy(update={"seed": 7}) for c in b.cells]})
    both = merge([b, seed7], ["s0", "s7"], [])
    assert both.seeds == [0, 7] and len(both.cells) == 2 * len(b.cells) and both.seed == 0
    clash = _with_cell(b, 0, _set(b.cells[0], "adv", ~b.cells[0].adv.flags()))
    with pytest.raises(Exception, match="different results"):
        merge([b, clash], ["a", "b"], [])
    # through the CLI, with the result written and re-read
    store.save(mt, tmp_path / "mt.json")
    store.save(cf, tmp_path / "cf.json")
    res = CliRunner().invoke(
        cli, ["merge", str(tmp_path / "mt.json"), str(tmp_path / "cf.json"), "--out", str(tmp_path / "m.json")]
    )
    assert res.exit_code == 0, res.output
    assert len(store.load(tmp_path / "m.json").cells) == len(b.cells)


def test_migration_of_an_older_schema(monkeypatch):
    """The migration path: a file one version older is upgraded on load and remembers where it came from."""
    from ssrbench.leaderboard import schema
    from ssrbench.leaderboard import store as st

    doc = json.loads(FIXTURE.read_text())
    doc["schema_version"] = 0
    doc["old_field"] = "dropped by the migration"

    def v0_to_v1(d):
        d.pop("old_field")
        d["schema_version"] = 1
        return d

    monkeypatch.setitem(st.MIGRATIONS, 0, v0_to_v1)
    board = st.loads(json.dumps(doc), "old.json")
    assert board.source_schema_version == 0 and board.schema_version == schema.SCHEMA_VERSION
    monkeypatch.delitem(st.MIGRATIONS, 0)
    with pytest.raises(st.LeaderboardError, match="no migration from schema_version 0"):
        st.loads(json.dumps(doc), "old.json")
