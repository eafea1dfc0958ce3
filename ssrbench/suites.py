"""Named lists of attack configs (``run --adaptive``), kept as data beside the configs they name.

Each suite is ``attacks/suites/<name>.toml`` in the built-in attacks folder (shipped in the wheel with
it); a subfolder, because every ``attacks/*.toml`` is taken for an attack config.
"""

from __future__ import annotations

import tomllib

from .config import builtin_config_dir
from .errors import ConfigError


def attack_suite(name: str) -> tuple[str, ...]:
    """The attack config names of the built-in suite ``name``, in order."""
    path = builtin_config_dir("attacks") / "suites" / f"{name}.toml"
    try:
        with open(path, "rb") as fh:
            attacks = tomllib.load(fh).get("attacks")
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the {name!r} attack suite: {exc}") from exc
    if not (isinstance(attacks, list) and attacks and all(isinstance(a, str) and a for a in attacks)):
        raise ConfigError(f"{path}: `attacks` must be a non-empty list of attack config names")
    return tuple(attacks)
