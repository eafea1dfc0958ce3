"""The README's performance block is `python benchmarks/bench_speed.py --readme` on the kept measurement."""

import importlib.util
import json
import re

from .conftest import REPO


def test_readme_performance_block_is_generated_from_the_kept_measurement():
    spec = importlib.util.spec_from_file_location("bench_speed", REPO / "benchmarks" / "bench_speed.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    kept = json.loads((REPO / "benchmarks" / "results" / "bench_speed.json").read_text())
    readme = (REPO / "README.md").read_text()
    (block,) = re.findall(re.escape(bench.MARK[0]) + r"\n(.*?)\n" + re.escape(bench.MARK[1]), readme, re.DOTALL)
    assert block.strip() == bench.markdown(kept).strip()
    assert {r["what"] for r in kept["rows"]} == set(bench.TARGETS)  # every target measured
