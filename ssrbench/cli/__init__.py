"""The ``ssrbench`` command: the Click group and its commands (``commands``), the option types (``types``),
the tables of ``ssrbench list`` (``catalogue``) and the pictures of ``ssrbench peek`` (``preview``)."""

from .commands import cli, main

__all__ = ["cli", "main"]
