"""The installed console script, run from an unrelated folder, as a user after `pip install .` would."""

import os
import subprocess
import sys
from pathlib import Path


def test_console_script_finds_builtin_configs_from_anywhere(tmp_path):
    script = Path(sys.executable).with_name("ssrbench")
    assert script.exists(), f"console script missing next to {sys.executable}: is ssrbench installed?"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SSRBENCH_CONFIG_DIRS")}
    # one process for both sections: starting ssrbench (torch, timm) is most of this test's time
    out = subprocess.run([str(script), "list"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    tasks, attacks = out.stdout.split("\nattacks", 1)[0], out.stdout.split("\nattacks", 1)[1].split("\nmodes", 1)[0]
    assert all(f"│ {n} " in tasks for n in ("inpaint", "jigsaw", "rotation"))
    assert all(f"│ {n} " in attacks for n in ("fgsm", "pgd2", "pgd10", "pgd20"))
