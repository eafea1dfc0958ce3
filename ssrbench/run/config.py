"""Named configs: declarative TOML files in ``tasks/`` and ``attacks/`` (plus a user's and plugins' folders).

A file is validated in two steps -- the envelope here, then ``params`` against the schema of the
task or attack kind it names -- and every error names the file and the field. A file may build on
another with ``extends = "name"``; the resolved config never shows it, so its hash is that of the
same config written out in full.
"""

from __future__ import annotations

import os
import tomllib
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, ValidationError, model_serializer

from ..adversarial.base import ATTACKS
from ..core.budget import PixelBudget, ReverseConfig  # noqa: F401 - the names plugins import from here
from ..core.errors import ConfigError, format_validation_error
from ..core.fileio import UnreadableError, read_regular_file
from ..core.hashing import config_hash  # noqa: F401 - re-exported
from ..core.registry import BUILTIN_DIST, CONFIG_FOLDERS
from ..leaderboard.records import SweepPoint
from ..pretext.base import TASKS

CONFIG_DIRS_ENV = "SSRBENCH_CONFIG_DIRS"


class ConfigDeprecationWarning(UserWarning):
    """A config file uses a key that has a new name; shown (unlike DeprecationWarning) so its author renames it."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


# the file a config was loaded from; not part of the config (dumps and hashes leave it out)
Source = Annotated[str | None, Field(None, exclude=True)]
# a sweep point's place in its sweep (run/sweep.py sets it): recorded in each cell's component, not in the config's
# dump, so a sweep's config hashes as it did when the point lived only in its name
Point = Annotated[SweepPoint | None, Field(None, exclude=True)]


class TaskConfig(Strict):
    name: str
    # the registered task it configures; `task` in files and records written before it was `kind`, as for attacks
    kind: str = Field(validation_alias=AliasChoices("kind", "task"))
    description: str = ""
    params: dict[str, Any] = {}
    reverse: ReverseConfig = ReverseConfig()
    source: Source = None
    point: Point = None

    @property
    def task(self) -> str:
        """Deprecated: ``kind`` (read for one release)."""
        warnings.warn("TaskConfig.task is now TaskConfig.kind", DeprecationWarning, stacklevel=2)
        return self.kind

    @model_serializer(mode="wrap")
    def _recorded(self, handler):
        """Written with its old key, ``task``: the dump is what config hashes and model-cache keys are made of,
        so keys and committed files stay what they were."""
        return {("task" if k == "kind" else k): v for k, v in handler(self).items()}


class AttackConfig(Strict):
    name: str
    kind: str
    description: str = ""
    params: dict[str, Any] = {}
    source: Source = None
    point: Point = None
    # a sanity probe (e.g. eps = 128/255) must win outright; it is no threat model of its own, so the
    # worst case leaves it out. Recorded in each cell's threat model, not in the config's dump.
    probe: bool = Field(False, exclude=True)


Folder = Literal["tasks", "attacks"]
_SET_BY_LOADER = ("name", "source", "point")  # a file cannot set these: its name, path and sweep are what they are


def builtin_config_dir(kind: Folder) -> Path:
    """The shipped folder: inside the wheel when installed, the repository's top level otherwise."""
    here = Path(__file__).resolve().parents[1]  # the package: ssrbench/run/config.py -> ssrbench/
    packaged = here / "_named_configs" / kind
    return packaged if packaged.is_dir() else here.parent / kind


@dataclass(frozen=True)
class NamedFile:
    """A named config file and where it came from (shown by ``ssrbench list``)."""

    path: Path
    origin: str  # "--config-dir", "SSRBENCH_CONFIG_DIRS", a plugin's "<distribution> <version>", or "ssrbench"

    def __str__(self) -> str:
        try:
            shown = self.path.resolve().relative_to(Path.cwd().resolve())
        except ValueError:
            shown = self.path
        return f"{self.origin}: {shown}"


def _folders(kind: Folder, extra: list[Path] | None) -> list[tuple[Path, str]]:
    """Search order: the user's folders first (so they can shadow a built-in on purpose), then the
    plugins' folders, then ours."""
    user = lambda d: Path(d) / kind if (Path(d) / kind).is_dir() else Path(d)  # noqa: E731
    found = [(user(d), "--config-dir") for d in extra or []]
    found += [(user(d), CONFIG_DIRS_ENV) for d in filter(None, os.environ.get(CONFIG_DIRS_ENV, "").split(os.pathsep))]
    found += [
        (f.path / kind, f"{f.origin.distribution} {f.origin.version}")
        for f in CONFIG_FOLDERS.folders()
        if (f.path / kind).is_dir()
    ]
    found.append((builtin_config_dir(kind), BUILTIN_DIST))
    return found


