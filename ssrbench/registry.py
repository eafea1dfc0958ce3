"""One small generic registry, filled from entry points on first use.

Built-ins and third-party plugins take the same path: the ``ssrbench.*`` entry-point groups.
Entries are loaded lazily, so a broken plugin only costs a warning when it is first needed or listed,
and never breaks another name.
"""

from __future__ import annotations

import difflib
import warnings
from dataclasses import dataclass
from importlib.metadata import EntryPoint, entry_points
from typing import Any, Callable, Generic, TypeVar

from .errors import SSRBenchError, UnknownNameError

T = TypeVar("T")
BUILTIN_DIST = "ssrbench"


class PluginWarning(UserWarning):
    """A plugin was skipped; the message names it and says why."""


class DuplicateNameError(SSRBenchError):
    exit_code = 2


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
    def __init__(self, kind: str, group: str, validate: Callable[[str, Any], None] | None = None):
        self.kind, self.group = kind, group
        self._validate = validate
        self._entries: dict[str, _Entry] = {}
        self._scanned = False

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
            known = self.names()
            raise UnknownNameError(self.kind, name, known, difflib.get_close_matches(name, known, n=3))
        return obj

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
        except Exception as exc:  # noqa: BLE001 - a plugin may fail in any way; it must not take others down
            entry.failed = f"{type(exc).__name__}: {exc}"
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


def _dist(ep: EntryPoint) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return ("<unknown>", "0")
    return (dist.metadata["Name"] or "<unknown>", dist.version)


# -- the project's registries -----------------------------------------------------------------


def _check_task(name: str, obj: Any) -> None:
    from .pretext.base import check_task_class

    check_task_class(name, obj)


def _check_attack(name: str, obj: Any) -> None:
    from .adversarial.base import check_attack_class

    check_attack_class(name, obj)


TASKS: Registry = Registry("task", "ssrbench.tasks", validate=_check_task)
ATTACKS: Registry = Registry("attack kind", "ssrbench.attacks", validate=_check_attack)
MODES: Registry = Registry("training mode", "ssrbench.modes")
DATASETS: Registry = Registry("dataset", "ssrbench.datasets")
BACKBONES: Registry = Registry("backbone", "ssrbench.backbones")
