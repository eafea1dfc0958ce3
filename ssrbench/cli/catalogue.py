"""What can be named in ``ssrbench run``, as tables: the content of ``ssrbench list``.

Kept out of the command line so that it only chooses sections and prints them. Every cell is text
(``ssrbench.core.plaintext``): names, descriptions and errors come from config files and plugins' metadata.
"""

from __future__ import annotations

from pathlib import Path

from rich.table import Table
from rich.text import Text

from ..adversarial.base import ATTACKS
from ..core.budget import format_budget
from ..core.errors import SSRBenchError
from ..core.plaintext import text
from ..core.presets import PRESETS, preset_fields
from ..data.datasets import DATASETS
from ..models.backbone import BACKBONES, SPATIAL_ONLY
from ..pretext.base import TASKS
from ..run.config import load_attack_config, load_task_config, named_files
from ..training.modes import MODES

BACKBONE_CAPTION = (
    "any other timm model name works too, adapted to 32x32 (see timm.list_models()): "
    + SPATIAL_ONLY
    + "; `ssrbench run` checks it before any work"
)

SECTIONS = ("tasks", "attacks", "modes", "backbones", "datasets", "presets")
ERROR = Text("error", style="red")


def _row(t: Table, *cells) -> None:
    """A row of text: what a config or a plugin says is shown, never read as markup."""
    t.add_row(*[c if isinstance(c, Text) else text(c, keep="\n") for c in cells])


def table(section: str, config_dirs: list[Path] | None = None) -> Table:
    """The table of one of ``SECTIONS``; ``config_dirs`` are the user's extra named-config folders."""
    if section == "tasks":
        return tasks_table(config_dirs)
    if section == "attacks":
        return attacks_table(config_dirs)
    if section == "presets":
        return presets_table()
    return registry_table(section)


def tasks_table(config_dirs: list[Path] | None = None) -> Table:
    """Every task config with the file it comes from ("<where>: <file>"); a broken one shows its error."""
    dirs = list(config_dirs or [])
    named = named_files("tasks", dirs)
    t = Table(title="tasks", title_justify="left")
    for col in ("name", "task", "version", "from", "reverse attack", "config"):
        t.add_column(col)
    for name in sorted(set(named) | set(TASKS.names())):
        config = str(named.get(name, "(defaults)"))
        try:
            cfg = load_task_config(name, dirs)
        except SSRBenchError as exc:
            _row(t, name, ERROR, "", "", str(exc), config)
            continue
        cls, origin = TASKS.get(cfg.kind), TASKS.origin(cfg.kind)
        r = cfg.reverse
        _row(
            t,
            name,
            cfg.kind,
            cls.version,
            f"{origin.distribution} {origin.version}",
            f"{r.steps} steps, eps {format_budget(r.eps)}, step {format_budget(r.step_size)}",
            config,
        )
    return t


def attacks_table(config_dirs: list[Path] | None = None) -> Table:
    """Every attack config with its parameters and the file it comes from; a broken one shows its error."""
    dirs = list(config_dirs or [])
    named = named_files("attacks", dirs)
    t = Table(title="attacks", title_justify="left")
    for col in ("name", "kind", "params", "config", "description"):
        t.add_column(col)
    for name in sorted(set(named) | set(ATTACKS.names())):
        config = str(named.get(name, "(defaults)"))
        try:
            cfg = load_attack_config(name, dirs)
        except SSRBenchError as exc:
            _row(t, name, ERROR, str(exc), config, "")
            continue
        params = ", ".join(f"{k}={_budget(v)}" for k, v in cfg.params.items())
        _row(t, name, cfg.kind, params, config, cfg.description)
    return t


def presets_table() -> Table:
    """Every preset's value of every field, one row per field, named as its ``run`` option."""
    t = Table(title="presets", title_justify="left")
    t.add_column("option")
    for name in PRESETS:
        t.add_column(name, justify="right")
    for f in preset_fields():
        _row(t, f"--{f.name.replace('_', '-')}", *[str(getattr(p, f.name)) for p in PRESETS.values()])
    return t


def registry_table(section: str) -> Table:
    """The training modes, backbones or datasets installed, with the distribution each comes from."""
    reg = {"modes": MODES, "backbones": BACKBONES, "datasets": DATASETS}[section]
    t = Table(title=section, title_justify="left")
    t.add_column("name")
    t.add_column("from")
    t.add_column("about")
    for name in reg.names():
        obj, origin = reg.get(name), reg.origin(name)
        about = getattr(obj, "description", None) or (obj.__doc__ or "").strip().split("\n")[0]
        _row(t, name, f"{origin.distribution} {origin.version}", about)
    if section == "backbones":
        t.caption = BACKBONE_CAPTION
    return t


def _budget(v) -> str:
    """A pixel budget in (0, 1) as papers write it (8/255); anything else as it is."""
    return format_budget(v) if isinstance(v, float) and 0 < v < 1 else str(v)