def config_dirs(kind: Folder, extra: list[Path] | None = None) -> list[Path]:
    """The folders searched for named configs, in order."""
    return [d for d, _ in _folders(kind, extra)]


def _candidates(kind: Folder, extra: list[Path] | None) -> dict[str, list[NamedFile]]:
    """Every file of each name, in search order (the first one is the name's config)."""
    found: dict[str, list[NamedFile]] = {}
    for d, origin in _folders(kind, extra):
        for f in sorted(d.glob("*.toml")) if d.is_dir() else []:
            files = found.setdefault(f.stem, [])
            if all(nf.path.resolve() != f.resolve() for nf in files):  # a folder named twice
                files.append(NamedFile(f, origin))
    return found


def named_files(kind: Folder, extra_dirs: list[Path] | None = None) -> dict[str, NamedFile]:
    """The file each named config comes from, with its origin."""
    return {name: files[0] for name, files in _candidates(kind, extra_dirs).items()}


MAX_EXTENDS = 32  # files in one extends chain: deeper is a mistake (or an attack), not a config


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file's content, or a ConfigError naming the file: unreadable, not UTF-8, not TOML."""
    try:
        return tomllib.loads(read_regular_file(path).decode("utf-8"))
    except UnreadableError as exc:  # not a regular file (a FIFO, /dev/zero), too large, or unreadable
        raise ConfigError(f"config {exc}") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML: {exc}") from exc
    except UnicodeDecodeError as exc:  # TOML is UTF-8; tomllib decodes before it parses
        raise ConfigError(
            f"{path}: not UTF-8 text (byte {exc.object[exc.start : exc.start + 1]!r} at offset "
            f"{exc.start}); TOML files must be saved as UTF-8"
        ) from None


def validated_params(where: str, schema: type[BaseModel], params: dict[str, Any]) -> dict[str, Any]:
    """``params`` checked against a kind's schema, in full (defaults filled in) as recorded: the one check a
    named config's and a sweep point's budget pass; an error names ``where`` and the field."""
    try:
        return schema(**params).model_dump(mode="json")
    except ValidationError as exc:
        raise ConfigError(format_validation_error(where, exc, prefix="params")) from exc


def _merge(base: dict[str, Any], child: dict[str, Any]) -> dict[str, Any]:
    """The child's keys over the parent's; tables (``[params]``, ``[reverse]``) merged key by key."""
    out = dict(base)
    for key, value in child.items():
        both_tables = isinstance(value, dict) and isinstance(out.get(key), dict)
        out[key] = {**out[key], **value} if both_tables else value
    return out


OLD_TASK_KEY = "task"  # a task file's `kind` before it had attacks' name for it; read, and announced, until 0.2


def _read_config(folder: Folder, path: Path) -> dict[str, Any]:
    """A config file's table, its kind under ``kind`` (a task file's old ``task`` key renamed, with a warning)."""
    raw = read_toml(path)
    if folder == "tasks" and OLD_TASK_KEY in raw:
        if "kind" in raw:
            raise ConfigError(f"{path}: both kind and task are set; keep kind (task is its old name)")
        warnings.warn(
            f"{path}: `task = {raw[OLD_TASK_KEY]!r}` is the old name of `kind = ...`; rename the key "
            "(the old one is read until ssrbench 0.2)",
            ConfigDeprecationWarning,
            stacklevel=1,
        )
        raw = {("kind" if k == OLD_TASK_KEY else k): v for k, v in raw.items()}
    return raw


