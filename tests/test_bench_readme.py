"""The README's performance blocks are `python benchmarks/<bench>.py --readme` on the kept measurements."""

import importlib.util
import json
import re

import pytest

from .conftest import REPO


def _bench(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def _block(bench) -> str:
    readme = (REPO / "README.md").read_text()
    (block,) = re.findall(re.escape(bench.MARK[0]) + r"\n(.*?)\n" + re.escape(bench.MARK[1]), readme, re.DOTALL)
    return block.strip()


@pytest.mark.parametrize("name", ["bench_speed", "bench_ray"])
def test_readme_performance_block_is_generated_from_the_kept_measurement(name):
    bench = _bench(name)
    kept = json.loads((REPO / "benchmarks" / "results" / f"{name}.json").read_text())
    assert _block(bench) == bench.markdown(kept).strip()
    if name == "bench_speed":
        assert {r["what"] for r in kept["rows"]} == set(bench.TARGETS)  # every target measured
    else:  # both executors measured as often, on the same grid, every run complete
        runs = kept["runs"]
        assert sum(r["executor"] == "local" for r in runs) == sum(r["executor"] == "ray" for r in runs) >= 2
        assert len({r["cells"] for r in runs}) == 1
