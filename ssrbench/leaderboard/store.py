"""Reading and writing leaderboard files: atomic saves, validated loads, migrations of old versions."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from ..core.errors import SSRBenchError
from ..core.fileio import UnreadableError, atomic_write_text, read_regular_file
from ..core.limits import parse_number
from .schema import SCHEMA_VERSION, Leaderboard, validation_line


class LeaderboardError(SSRBenchError):
    exit_code = 2


V1_PROBE_EPS = 0.25  # how schema 1 told a sanity probe from an attack: by its eps alone


def _dicts(value: Any) -> list[dict[str, Any]]:
    """The objects of a list that should hold objects; a wrong shape is left for validation to report."""
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _v1_to_v2(doc: dict[str, Any]) -> dict[str, Any]:
    """Schema 2 added optional fields (``notes``, a component's ``config_file``), each cell's typed
    ``threat`` model, and checks the stored worst case and warnings against the cells. Version-1 cells
    came from the built-in L-inf attacks: their threat is read off their parameters, as version 1's
    worst case and sanity checks did. A part of the wrong shape is left as it is, for validation to name."""
    doc["schema_version"] = 2
    seed = doc.get("seed", 0)  # version 1 had one seed per file
    for cell in _dicts(doc.get("cells")):
        cell.setdefault("seed", seed)
        attack = cell.get("attack")
        params = attack.get("params") if isinstance(attack, dict) else None
        eps = params.get("eps") if isinstance(params, dict) else None
        if "threat" not in cell and isinstance(eps, (int, float)) and not isinstance(eps, bool):
            try:
                eps = float(eps)
            except OverflowError:  # an integer too large for a float: validation refuses it as it stands
                pass
            cell["threat"] = {
                "norm": "linf",
                "eps": eps,
                "steps": params.get("steps", 1),
                "probe": isinstance(eps, float) and eps >= V1_PROBE_EPS,
            }
    for summary in _dicts(doc.get("worst_case")):
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


def _v5_to_v6(doc: dict[str, Any]) -> dict[str, Any]:
    """Version 6 records which stages' weights came from the zoo (``TrainingRecord.zoo_sha256``); version-5
    files had no zoo, which is what ``None`` says."""
    doc["schema_version"] = 6
    return doc


def _v6_to_v7(doc: dict[str, Any]) -> dict[str, Any]:
    """Version 7 records a sweep point's coordinates as data (``Component.point``); version 6 wrote them only
    into the point's name (``pgd10@eps=4/255,steps=5``, ``inpaint@rev=8/255,rev-steps=3``), which is read
    here, once: the only place a name is parsed for them."""
    doc["schema_version"] = 7
    tags = {"attack": {"eps": "eps", "steps": "steps"}, "task": {"rev": "eps", "rev-steps": "steps"}}
    for cell in _dicts(doc.get("cells")):
        for role, names in tags.items():
            comp = cell.get(role)
            name = comp.get("name") if isinstance(comp, dict) else None
            if not isinstance(name, str) or "@" not in name or "point" in comp:
                continue
            of, _, coordinates = name.partition("@")
            point: dict[str, Any] = {"of": of}
            for item in coordinates.split(","):
                tag, _, value = item.partition("=")
                if tag not in names:
                    break  # not a point ssrbench named: left as a plain name
                try:
                    point[names[tag]] = parse_number(value) if names[tag] == "eps" else int(value)
                except ValueError:
                    break
            else:
                comp["point"] = point
    return doc


# MIGRATIONS[v] turns a version-v document into a version-(v+1) document.
MIGRATIONS: dict[int, Callable[[dict[str, Any]], dict[str, Any]]] = {
    1: _v1_to_v2,
    2: _v2_to_v3,
    3: _v3_to_v4,
    4: _v4_to_v5,
    5: _v5_to_v6,
    6: _v6_to_v7,
}


def migrate(doc: dict[str, Any], where: str = "<document>") -> dict[str, Any]:
    version = doc.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool):
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


MAX_DEPTH = 64  # arrays and objects inside each other; ssrbench writes 6, a hostile file could nest 200,000


def _check_tree(doc: Any, where: str) -> None:
    """Nesting within ``MAX_DEPTH``, and every string (keys too) text that can be printed and written: JSON's
    ``\\ud800`` escapes decode to lone surrogates, which no output encodes. Walked without recursion, so a
    deep file cannot overflow it."""
    stack = [(doc, 1)]
    while stack:
        value, depth = stack.pop()
        if isinstance(value, str):
            try:
                value.encode("utf-8")
            except UnicodeEncodeError as exc:
                raise LeaderboardError(
                    f"{where}: not a leaderboard (a string holds {value[exc.start]!r}, a lone "
                    f"UTF-16 surrogate, which is not text)"
                ) from exc
        elif isinstance(value, (dict, list)):
            if depth > MAX_DEPTH:
                raise LeaderboardError(f"{where}: not a leaderboard (JSON nested deeper than {MAX_DEPTH} levels)")
            items = [*value.keys(), *value.values()] if isinstance(value, dict) else value
            stack.extend((v, depth + 1) for v in items)


def _parse(text: str | bytes, where: str) -> dict[str, Any]:
    """The top-level JSON object of ``text`` (bytes must be UTF-8): every way it can be malformed -- bytes
    that are not text, nesting deeper than Python's recursion, a number past Python's digit limit, strings
    that are not text -- is a LeaderboardError."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise LeaderboardError(
                f"{where}: not a leaderboard (not UTF-8 text: {exc.reason} at byte {exc.start})"
            ) from exc
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        raise LeaderboardError(f"{where}: not JSON ({exc})") from exc
    except RecursionError as exc:
        raise LeaderboardError(f"{where}: not a leaderboard (JSON nested deeper than {MAX_DEPTH} levels)") from exc
    except ValueError as exc:  # Python's limit on the digits of an integer
        raise LeaderboardError(
            f"{where}: not a leaderboard (a number of more than {sys.get_int_max_str_digits()} digits)"
        ) from exc
    if not isinstance(doc, dict):
        raise LeaderboardError(f"{where}: expected a JSON object at the top level")
    _check_tree(doc, where)
    return doc


