"""The ``ssrbench`` command: the Click group and what its commands share (``app``), one module per family of
commands (``run_command``, ``results``, ``plugins``, ``zoo``), the option types (``types``), the tables of
``ssrbench list`` (``catalogue``) and the pictures of ``ssrbench peek`` (``preview``)."""

from . import plugins, results, run_command, zoo  # noqa: F401 - each registers its commands on the group
from .app import cli, main

__all__ = ["cli", "main"]
