"""The performance page's blocks are `python benchmarks/<bench>.py --readme` on the kept measurements."""

import importlib.util
import json
import re

import pytest

from .conftest import REPO
from .helpers import doc_pages


def _bench(name: str):
    spec = importlib.util.spec_from_file_location(name, REPO / "benchmarks" / f"{name}.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench


def _block(marks: tuple[str, str]) -> str:
    readme = "\n".join(p.read_text(encoding="utf-8") for p in doc_pages())
    (block,) = re.findall(re.escape(marks[0]) + r"\n(.*?)\n" + re.escape(marks[1]), readme, re.DOTALL)
    return block.strip()


@pytest.mark.parametrize(
    "name,kept",
    [
        ("bench_speed", "bench_speed.json"),
        ("bench_speed", "bench_speed_cuda.json"),
        ("bench_ray", "bench_ray.json"),
        ("bench_eot", "bench_eot.json"),
        ("bench_autoattack", "bench_autoattack.json"),
    ],
)
def test_readme_performance_block_is_generated_from_the_kept_measurement(name, kept):
    bench = _bench(name)
    result = json.loads((REPO / "benchmarks" / "results" / kept).read_text())
    assert _block(bench.marks(result) if name == "bench_speed" else bench.MARK) == bench.markdown(result).strip()
    if name == "bench_speed":
        assert {r["what"] for r in result["rows"]} == set(bench.TARGETS)  # every target measured
        assert any("torch.compile" in r["what"] for r in result["options"])  # and what the options buy
        on_gpu = result["environment"]["device"].startswith("cuda")
        assert on_gpu == (kept == "bench_speed_cuda.json")  # each block from its own device
        assert on_gpu == any("bf16" in r["what"] for r in result["options"])
    elif name == "bench_autoattack":  # the three sides on the same images, each target judged by the kept numbers
        assert result["images"] == 1000 and set(result["runs"]) == {"direct", "ssrbench", "torchattacks"}
        for what, (op, target) in bench.TARGETS.items():  # "met" is what the measured value says
            assert result["met"][what] == (result["measured"][what] <= target) and op == "<="
    elif name == "bench_eot":  # both forms measured as often, from one run on a CPU
        assert len(result["seconds"]["loop"]) == len(result["seconds"]["batched"]) == result["repeats"] >= 5
        assert result["environment"]["device"] == "cpu"
    else:  # both executors measured as often, on the same grid, every run complete
        runs = result["runs"]
        assert sum(r["executor"] == "local" for r in runs) == sum(r["executor"] == "ray" for r in runs) >= 2
        assert len({r["cells"] for r in runs}) == 1


def test_readme_whole_run_block_is_generated_from_the_kept_runs():
    from ssrbench.leaderboard import store

    bench = _bench("bench_run")
    boards = [store.load(REPO / p) for p in bench.KEPT]
    assert _block(bench.MARK) == bench.markdown(boards).strip()
    cold = boards[0]
    trained = {r.stage for r in cold.training if not r.cached}
    assert trained == {r.stage for r in cold.training} and cold.git_dirty is False  # cold, from a clean checkout
    for b in boards:
        assert sum(sec for _, sec in bench.phases(b)) == pytest.approx(b.seconds_total)


def test_cascade_block_is_generated_and_its_numbers_are_the_kept_leaderboards():
    """The cascade benchmark's block, and what it says checked against the two leaderboards it kept: the grid's
    worst case per image is the cascade's, its attack seconds are the cells', and the cascade did less."""
    from ssrbench.leaderboard import store

    bench = _bench("bench_cascade")
    kept = json.loads((REPO / "benchmarks" / "results" / "bench_cascade.json").read_text())
    assert _block(bench.MARK) == bench.markdown(kept).strip()
    folder = REPO / "benchmarks" / "results" / "bench_cascade"
    grid, cascade = store.load(folder / "grid.json"), store.load(folder / "cascade.json")
    assert grid.cells and not grid.cascades and cascade.cascades and not cascade.cells
    assert [r for r in bench.compare(grid, cascade)["rows"]] == [
        {k: v for k, v in r.items() if k != "met"} for r in kept["rows"]
    ]
    for r in kept["rows"]:
        op, target = bench.TARGETS["attack time, grid / cascade"]
        assert r["met"] == (
            r["grid_attack_seconds"] / r["cascade_attack_seconds"] >= target and not r["defended_differ"]
        )
        assert r["defended_differ"] == r["undefended_differ"] == 0 and r["ran_on"][0] == r["images"] > r["ran_on"][-1]
    assert [c.command for c in (grid, cascade)] == kept["commands"]
