"""Named configs: declarative TOML files in ``tasks/`` and ``attacks/`` (plus a user's own folders).

A file is validated in two steps -- the envelope here, then ``params`` against the schema of the
task or attack kind it names -- and every error names the file and the field.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import tomllib
from fractions import Fraction
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError

from .errors import ConfigError, UnknownNameError
from .registry import ATTACKS, TASKS

CONFIG_DIRS_ENV = "SSRBENCH_CONFIG_DIRS"


def _fraction(value: Any) -> Any:
    """Accept budgets written as "8/255" -- how papers state them -- as well as plain floats."""
    if isinstance(value, str):
        try:
            return float(Fraction(value.strip()))
        except (ValueError, ZeroDivisionError) as exc:
            raise ValueError(f"expected a number or a fraction like '8/255', got {value!r}") from exc
    return value


PixelBudget = Annotated[float, BeforeValidator(_fraction), Field(ge=0.0, le=1.0)]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ReverseConfig(Strict):
    """The reverse attack: L-inf PGD that minimises the task's self-supervised loss."""

    eps: PixelBudget = 8 / 255
    step_size: PixelBudget = 2 / 255
    steps: int = Field(10, ge=0, le=10_000)
    random_start: bool = False


class TaskConfig(Strict):
    name: str
    task: str
    description: str = ""
    params: dict[str, Any] = {}
    reverse: ReverseConfig = ReverseConfig()


class AttackConfig(Strict):
    name: str
    kind: str
    description: str = ""
    params: dict[str, Any] = {}


def builtin_config_dir(kind: Literal["tasks", "attacks"]) -> Path:
    """The shipped folder: inside the wheel when installed, the repository's top level otherwise."""
    here = Path(__file__).resolve().parent
    packaged = here / "_named_configs" / kind
    return packaged if packaged.is_dir() else here.parent / kind


def config_dirs(kind: Literal["tasks", "attacks"], extra: list[Path] | None = None) -> list[Path]:
    """Search order: the user's folders first (so they can shadow a built-in on purpose), then ours."""
    dirs: list[Path] = []
    for d in extra or []:
        dirs.append(Path(d) / kind if (Path(d) / kind).is_dir() else Path(d))
    for d in filter(None, os.environ.get(CONFIG_DIRS_ENV, "").split(os.pathsep)):
        dirs.append(Path(d) / kind if (Path(d) / kind).is_dir() else Path(d))
    dirs.append(builtin_config_dir(kind))
    return dirs


def _named_files(kind: Literal["tasks", "attacks"], extra: list[Path] | None) -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in config_dirs(kind, extra):
        for f in sorted(d.glob("*.toml")) if d.is_dir() else []:
            found.setdefault(f.stem, f)
    return found


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc


def format_validation_error(where: str, exc: ValidationError, prefix: str = "") -> str:
    lines = [f"{where}: invalid config"]
    for err in exc.errors():
        field = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "")
        lines.append(f"  {field or '<root>'}: {err['msg']}")
    return "\n".join(lines)


def _validate_params(where: str, schema: type[BaseModel], params: dict[str, Any]) -> dict[str, Any]:
    try:
        return schema(**params).model_dump(mode="json")
    except ValidationError as exc:
        raise ConfigError(format_validation_error(where, exc, prefix="params")) from exc


def _load_named(folder: Literal["tasks", "attacks"], name: str, extra_dirs: list[Path] | None, registry,
                schema: type[TaskConfig] | type[AttackConfig], kind_field: str):
    """A named config file, or -- for a registered kind without a file -- that kind with its defaults."""
    files = _named_files(folder, extra_dirs)
    if name in files:
        raw, where = _read_toml(files[name]), str(files[name])
    elif name in registry:
        raw, where = {kind_field: name}, f"{registry.kind} {name!r} (defaults)"
    else:
        known = sorted(set(files) | set(registry.names()))
        raise UnknownNameError(folder[:-1], name, known, difflib.get_close_matches(name, known, n=3))
    try:
        cfg = schema(name=name, **raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(where, exc)) from exc
    params = _validate_params(where, registry.get(getattr(cfg, kind_field)).Params, cfg.params)
    return cfg.model_copy(update={"params": params})


def load_task_config(name: str, extra_dirs: list[Path] | None = None) -> TaskConfig:
    return _load_named("tasks", name, extra_dirs, TASKS, TaskConfig, "task")


def load_attack_config(name: str, extra_dirs: list[Path] | None = None) -> AttackConfig:
    return _load_named("attacks", name, extra_dirs, ATTACKS, AttackConfig, "kind")


def list_named(kind: Literal["tasks", "attacks"], extra_dirs: list[Path] | None = None) -> dict[str, Path]:
    return _named_files(kind, extra_dirs)


def config_hash(obj: Any) -> str:
    """Stable short hash of any JSON-able value (pydantic models are dumped first)."""
    if isinstance(obj, BaseModel):
        obj = obj.model_dump(mode="json")
    blob = json.dumps(obj, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:16]
