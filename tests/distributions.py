"""Make a real distribution visible to importlib.metadata: a dist-info folder on sys.path."""

from __future__ import annotations

import sys
from pathlib import Path


def install_fake_distribution(site: Path, name: str, version: str, entry_points: dict[str, dict[str, str]],
                              modules: dict[str, str]) -> Path:
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
