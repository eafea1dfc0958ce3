"""Named lists of attack configs (``run --adaptive``), kept as data beside the configs they name.

Each suite is ``attacks/suites/<name>.toml`` in the built-in attacks folder (shipped in the wheel with
it); a subfolder, because every ``attacks/*.toml`` is taken for an attack config. A suite may add
configs that need an optional extra (``[extras.<extra>] attacks = [...]``); they join the suite when the
extra is installed, and are named as left out when it is not -- never dropped silently.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..core import extras
from ..core.errors import ConfigError
from ..core.extras import EXTRA_MODULES
from .config import builtin_config_dir, read_toml


@dataclass(frozen=True)
class Suite:
    name: str
    attacks: tuple[str, ...]  # always in the suite
    extras: dict[str, tuple[str, ...]] = field(default_factory=dict)  # extra -> configs that need it

    def available(self) -> tuple[str, ...]:
        """The suite as this installation runs it, in order: its own configs, then each installed extra's."""
        return self.attacks + tuple(a for e, names in self.extras.items() if extras.installed(e) for a in names)

    def left_out(self) -> list[str]:
        """One line per missing extra: which configs of the suite it leaves out, and how to install it."""
        return [
            f"the {self.name} suite leaves out {', '.join(names)}: they need {EXTRA_MODULES[e]} "
            f"({extras.how_to_install(e)})"
            for e, names in self.extras.items()
            if not extras.installed(e)
        ]

    def describe(self) -> str:
        extra = "".join(f"; with the {e} extra also {','.join(names)}" for e, names in self.extras.items())
        return ",".join(self.attacks) + extra


def _names(value, path, what) -> tuple[str, ...]:
    if not (isinstance(value, list) and value and all(isinstance(a, str) and a for a in value)):
        raise ConfigError(f"{path}: `{what}` must be a non-empty list of attack config names")
    return tuple(value)


def load_suite(name: str) -> Suite:
    path = builtin_config_dir("attacks") / "suites" / f"{name}.toml"
    try:
        doc = read_toml(path)
    except ConfigError as exc:
        raise ConfigError(f"cannot read the {name!r} attack suite: {exc}") from exc
    extras = {}
    for extra, table in (doc.get("extras") or {}).items():
        if extra not in EXTRA_MODULES:
            raise ConfigError(f"{path}: unknown extra {extra!r} (known: {', '.join(EXTRA_MODULES)})")
        extras[extra] = _names(
            table.get("attacks") if isinstance(table, dict) else None, path, f"extras.{extra}.attacks"
        )
    return Suite(name, _names(doc.get("attacks"), path, "attacks"), extras)


def attack_suite(name: str) -> tuple[str, ...]:
    """The attack config names of the built-in suite ``name``, in order, as this installation runs it."""
    return load_suite(name).available()
