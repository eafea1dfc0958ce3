"""A run's recorded git state: a changed leaderboard (what the run before wrote) leaves the code clean; a changed
source file does not."""

from __future__ import annotations

import subprocess
from pathlib import Path

from ssrbench.models.environment import git_state


def _git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def test_only_code_changes_make_the_tree_dirty(tmp_path):
    repo = tmp_path / "repo"
    (repo / "ssrbench").mkdir(parents=True)
    (repo / "leaderboards").mkdir()
    (repo / "ssrbench" / "a.py").write_text("x = 1\n")
    (repo / "leaderboards" / "b.json").write_text("{}\n")
    (repo / "README.md").write_text("hi\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "c")
    commit, dirty = git_state(repo / "ssrbench")
    assert len(commit) == 40 and dirty is False
    (repo / "leaderboards" / "b.json").write_text('{"cells": []}\n')
    (repo / "README.md").write_text("changed\n")
    assert git_state(repo / "ssrbench") == (commit, False)
    (repo / "ssrbench" / "a.py").write_text("x = 2\n")
    assert git_state(repo / "ssrbench") == (commit, True)
