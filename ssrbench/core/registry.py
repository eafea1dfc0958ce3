"""One small generic registry, filled from entry points on first use.

Built-ins and third-party plugins take the same path: the ``ssrbench.*`` entry-point groups.
Entries are loaded lazily, so a broken plugin only costs a warning when it is first needed or listed,
and never breaks another name. Plugins also ship named configs (group ``ssrbench.configs``): see
``ConfigFolders``.
"""

from __future__ import annotations

import difflib
import os
import warnings
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from pathlib import Path
from types import ModuleType
from typing import Any, Generic, TypeVar

from .errors import SSRBenchError, UnknownNameError

T = TypeVar("T")
BUILTIN_DIST = "ssrbench"
_ALL: list[Registry] = []  # every registry made, wherever it is declared (for reset_all)


class PluginWarning(UserWarning):
    """A plugin was skipped; the message names it and says why."""


class DuplicateNameError(SSRBenchError):
    exit_code = 2


class SkippedPluginError(UnknownNameError):
    """The name is installed, but its plugin was skipped: say so (and why) instead of "unknown"."""

    def __init__(self, kind: str, name: str, origin: Origin, reason: str):
        self.kind, self.name, self.known, self.suggestions = kind, name, [], []
        self.origin, self.reason = origin, reason
        KeyError.__init__(
            self, f"{kind} {name!r} is installed ({origin.distribution} {origin.version}) but skipped: {reason}"
        )


@dataclass
class Origin:
    """Where a registered object came from, recorded in leaderboards."""

    distribution: str
    version: str
    entry_point: str | None = None


@dataclass
class _Entry:
    origin: Origin
    obj: Any = None
    ep: EntryPoint | None = None
    failed: str | None = None


