"""Reading and writing leaderboard files: atomic saves, validated loads, migrations of old versions."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from pydantic import ValidationError

from ..errors import SSRBenchError
from ..fileio import atomic_write_text
from .schema import SCHEMA_VERSION, Leaderboard, validation_line


class LeaderboardError(SSRBenchError):
    exit_code = 2


V1_PROBE_EPS = 0.25  # how schema 1 told a sanity probe from an attack: by its eps alone


def _v1_to_v2(doc: dict[str, Any]) -> dict[str, Any]:
    """Schema 2 added optional fields (``notes``, a component's ``config_file``), each cell's typed
    ``threat`` model, and checks the stored worst case and warnings against the cells. Version-1 cells
    came from the built-in L-inf attacks: their threat is read off their parameters, as version 1's
    worst case and sanity checks did."""
    doc["schema_version"] = 2
    seed = doc.get("seed", 0)  # version 1 had one seed per file
    for cell in doc.get("cells", []):
        cell.setdefault("seed", seed)
        params = (cell.get("attack") or {}).get("params") or {}
        if "threat" not in cell and isinstance(params.get("eps"), (int, float)):
            eps = float(params["eps"])
            cell["threat"] = {"norm": "linf", "eps": eps, "steps": int(params.get("steps", 1)),
                              "probe": eps >= V1_PROBE_EPS}
    for summary in doc.get("worst_case", []):
        summary.setdefault("seed", seed)
    doc.pop("warnings", None)  # version 2's checks read the threat model: recomputed, not compared
    return doc


def _v2_to_v3(doc: dict[str, Any]) -> dict[str, Any]:
    """Version 3 adds a randomised defense's three evaluations (``Cell.randomized``); version-2 defenses were
    deterministic or evaluated with one draw, which is what ``randomized = None`` says."""
    doc["schema_version"] = 3
    return doc


def _v3_to_v4(doc: dict[str, Any]) -> dict[str, Any]:
    """Version 4 records where each unit of work ran (``ran_on`` of cells and training stages, for runs
    spread over a cluster); version-3 files did not say, which is what ``ran_on = None`` says."""
    doc["schema_version"] = 4
    return doc


def _v4_to_v5(doc: dict[str, Any]) -> dict[str, Any]:
    """Version 5 judges a defense against its base symmetrically (``Cell.transfer``, ``base_weights_sha256``;
    a two-sided, Holm-corrected ``versus_base``), records whether a detection gate can fire
    (``Gate.calibration_flagged``) and warns about gates that cannot. Version-4 cells carry no transfer,
    which is what ``None`` says; the views whose shape or rules changed are recomputed, not compared."""
    doc["schema_version"] = 5
    for view in ("versus_base", "gated", "warnings"):
        doc.pop(view, None)
    return doc


# MIGRATIONS[v] turns a version-v document into a version-(v+1) document.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {1: _v1_to_v2, 2: _v2_to_v3, 3: _v3_to_v4,
                                                                   4: _v4_to_v5}


def migrate(doc: dict[str, Any], where: str = "<document>") -> dict[str, Any]:
    version = doc.get("schema_version")
    if not isinstance(version, int):
        raise LeaderboardError(f"{where}: missing or non-integer 'schema_version'; is this an ssrbench leaderboard?")
    if version > SCHEMA_VERSION:
        raise LeaderboardError(
            f"{where}: schema_version {version} is newer than this ssrbench understands ({SCHEMA_VERSION}); "
            f"upgrade ssrbench to read it"
        )
    while version < SCHEMA_VERSION:
        if version not in MIGRATIONS:
            raise LeaderboardError(f"{where}: no migration from schema_version {version}")
        doc = MIGRATIONS[version](dict(doc))
        version = doc["schema_version"]
    return doc


def loads(text: str, where: str = "<string>") -> Leaderboard:
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LeaderboardError(f"{where}: not JSON ({exc})") from exc
    if not isinstance(doc, dict):
        raise LeaderboardError(f"{where}: expected a JSON object at the top level")
    written_with = doc.get("schema_version")
    doc = migrate(doc, where)
    try:
        board = Leaderboard.model_validate(doc, context={"schema_version": written_with})
    except ValidationError as exc:
        raise LeaderboardError(validation_line(where, doc, exc)) from exc
    board._source_schema_version = written_with
    return board


def load(path: Path | str) -> Leaderboard:
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise LeaderboardError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    return loads(text, str(path))


def dumps(board: Leaderboard) -> str:
    return board.model_dump_json(indent=1) + "\n"


def save(board: Leaderboard, path: Path | str) -> None:
    """Write atomically, and only what ``load`` will accept: a broken board never replaces a good file."""
    text = dumps(board)
    try:
        loads(text, str(path))
    except LeaderboardError as exc:
        raise LeaderboardError(f"refusing to write {path}; the leaderboard would not load back: {exc}") from exc
    atomic_write_text(path, text)
