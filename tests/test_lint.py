"""The tree passes ruff -- lint and format, as configured under ``[tool.ruff]`` in pyproject.toml -- and
``make test`` checks it before the suite, so a change that breaks either fails here and in CI."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _ruff(*args: str) -> subprocess.CompletedProcess:
    pytest.importorskip("ruff", reason="ruff is in the test extra: pip install '.[test]'")
    return subprocess.run(
        [sys.executable, "-m", "ruff", *args], cwd=REPO, capture_output=True, text=True, timeout=120, check=False
    )


def test_the_tree_passes_ruff_check():
    res = _ruff("check", "--quiet", "--no-cache", ".")
    assert res.returncode == 0, res.stdout + res.stderr


def test_the_tree_is_ruff_formatted():
    res = _ruff("format", "--check", "--quiet", "--no-cache", ".")
    assert res.returncode == 0, f"not formatted (make format fixes it):\n{res.stdout}{res.stderr}"


def test_ruff_is_configured_and_make_test_runs_it_first():
    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["ruff"]
    assert config["line-length"] == 120 and {"E", "F", "I", "B", "UP"} <= set(config["lint"]["select"])
    makefile = (REPO / "Makefile").read_text(encoding="utf-8")
    recipe = re.search(r"^test: .*\n((?:\t.*\n)+)", makefile, re.MULTILINE).group(1).splitlines()
    assert "ruff check" in recipe[0] and "ruff format --check" in recipe[0], recipe
    assert "pytest" in recipe[-1], recipe


def test_ruff_fails_on_a_violation(tmp_path):
    """The check can fail: an unused import and an unformatted line in a copy of the configuration."""
    (tmp_path / "pyproject.toml").write_text((REPO / "pyproject.toml").read_text(encoding="utf-8"), encoding="utf-8")
    (tmp_path / "bad.py").write_text("import os\nx = ( 1,2 )\n", encoding="utf-8")
    pytest.importorskip("ruff")
    run = lambda *a: subprocess.run(  # noqa: E731
        [sys.executable, "-m", "ruff", *a, "--no-cache", "."], cwd=tmp_path, capture_output=True, text=True, check=False
    )
    assert "F401" in run("check").stdout
    assert run("format", "--check").returncode == 1
