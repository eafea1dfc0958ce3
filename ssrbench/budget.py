"""Deprecated: moved to ``ssrbench.core.budget``; this name is kept for one release so plugins keep working.

Importing it warns (DeprecationWarning) and gives the very module ``ssrbench.core.budget`` is, every name included."""

import sys
import warnings

from .core import budget as _moved

warnings.warn(
    "ssrbench.budget moved to ssrbench.core.budget: import from there (ssrbench.budget goes in the next release)",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = _moved
