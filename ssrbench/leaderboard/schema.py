"""The leaderboard file format. ``schema_version`` changes whenever a field changes meaning or shape;
``store.load`` migrates older files and refuses newer ones.

Derived views (the worst case, the sanity warnings) are computed from the cells, never trusted from a
file: they are written for readers of the JSON, and a file whose stored views disagree with its cells
is refused on load.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, PrivateAttr, computed_field, model_validator

from .records import (Accuracy, Cell, Component, DatasetInfo, Detection, Environment, GatedDefense, Pretext,
                      RanOn, Record, TrainingRecord, VersusBase, WorstCase)
from .detection import detection
from .robustness import gated_defense, sanity_warnings, versus_base, worst_case
from .seeds import Aggregate, aggregate

__all__ = ["SCHEMA_VERSION", "Accuracy", "Cell", "Component", "DatasetInfo", "Environment", "Leaderboard",
           "Pretext", "RanOn", "TrainingRecord", "WorstCase"]

SCHEMA_VERSION = 5
DERIVED = ("worst_case", "warnings", "aggregates", "versus_base", "detection", "gated")


class Leaderboard(Record):
    schema_version: Literal[5] = SCHEMA_VERSION
    ssrbench_version: str
    git_commit: str | None
    git_dirty: bool | None
    created: datetime
    command: list[str]
    environment: Environment
    dataset: DatasetInfo
    preset: str
    seed: int
    config: dict[str, Any]
    config_hash: str
    training: list[TrainingRecord]
    cells: list[Cell]
    seconds_total: float
    merged_from: list[dict[str, Any]] = Field(default_factory=list, description="provenance of merged inputs")
    notes: list[str] = Field(default_factory=list, description="what the run adjusted and said so (e.g. a capped value)")
    _source_schema_version: int = PrivateAttr(default=SCHEMA_VERSION)

    @computed_field(description="per (task, mode): an image is robust only if it survives every attack")
    @property
    def worst_case(self) -> list[WorstCase]:
        return worst_case(self.cells)

    @computed_field(description="per (task, mode): the defended worst case against the static base (the classifier "
                                "trained alone, undefended) under the same attacks -- its own, AutoAttack, and "
                                "transfer both ways -- paired, read one draw and every draw, Holm-corrected")
    @property
    def versus_base(self) -> list[VersusBase]:
        return versus_base(self.cells)

    @computed_field(description="per cell with per-image pretext values: the pretext metric as a detector of "
                                "attacked images (AUROC, TPR at 5% FPR, paired bootstrap intervals)")
    @property
    def detection(self) -> list[Detection]:
        return detection(self.cells)

    @computed_field(description="per (task, mode) with a detection gate: the gated reverse attack's clean accuracy "
                                "and worst case beside the ungated one's")
    @property
    def gated(self) -> list[GatedDefense]:
        return gated_defense(self.cells)

    @computed_field(description="sanity checks that fired")
    @property
    def warnings(self) -> list[str]:
        trained = [f"{r.stage} (model {r.key}): {w}" for r in self.training for w in r.warnings]
        return sanity_warnings(self.cells) + list(dict.fromkeys(trained))

    def __eq__(self, other: object) -> bool:
        """Same content; where a file came from (its schema before migration) is not content."""
        return isinstance(other, Leaderboard) and self.model_dump() == other.model_dump()

    __hash__ = None  # type: ignore[assignment]

    @computed_field(description="per cell evaluated under several seeds: mean, sd and a seeds-then-images "
                                "bootstrap interval of each accuracy and of the reverse attack's two effects")
    @property
    def aggregates(self) -> list[Aggregate]:
        return aggregate(self.cells)

    @property
    def seeds(self) -> list[int]:
        return sorted({c.seed for c in self.cells})

    @property
    def source_schema_version(self) -> int:
        """The schema the file was written with, before any migration on load."""
        return self._source_schema_version

    @model_validator(mode="wrap")
    @classmethod
    def _derived_views_match(cls, data: Any, handler) -> "Leaderboard":
        stored = {}
        if isinstance(data, dict):
            data = dict(data)
            stored = {k: data.pop(k) for k in DERIVED if k in data}
        board = handler(data)
        for name, value in stored.items():
            recomputed = board.model_dump(mode="json", include={name})[name]
            if _jsonable(value) != recomputed:
                raise ValueError(f"stored {name} does not match the cells it summarises "
                                 f"(stored {_brief(value)}, recomputed {_brief(recomputed)})")
        return board

    @model_validator(mode="after")
    def _unique_cells(self) -> "Leaderboard":
        seen = set()
        for c in self.cells:
            if c.id in seen:
                raise ValueError(f"duplicate cell {c.id}")
            seen.add(c.id)
        return self


def _jsonable(value: Any) -> Any:
    if isinstance(value, list):
        return [v.model_dump(mode="json") if isinstance(v, Record) else v for v in value]
    return value


def _brief(value: Any) -> str:
    """Enough of a derived view to see the disagreement: the percentages of a worst case, or the text."""
    if isinstance(value, list) and value and all(isinstance(w, dict) and isinstance(w.get("defended"), dict)
                                                 for w in value):
        return ", ".join(f"{w.get('task')}/{w.get('mode')} {w['defended'].get('percent')}%" for w in value)
    return repr(value)[:200]  # any other shape (a doctored file's) as it is
