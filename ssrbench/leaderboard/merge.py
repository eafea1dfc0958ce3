"""Combine leaderboards of one configuration produced separately (other tasks, other machines)."""

from __future__ import annotations

import os
from datetime import UTC, datetime

from pydantic import ValidationError

from ..core.hashing import config_hash
from .records import seeded
from .schema import Leaderboard, validation_line
from .store import LeaderboardError

# what must agree for cells from different files to sit in one table
_SAME = {
    "data fingerprint": lambda b: b.dataset.fingerprint,
    "evaluated images": lambda b: (b.dataset.eval_images, b.dataset.eval_selection),
    "preset": lambda b: b.preset,
    "preset values": lambda b: b.config.get("preset"),
    "dataset": lambda b: b.config.get("dataset"),
}


def _same_input(name: str) -> str:
    """What makes two names one input: the file a path resolves to (links followed), else the name (REV:PATH)."""
    try:
        return os.path.realpath(name) if os.path.exists(name) else name
    except (OSError, ValueError):
        return name


def merge(boards: list[Leaderboard], names: list[str], command: list[str]) -> Leaderboard:
    """One leaderboard of ``boards`` (read from ``names``). Every cell must come from exactly one of them: a
    cell in two inputs (one file given twice, a part merged into a file that already holds it) is refused,
    since it would be counted twice in the merged totals and provenance."""
    if len(boards) < 2:
        raise LeaderboardError("merge needs at least two leaderboards")
    seen: dict[str, str] = {}
    for name in names:
        if (key := _same_input(name)) in seen:
            raise LeaderboardError(
                f"cannot merge {seen[key]} and {name}: the same file given twice; give each part once"
            )
        seen[key] = name
    for b, name in zip(boards, names):
        if b.cascades:  # a cascade's worst case is over its own attacks: pieces of two would be neither's
            raise LeaderboardError(
                f"cannot merge {name}: it holds a cascade (run --cascade), whose worst case is over its own "
                f"attacks; compare or show cascade files one at a time"
            )
    first = boards[0]
    for what, get in _SAME.items():
        for b, name in zip(boards[1:], names[1:]):
            if get(b) != get(first):
                raise LeaderboardError(
                    f"cannot merge {names[0]} and {name}: {what} differs ({get(first)!r} vs {get(b)!r})"
                )
    cells, owner = {}, {}
    for b, name in zip(boards, names):
        for c in b.cells:  # a cell is its id: task, attack, mode, backbone, dataset, preset and seed
            if c.id in cells:
                same = cells[c.id].model_dump(exclude={"seconds"}) == c.model_dump(exclude={"seconds"})
                raise LeaderboardError(
                    f"cannot merge {owner[c.id]} and {name}: both hold the cell "
                    f"{seeded('/'.join(map(str, c.id[:3])), c.seed)}{' with different results' if not same else ''}; "
                    f"each cell must come from one part only"
                )
            cells[c.id], owner[c.id] = c, name
    training = {}
    for b in boards:
        for r in b.training:
            training.setdefault((r.stage, r.key), r)
    config = dict(first.config)
    for field in ("tasks", "attacks", "modes"):
        seen, merged = set(), []
        for b in boards:
            for item in b.config.get(field, []):
                key = item["name"] if isinstance(item, dict) else item
                if key not in seen:
                    seen.add(key)
                    merged.append(item)
        config[field] = merged
    board = _build(
        names,
        ssrbench_version=first.ssrbench_version,
        git_commit=first.git_commit,
        git_dirty=first.git_dirty,
        created=datetime.now(UTC),
        command=command,
        environment=first.environment,
        dataset=first.dataset,
        preset=first.preset,
        seed=min(b.seed for b in boards),
        config=config,
        config_hash=config_hash(config),
        training=list(training.values()),
        cells=list(cells.values()),
        seconds_total=sum(b.seconds_total for b in boards),
        notes=list(dict.fromkeys(n for b in boards for n in b.notes)),
        merged_from=[
            {
                "file": n,
                "command": b.command,
                "git_commit": b.git_commit,
                "created": b.created.isoformat(),
                "config_hash": b.config_hash,
                "device": b.environment.device_name,
            }
            for b, n in zip(boards, names)
        ],
    )  # parts judged against different static bases cannot share a verdict: store.save refuses to write it
    return board


def _build(names: list[str], **fields) -> Leaderboard:
    """The merged board, or one line saying why its parts cannot be one file (e.g. one model whose Clean
    differs between the parts: the same images through the same model)."""
    try:
        return Leaderboard(**fields)
    except ValidationError as exc:
        doc = {"cells": [c.model_dump(mode="json") for c in fields["cells"]], "seed": fields["seed"]}
        raise LeaderboardError(f"cannot merge {', '.join(names)}: {validation_line('merged', doc, exc)}") from exc
