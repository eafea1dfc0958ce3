"""The installed console script, run from an unrelated folder, as a user after `pip install .` would."""

import os
import subprocess
import sys
from pathlib import Path


def test_console_script_finds_builtin_configs_from_anywhere(tmp_path):
    script = Path(sys.executable).with_name("ssrbench")
    assert script.exists(), f"console script missing next to {sys.executable}: is ssrbench installed?"
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "SSRBENCH_CONFIG_DIRS")}
    for what, names in (("tasks", ("inpaint", "jigsaw", "rotation")), ("attacks", ("fgsm", "pgd2", "pgd10", "pgd20"))):
        out = subprocess.run([str(script), "list", what], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        assert out.returncode == 0, out.stderr
        assert all(n in out.stdout for n in names)
