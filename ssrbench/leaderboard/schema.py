"""The leaderboard file format. ``schema_version`` changes whenever a field changes meaning or shape;
``store.load`` migrates older files and refuses newer ones.

Derived views (the worst case, the sanity warnings) are computed from the cells, never trusted from a
file: they are written for readers of the JSON, and a file whose stored views disagree with its cells
is refused on load. So is one whose other stored values disagree with what they can be checked against:
its config with config_hash, its cells with its config, preset and images, a model's cells with each other.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import Field, PrivateAttr, ValidationError, computed_field, field_validator, model_validator

from ..core.errors import first_problem
from ..core.hashing import config_hash
from .detection import detection
from .records import (
    Accuracy,
    Cascade,
    Cell,
    Component,
    DatasetInfo,
    Detection,
    Environment,
    GatedDefense,
    Pretext,
    RanOn,
    Record,
    Seconds,
    TrainingRecord,
    VersusBase,
    WorstCase,
    check_finite,
)
from .robustness import gated_defense, sanity_warnings, versus_base, worst_case
from .seeds import Aggregate, aggregate

__all__ = [
    "SCHEMA_VERSION",
    "Accuracy",
    "Cell",
    "Component",
    "DatasetInfo",
    "Environment",
    "Leaderboard",
    "Pretext",
    "RanOn",
    "TrainingRecord",
    "WorstCase",
]

SCHEMA_VERSION = 7
DERIVED = ("worst_case", "warnings", "aggregates", "versus_base", "detection", "gated")


class Leaderboard(Record):
    schema_version: Literal[7] = SCHEMA_VERSION
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
    seconds_total: Seconds
    cascades: list[Cascade] = Field(
        default_factory=list,
        description="run --cascade: per (task, mode) model, the worst case by attacks run one after another on "
        "the images still robust (then the file has no cells: no attack saw every image)",
    )
    merged_from: list[dict[str, Any]] = Field(default_factory=list, description="provenance of merged inputs")
    notes: list[str] = Field(
        default_factory=list, description="what the run adjusted and said so (e.g. a capped value)"
    )
    _source_schema_version: int = PrivateAttr(default=SCHEMA_VERSION)

    @computed_field(description="per (task, mode): an image is robust only if it survives every attack")
    @property
    def worst_case(self) -> list[WorstCase]:
        return worst_case(self.cells)

    @computed_field(
        description="per (task, mode): the defended worst case against the static base (the classifier "
        "trained alone, undefended) under the same attacks -- its own, AutoAttack, and "
        "transfer both ways -- paired, read one draw and every draw, Holm-corrected"
    )
    @property
    def versus_base(self) -> list[VersusBase]:
        return versus_base(self.cells)

    @computed_field(
        description="per cell with per-image pretext values: the pretext metric as a detector of "
        "attacked images (AUROC, TPR at 5% FPR, paired bootstrap intervals)"
    )
    @property
    def detection(self) -> list[Detection]:
        return detection(self.cells)

    @computed_field(
        description="per (task, mode) with a detection gate: the gated reverse attack's clean accuracy "
        "and worst case beside the ungated one's"
    )
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

    @computed_field(
        description="per cell evaluated under several seeds: mean, sd and a seeds-then-images "
        "bootstrap interval of each accuracy and of the reverse attack's two effects"
    )
    @property
    def aggregates(self) -> list[Aggregate]:
        return aggregate(self.cells)

    @property
    def seeds(self) -> list[int]:
        return sorted({c.seed for c in [*self.cells, *self.cascades]})

    @property
    def source_schema_version(self) -> int:
        """The schema the file was written with, before any migration on load."""
        return self._source_schema_version

    @model_validator(mode="wrap")
    @classmethod
    def _derived_views_match(cls, data: Any, handler) -> Leaderboard:
        stored = {}
        if isinstance(data, dict):
            data = dict(data)
            stored = {k: data.pop(k) for k in DERIVED if k in data}
        board = handler(data)
        for name, value in stored.items():
            recomputed = board.model_dump(mode="json", include={name})[name]
            if _jsonable(value) != recomputed:
                raise ValueError(
                    f"stored {name} does not match the cells it summarises "
                    f"(stored {_brief(value)}, recomputed {_brief(recomputed)})"
                )
        return board

    @model_validator(mode="after")
    def _unique_cells(self) -> Leaderboard:
        seen = set()
        for c in self.cells:
            if c.id in seen:
                raise ValueError(f"duplicate cell {c.id}")
            seen.add(c.id)
        return self

    @field_validator("config")
    @classmethod
    def _config_shape(cls, value: dict[str, Any]) -> dict[str, Any]:
        """The run's config as every schema records it (``RunSpec``'s dump): what merge, compare and the
        cross-checks below read must have the shape they read."""
        check_finite(value, "config")
        for field, kind in (
            ("preset_name", str),
            ("dataset", str),
            ("preset", dict),
            ("modes", list),
            ("tasks", list),
            ("attacks", list),
        ):
            if not isinstance(value.get(field), kind):
                raise ValueError(
                    f"config.{field} is {type(value.get(field)).__name__}, not {kind.__name__}: "
                    f"not a config ssrbench wrote"
                )
        if not all(isinstance(m, str) for m in value["modes"]):
            raise ValueError("config.modes holds a non-string: not a config ssrbench wrote")
        for field in ("tasks", "attacks"):
            for i, item in enumerate(value[field]):
                if not (isinstance(item, dict) and isinstance(item.get("name"), str)):
                    raise ValueError(f"config.{field}[{i}] has no name: not a config ssrbench wrote")
        return value

    @model_validator(mode="after")
    def _cells_agree_with_the_file(self) -> Leaderboard:
        """What the file states once and its cells state again must agree: the run's config (and its hash),
        preset, backbone, dataset and number of evaluated images. Every schema records all of these."""
        recomputed = config_hash(self.config)
        if self.config_hash != recomputed:
            raise ValueError(
                f"config_hash {self.config_hash!r} is not the hash of config ({recomputed!r}): "
                f"the config was changed after the run"
            )
        preset = self.config["preset"]
        file_says = {
            "preset": self.config["preset_name"],
            "backbone": preset.get("base") or preset.get("backbone"),  # a published base is the backbone
            "dataset": self.config["dataset"],
        }
        if file_says["preset"] != self.preset:
            raise ValueError(f"preset {self.preset!r} is not config.preset_name {file_says['preset']!r}")
        if file_says["dataset"] != self.dataset.name:
            raise ValueError(f"dataset.name {self.dataset.name!r} is not config.dataset {file_says['dataset']!r}")
        n = self.dataset.eval_images
        if preset.get("eval_images", n) != n:
            raise ValueError(f"dataset.eval_images {n} is not config.preset.eval_images {preset['eval_images']}")
        for c in self.cells:
            for field, value in file_says.items():
                if value is not None and getattr(c, field) != value:
                    raise ValueError(f"{c.label}: {field} {getattr(c, field)!r} is not the file's {value!r}")
            if c.clean.n != n:
                raise ValueError(f"{c.label}: clean holds {c.clean.n} images, but dataset.eval_images says {n}")
        order = self.config.get("cascade")
        if self.cascades and (order is None or self.cells):
            raise ValueError(
                "cascades in a file whose config is no cascade, or beside cells: not a file ssrbench wrote"
            )
        for c in self.cascades:
            for field, value in file_says.items():
                if value is not None and getattr(c, field) != value:
                    raise ValueError(f"{c.id}: {field} {getattr(c, field)!r} is not the file's {value!r}")
            if c.clean.n != n:
                raise ValueError(f"{c.id}: clean holds {c.clean.n} images, but dataset.eval_images says {n}")
            if c.order != order or c.mode not in self.config["modes"]:
                raise ValueError(f"{c.id}: order {c.order!r} and mode {c.mode!r} are not the config's")
        self._cells_are_the_configs()
        return self

    def _cells_are_the_configs(self) -> None:
        """A cell's task, attack, reverse attack and mode are the ones the config (which config_hash seals)
        lists under its name: a cell's parameters cannot be changed apart from the config's. A name the
        config does not list is not checked (runs and merges list every name; a toy board may not)."""
        listed = {field: {item["name"]: item for item in self.config[field]} for field in ("tasks", "attacks")}
        modes = self.config["modes"]
        for c in self.cells:
            if c.mode not in modes:
                raise ValueError(f"{c.label}: mode {c.mode!r} is not one of config.modes {modes}")
            task, attack = listed["tasks"].get(c.task.name), listed["attacks"].get(c.attack.name)
            pairs = []
            if task is not None:
                pairs += [
                    ("task.kind", c.task.kind, task.get("task", c.task.kind)),
                    ("task.params", c.task.params, task.get("params", c.task.params)),
                    (
                        "reverse",
                        c.reverse.model_dump(mode="json"),
                        task.get("reverse", c.reverse.model_dump(mode="json")),
                    ),
                ]
            if attack is not None:
                pairs += [
                    ("attack.kind", c.attack.kind, attack.get("kind", c.attack.kind)),
                    ("attack.params", c.attack.params, attack.get("params", c.attack.params)),
                ]
            for field, mine, theirs in pairs:
                if mine != theirs:
                    where, mine, theirs = _first_difference(field, mine, theirs)
                    raise ValueError(f"{c.label}: {where} {mine!r} is not the config's {theirs!r}")

    @model_validator(mode="after")
    def _one_model_one_clean(self) -> Leaderboard:
        """A model's Clean and Clean+Rev are evaluated once, before its attacks (``evaluate``), and every
        attack's cell records the same ones -- one draw of a randomised defense included: the same images
        through the same model and defense must give the same per-image flags in every cell."""
        first: dict[tuple, Cell] = {}
        for c in self.cells:
            key = (c.task.name, c.mode, c.seed, c.model_key, c.weights_sha256, _canonical(c.reverse))
            ref = first.setdefault(key, c)
            if ref is c:
                continue
            for name in ("clean", "clean_rev", "randomized.clean_fixed_draw", "randomized.clean_all_draws"):
                mine, theirs = c.accuracies().get(name), ref.accuracies().get(name)
                if (mine is None) != (theirs is None) or (mine is not None and mine.per_image != theirs.per_image):
                    raise ValueError(
                        f"{c.label}: {name} differs from {ref.label}'s: the same model on the same "
                        f"images evaluates it once for every attack"
                    )
        return self


def _first_difference(where: str, a: Any, b: Any) -> tuple[str, Any, Any]:
    """Where two JSON values first differ, and the two values there (None: absent)."""
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b), key=str):
            if a.get(k) != b.get(k):
                return _first_difference(f"{where}.{k}", a.get(k), b.get(k))
    return where, a, b


def _canonical(value: Any) -> str:
    import json

    return json.dumps(value, sort_keys=True, default=str)


def validation_line(where: str, doc: Any, exc: ValidationError) -> str:
    """A refused leaderboard in one line: the file, the cell (task/mode/attack and seed) when the problem is
    in one, the field, and the reason; how many more problems there are, if any."""
    loc, msg, rest = first_problem(exc)
    loc = list(loc)
    cell = ""
    if len(loc) >= 2 and loc[0] == "cells" and isinstance(loc[1], int):
        raw = doc.get("cells", [])[loc[1]] if isinstance(doc, dict) else None
        if isinstance(raw, dict):
            name = lambda v: v.get("name", "?") if isinstance(v, dict) else "?"  # noqa: E731
            cell = (
                f"cell {name(raw.get('task'))}/{raw.get('mode', '?')}/{name(raw.get('attack'))} "
                f"seed {raw.get('seed', doc.get('seed', 0))}: "
            )
        else:
            cell = f"cells[{loc[1]}]: "
        loc = loc[2:]
    elif len(loc) >= 2 and loc[0] == "training" and isinstance(loc[1], int):
        raw = doc.get("training", [])[loc[1]] if isinstance(doc, dict) else None
        if isinstance(raw, dict) and isinstance(raw.get("stage"), str):
            cell, loc = f"training stage {raw['stage']}: ", loc[2:]
    if msg.startswith("cell ") and cell and msg.startswith(cell.split(":")[0]):
        cell = ""  # the validator named the cell already
    field = ".".join(str(p) for p in loc)
    return f"{where}: {cell}{field + ': ' if field else ''}{msg}{rest}".replace("\n", " ")


def _jsonable(value: Any) -> Any:
    if isinstance(value, list):
        return [v.model_dump(mode="json") if isinstance(v, Record) else v for v in value]
    return value


def _brief(value: Any) -> str:
    """Enough of a derived view to see the disagreement: the percentages of a worst case, or the text."""
    if (
        isinstance(value, list)
        and value
        and all(isinstance(w, dict) and isinstance(w.get("defended"), dict) for w in value)
    ):
        return ", ".join(f"{w.get('task')}/{w.get('mode')} {w['defended'].get('percent')}%" for w in value)
    return repr(value)[:200]  # any other shape (a doctored file's) as it is
