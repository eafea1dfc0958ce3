"""Make a real distribution visible to importlib.metadata: a dist-info folder on sys.path.

Building a wheel needs the build backend (hatchling), which a test may not have offline; a dist-info
folder written from the project's own ``pyproject.toml`` is what pip would leave, minus the copying.
"""

from __future__ import annotations

import shutil
import sys
import tomllib
from pathlib import Path


def install_fake_distribution(
    site: Path, name: str, version: str, entry_points: dict[str, dict[str, str]], modules: dict[str, str]
) -> Path:
    site.mkdir(parents=True, exist_ok=True)
    for module, source in modules.items():
        (site / f"{module}.py").write_text(source)
    info = site / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    lines = []
    for group, eps in entry_points.items():
        lines.append(f"[{group}]")
        lines += [f"{k} = {v}" for k, v in eps.items()]
    (info / "entry_points.txt").write_text("\n".join(lines) + "\n")
    (info / "RECORD").write_text("")
    if str(site) not in sys.path:
        sys.path.insert(0, str(site))
    return info


def install_project(site: Path, project: Path) -> Path:
    """Install a src-layout project as pip would: its packages copied into ``site``, with the name,
    version and entry points of its ``pyproject.toml`` (so a wrong entry point there fails the test)."""
    meta = tomllib.loads((project / "pyproject.toml").read_text())["project"]
    site.mkdir(parents=True, exist_ok=True)
    for package in (project / "src").iterdir():
        if (package / "__init__.py").is_file():
            shutil.copytree(package, site / package.name, ignore=shutil.ignore_patterns("__pycache__"))
    return install_fake_distribution(site, meta["name"], meta["version"], meta.get("entry-points", {}), {})