def _resolve(
    folder: Folder, chain: list[NamedFile], candidates: dict[str, list[NamedFile]], registry
) -> tuple[dict[str, Any], list[NamedFile]]:
    """The raw content of ``chain[-1]`` with its ``extends`` applied; returns it and the whole chain."""
    nf = chain[-1]
    raw = _read_config(folder, nf.path)
    if "extends" not in raw:
        return raw, chain
    parent = raw.pop("extends")
    if not isinstance(parent, str) or not parent:
        raise ConfigError(f"{nf.path}: extends must be the name of another {folder[:-1]} config, got {parent!r}")
    options = candidates.get(parent, [])
    if parent == nf.path.stem:  # a file extending the config it shadows: the next file of that name
        options = options[[o.path for o in options].index(nf.path) + 1 :]
    if options:
        if any(c.path == options[0].path for c in chain):
            circle = " -> ".join(f"{c.path.stem} ({c.path})" for c in [*chain, options[0]])
            raise ConfigError(f"{chain[0].path}: extends goes round in a circle: {circle}")
        if len(chain) >= MAX_EXTENDS:  # checked before the next file is read: no RecursionError, whatever the depth
            raise ConfigError(
                f"{chain[0].path}: extends goes more than {MAX_EXTENDS} files deep ({nf.path} "
                f"extends {parent!r}); a config may build on at most {MAX_EXTENDS - 1} others"
            )
        base, chain = _resolve(folder, [*chain, options[0]], candidates, registry)
    elif parent in registry:  # a registered kind without a file: its defaults
        base = {"kind": parent}
    else:
        raise ConfigError(f"{nf.path}: extends: {registry.missing(parent, candidates, kind=folder[:-1])}")
    return _merge(base, raw), chain


def _load_named(
    folder: Folder,
    name: str,
    extra_dirs: list[Path] | None,
    registry,
    schema: type[TaskConfig] | type[AttackConfig],
):
    """A named config file, or -- for a registered kind without a file -- that kind with its defaults."""
    candidates = _candidates(folder, extra_dirs)
    if name in candidates:
        raw, chain = _resolve(folder, [candidates[name][0]], candidates, registry)
        source, where = str(chain[0].path), str(chain[0].path)
        if len(chain) > 1:
            where += " (extends " + " -> ".join(str(c.path) for c in chain[1:]) + ")"
    elif name in registry:
        raw, where, source = {"kind": name}, f"{registry.kind} {name!r} (defaults)", None
    else:
        raise registry.missing(name, candidates, kind=folder[:-1])
    reserved = [k for k in _SET_BY_LOADER if k in raw]
    if reserved:
        raise ConfigError(
            f"{where}: {', '.join(reserved)} cannot be set in a config file "
            "(the name is the file's name; the source is where it was found; a point is set by a sweep)"
        )
    try:
        cfg = schema(name=name, source=source, **raw)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(where, exc)) from exc
    params = validated_params(where, registry.get(cfg.kind).Params, cfg.params)
    return cfg.model_copy(update={"params": params})


def load_task_config(name: str, extra_dirs: list[Path] | None = None) -> TaskConfig:
    return _load_named("tasks", name, extra_dirs, TASKS, TaskConfig)


def load_attack_config(name: str, extra_dirs: list[Path] | None = None) -> AttackConfig:
    return _load_named("attacks", name, extra_dirs, ATTACKS, AttackConfig)


def list_named(kind: Folder, extra_dirs: list[Path] | None = None) -> dict[str, Path]:
    return {name: nf.path for name, nf in named_files(kind, extra_dirs).items()}


def shadows_builtin(cfg: TaskConfig | AttackConfig) -> str | None:
    """What ``cfg`` hides by taking a built-in's name: the shipped file of that name, or the built-in
    kind whose defaults it replaces. None when it is the built-in itself or has no built-in namesake."""
    if cfg.source is None:
        return None
    folder, registry = ("tasks", TASKS) if isinstance(cfg, TaskConfig) else ("attacks", ATTACKS)
    builtin = builtin_config_dir(folder) / f"{cfg.name}.toml"
    if builtin.is_file():
        return None if Path(cfg.source).resolve() == builtin.resolve() else str(builtin)
    if cfg.name in registry and registry.origin(cfg.name).distribution == BUILTIN_DIST:
        return f"the built-in {registry.kind} {cfg.name!r} (its defaults)"
    return None


def shadowed_builtins(configs: Iterable[TaskConfig | AttackConfig]) -> list[str]:
    """One notice per config that shadows a built-in of its name (say it: results differ from the built-in's)."""
    notices = []
    for cfg in configs:
        hidden = shadows_builtin(cfg)
        if hidden:
            kind = "task" if isinstance(cfg, TaskConfig) else "attack"
            notices.append(f"{kind} config {cfg.name!r} comes from {cfg.source}, which shadows {hidden}")
    return notices
