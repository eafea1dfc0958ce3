"""Optional dependencies (pip extras): which module each brings, and the one error when it is missing.
A leaf: it imports nothing of ssrbench but the errors."""

from __future__ import annotations

import importlib
import importlib.util
from types import ModuleType

from .errors import ConfigError

# extra (pip install 'ssrbench[<extra>]') -> the module it brings
EXTRA_MODULES = {
    "autoattack": "pyautoattack",
    "attacks": "torchattacks",
    "augment": "kornia",
    "plot": "matplotlib",
    "ray": "ray",
    "robustbench": "robustbench",
}


# how to install an extra where plain `pip install 'ssrbench[extra]'` is not all of it
INSTALL = {
    # robustbench pins timm==1.0.9: the extra brings its other requirements, robustbench goes in without them
    "robustbench": "pip install 'ssrbench[robustbench]' && pip install --no-deps robustbench==1.1.1",
}


def how_to_install(extra: str) -> str:
    return INSTALL.get(extra, f"pip install 'ssrbench[{extra}]'")


class MissingExtraError(ConfigError):
    """An optional dependency is not installed: the message names the extra that brings it (exit 2)."""


def installed(extra: str) -> bool:
    return importlib.util.find_spec(EXTRA_MODULES[extra]) is not None


def require(extra: str, what: str) -> ModuleType:
    """The extra's module, or a MissingExtraError naming ``what`` needs it and how to install it."""
    module = EXTRA_MODULES[extra]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtraError(
            f"{what} need{'s' if not what.endswith('s') else ''} {module}, which is not installed: "
            + how_to_install(extra)
        ) from exc