class Registry(Generic[T]):
    """Names of one kind (tasks, attacks, ...) from one entry-point group; declared beside the kind's
    contract (``TASKS`` in ``pretext/base.py``, ``ATTACKS`` in ``adversarial/base.py``, ...), with that
    contract's class check as ``validate``, so this module stays a leaf."""

    def __init__(self, kind: str, group: str, validate: Callable[[str, Any], None] | None = None):
        self.kind, self.group = kind, group
        self._validate = validate
        self._entries: dict[str, _Entry] = {}
        self._scanned = False
        _ALL.append(self)

    # -- registration -------------------------------------------------------------------------
    def register(self, name: str, obj: T, origin: Origin | None = None) -> T:
        """Register in code (tests, notebooks); a name can never be registered twice."""
        self._scan()
        if name in self._entries:
            raise DuplicateNameError(
                f"{self.kind} {name!r} is already registered by {self._entries[name].origin.distribution}"
            )
        self._entries[name] = _Entry(origin or Origin("<runtime>", "0"), obj=obj)
        return obj

    def _scan(self) -> None:
        if self._scanned:
            return
        self._scanned = True
        eps = sorted(entry_points(group=self.group), key=lambda e: (_dist(e)[0] != BUILTIN_DIST, e.name))
        for ep in eps:
            dist, version = _dist(ep)
            if ep.name in self._entries:
                owner = self._entries[ep.name].origin
                if owner.distribution == dist:
                    continue  # the same distribution seen twice on sys.path
                warnings.warn(
                    f"plugin {dist} {version}: {self.kind} {ep.name!r} is already provided by "
                    f"{owner.distribution}; the plugin's entry is ignored (rename it to use it).",
                    PluginWarning,
                    stacklevel=2,
                )
                continue
            self._entries[ep.name] = _Entry(Origin(dist, version, ep.value), ep=ep)

    # -- lookup -------------------------------------------------------------------------------
    def names(self) -> list[str]:
        """Every usable name (entries whose plugin fails to load are warned about and left out)."""
        self._scan()
        return sorted(n for n in list(self._entries) if self._load(n) is not None)

    def __contains__(self, name: str) -> bool:
        self._scan()
        return name in self._entries and self._load(name) is not None

    def get(self, name: str) -> T:
        self._scan()
        obj = self._load(name) if name in self._entries else None
        if obj is None:
            raise self.missing(name)
        return obj

    def skipped(self, name: str) -> str | None:
        """Why an installed entry of this name was skipped (None if it loads or does not exist)."""
        self._scan()
        if name not in self._entries:
            return None
        self._load(name)
        return self._entries[name].failed

    def missing(self, name: str, also: Iterable[str] = (), kind: str | None = None) -> UnknownNameError:
        """The error for a name that cannot be used: installed-but-skipped, or unknown with suggestions
        among the registered names and ``also`` (e.g. named config files)."""
        reason = self.skipped(name)
        if reason is not None:
            return SkippedPluginError(self.kind, name, self._entries[name].origin, reason)
        known = sorted(set(self.names()) | set(also))
        return UnknownNameError(kind or self.kind, name, known, difflib.get_close_matches(name, known, n=3))

    def origin(self, name: str) -> Origin:
        self.get(name)
        return self._entries[name].origin

    def _load(self, name: str) -> T | None:
        entry = self._entries[name]
        if entry.obj is not None or entry.failed:
            return entry.obj
        try:
            obj = entry.ep.load()
            if self._validate:
                self._validate(name, obj)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - a plugin may fail in any way (even sys.exit at
            # import); it must not take others down, nor end the process in its own words
            entry.failed = one_line(exc)
            warnings.warn(
                f"plugin {entry.origin.distribution} {entry.origin.version}: {self.kind} {name!r} "
                f"({entry.origin.entry_point}) skipped: {entry.failed}",
                PluginWarning,
                stacklevel=3,
            )
            return None
        entry.obj = obj
        return obj

    def reset(self) -> None:
        """Forget everything and rescan on next use (after installing a plugin at run time)."""
        self._entries.clear()
        self._scanned = False


@dataclass(frozen=True)
class ConfigFolder:
    """A plugin's folder of named configs (``tasks/*.toml``, ``attacks/*.toml``) and who shipped it."""

    path: Path
    origin: Origin


class ConfigFolders:
    """Folders of named configs shipped by plugins, from the ``ssrbench.configs`` entry-point group.

    An entry point names an importable *package* whose folder holds ``tasks/`` and/or ``attacks/``
    (``myplugin = "my_package.configs"``), or an object that is such a folder's path or a function
    returning it (``myplugin = "my_package:config_dir"``). A broken one is a warning naming the plugin.
    """

    def __init__(self, group: str):
        self.group = group
        self._folders: list[ConfigFolder] | None = None

    def folders(self) -> list[ConfigFolder]:
        if self._folders is None:
            self._folders = self._scan()
        return self._folders

    def _scan(self) -> list[ConfigFolder]:
        found: list[ConfigFolder] = []
        for ep in sorted(entry_points(group=self.group), key=lambda e: (_dist(e)[0], e.name)):
            dist, version = _dist(ep)
            try:
                path = _config_folder(ep.load())
            except Exception as exc:  # noqa: BLE001 - a plugin may fail in any way; it must not take others down
                warnings.warn(
                    f"plugin {dist} {version}: named configs {ep.name!r} ({ep.value}) skipped: "
                    f"{type(exc).__name__}: {exc}",
                    PluginWarning,
                    stacklevel=2,
                )
                continue
            if all(f.path != path for f in found):  # the same distribution seen twice on sys.path
                found.append(ConfigFolder(path, Origin(dist, version, ep.value)))
        return found

    def reset(self) -> None:
        self._folders = None


def _config_folder(obj: Any) -> Path:
    if callable(obj) and not isinstance(obj, (ModuleType, type)):
        obj = obj()
    if isinstance(obj, ModuleType):
        locations = list(getattr(obj, "__path__", []))
        if not locations:
            raise TypeError(
                f"{obj.__name__} is a module, not a package: name the package whose folder holds tasks/ and attacks/"
            )
        path = Path(locations[0])
    elif isinstance(obj, (str, os.PathLike)):
        path = Path(obj)
    else:
        raise TypeError(f"expected a package, a folder's path or a function returning one, got {obj!r}")
    if not path.is_dir():
        raise FileNotFoundError(f"{path} is not a folder")
    if not ((path / "tasks").is_dir() or (path / "attacks").is_dir()):
        raise FileNotFoundError(f"{path} holds neither tasks/ nor attacks/")
    return path.resolve()


def one_line(exc: BaseException) -> str:
    """An exception from a plugin as one line: its type and the first line of its message."""
    text = str(exc).strip()
    first = text.splitlines()[0] if text else ""
    more = " ..." if len(text.splitlines()) > 1 else ""
    return f"{type(exc).__name__}: {first[:300]}{more}"


def _dist(ep: EntryPoint) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return ("<unknown>", "0")
    return (dist.metadata["Name"] or "<unknown>", dist.version)


CONFIG_FOLDERS = ConfigFolders("ssrbench.configs")


def reset_all() -> None:
    """Rescan every group on next use (after installing or removing a plugin at run time)."""
    for reg in (*_ALL, CONFIG_FOLDERS):
        reg.reset()
