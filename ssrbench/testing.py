"""Deprecated: moved to ``ssrbench.run.testing``; this name is kept for one release so plugins keep working.

Importing it warns (DeprecationWarning) and gives the very module ``ssrbench.run.testing`` is, every name included."""

import sys
import warnings

from .run import testing as _moved

warnings.warn(
    "ssrbench.testing moved to ssrbench.run.testing: import from there (ssrbench.testing goes in the next release)",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = _moved