def loads(text: str | bytes, where: str = "<string>") -> Leaderboard:
    doc = _parse(text, where)
    written_with = doc.get("schema_version")
    doc = migrate(doc, where)
    try:
        board = Leaderboard.model_validate(doc, context={"schema_version": written_with})
    except ValidationError as exc:
        raise LeaderboardError(validation_line(where, doc, exc)) from exc
    if "versus_base" not in doc:  # not checked against a stored copy: computed once here, where it can refuse
        _view(lambda: board.versus_base, where)
    board._source_schema_version = written_with
    return board


def _view(compute: Callable[[], Any], where: str) -> Any:
    """A derived view (or a dump holding them) that cannot be computed -- cells judged against two static
    bases, say (``robustness.versus_base``) -- is a LeaderboardError naming the file, not a traceback."""
    try:
        return compute()
    except ValueError as exc:  # pydantic wraps a view's error: "Error serializing to JSON: ValueError: why"
        why = str(exc).removeprefix("Error serializing to JSON: ").removeprefix("ValueError: ")
        raise LeaderboardError(f"{where}: not a valid leaderboard: {why}") from exc


def load(path: Path | str) -> Leaderboard:
    """A leaderboard file: a regular file, at most ``fileio.MAX_READ_BYTES``, validated and migrated."""
    try:
        data = read_regular_file(path)
    except UnreadableError as exc:
        raise LeaderboardError(str(exc)) from exc
    return loads(data, str(path))


def dumps(board: Leaderboard, where: str = "<leaderboard>") -> str:
    return _view(lambda: board.model_dump_json(indent=1), where) + "\n"


def save(board: Leaderboard, path: Path | str) -> None:
    """Write atomically, and only what ``load`` will accept: a broken board never replaces a good file."""
    text = dumps(board, f"refusing to write {path}")
    try:
        loads(text, str(path))
    except LeaderboardError as exc:
        raise LeaderboardError(f"refusing to write {path}; the leaderboard would not load back: {exc}") from exc
    atomic_write_text(path, text)
