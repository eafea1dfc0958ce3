"""Deprecated: moved to ``ssrbench.run.config``; this name is kept for one release so plugins keep working.

Importing it warns (DeprecationWarning) and gives the very module ``ssrbench.run.config`` is, every name included."""

import sys
import warnings

from .run import config as _moved

warnings.warn(
    "ssrbench.config moved to ssrbench.run.config: import from there (ssrbench.config goes in the next release)",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = _moved
