"""`ssrbench run --executor ray` on a local Ray instance (started once for the module): the same cells
image for image as the local executor, a killed worker retried with the leaderboard unchanged, Ctrl-C
cancelling what is left while keeping the cached models, and the bad inputs of the issue."""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

import pytest
import ray
import torch
from click.testing import CliRunner

from ssrbench.cli import cli
from ssrbench.core.presets import resolve_preset
from ssrbench.core.progress import Reporter
from ssrbench.data.datasets import DATASETS
from ssrbench.leaderboard import store
from ssrbench.leaderboard.compare import compare
from ssrbench.run.ray_executor import RayExecutor, WorkerSettings
from ssrbench.run.runner import run
from ssrbench.run.spec import resolve
from ssrbench.training.cache import ModelCache

from .helpers import STAMP, error_line, make_cifar

# the smoke preset on timm's tiny model and synthetic images; both modes, so classifier-first's shared
# classifier is a unit the task-head stage waits for. One thread: the workers run with one (--cpus-per-task 1).
GRID = [
    "--preset",
    "smoke",
    "--backbone",
    "test_efficientnet",
    "--train-images",
    "128",
    "--batch-size",
    "32",
    "--eval-images",
    "32",
    "--tasks",
    "rotation",
    "--attacks",
    "fgsm",
    "--quiet",
    "--threads",
    "1",
]
OVERRIDES = {"backbone": "test_efficientnet", "train_images": 128, "batch_size": 32, "eval_images": 32}


@pytest.fixture(scope="module")
def ray_local():
    ray.init(num_cpus=2, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory) -> Path:
    return make_cifar(tmp_path_factory.mktemp("ray") / "data")


@pytest.fixture(scope="module")
def local_run(synthetic, tmp_path_factory) -> Path:
    """The reference: the local executor on the same grid (its leaderboard; its cache beside it)."""
    out = tmp_path_factory.mktemp("local") / "local.json"
    threads = torch.get_num_threads()
    try:
        res = _invoke(
            "run", *GRID, "--data-dir", synthetic, "--no-download", "--out", out, "--cache-dir", out.parent / "cache"
        )
    finally:
        torch.set_num_threads(threads)
    assert res.exit_code == 0, res.output
    return out


@pytest.fixture(scope="module")
def local_board(local_run):
    return store.load(local_run)


def _invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def _same_cells(a, b) -> None:
    assert [(c.task.name, c.mode, c.attack.name) for c in a.cells] == [
        (c.task.name, c.mode, c.attack.name) for c in b.cells
    ]
    for x, y in zip(a.cells, b.cells):
        assert x.weights_sha256 == y.weights_sha256
        for field in ("clean", "clean_rev", "adv", "adv_rev"):
            assert getattr(x, field).per_image == getattr(y, field).per_image, (x.mode, field)
        assert x.pretext.per_image == y.pretext.per_image
    result = compare(a, b)
    assert result and all(r.status == "compared" and r.weights == "same" for r in result)
    assert all(c.verdict == "unchanged" and c.delta == 0 for r in result for c in r.changes)


def _run_api(data_dir: Path, cache: Path, executor: RayExecutor):
    spec = resolve(
        ["rotation"], ["fgsm"], ["multitask", "classifier-first"], "smoke", resolve_preset("smoke", OVERRIDES), [0]
    )
    data = DATASETS.get(spec.dataset)(data_dir, download=False)
    with Reporter(quiet=True) as reporter:
        return run(
            spec, data, device=torch.device("cpu"), cache=ModelCache(cache), reporter=reporter, executor=executor
        )


def test_a_ray_grid_equals_the_local_run_image_for_image(ray_local, synthetic, local_board, tmp_path):
    out = tmp_path / "ray.json"
    res = _invoke(
        "run",
        *GRID,
        "--data-dir",
        synthetic,
        "--no-download",
        "--out",
        out,
        "--cache-dir",
        tmp_path / "cache",
        "--executor",
        "ray",
        "--cpus-per-task",
        "1",
        "--progress",
        "plain",
    )
    assert res.exit_code == 0, res.output
    board = store.load(out)
    _same_cells(local_board, board)
    # the workers' lines reach the driver's plain log, each prefixed with its node: an epoch, a model x attack
    log = [STAMP.sub("", line) for line in res.stderr.splitlines()]
    assert any(re.fullmatch(r"\[[^]]+\] train multitask/rotation: epoch 1/\d+ .* \| ETA \S+", x) for x in log), log
    assert any(
        re.fullmatch(r"\[[^]]+\] evaluate multitask/rotation: fgsm: adv \S+%, adv\+rev .*\| ETA \S+", x) for x in log
    ), log
    assert all(c.ran_on.executor == "ray" and c.ran_on.attempts == 1 and c.ran_on.threads == 1 for c in board.cells)
    # the same stages in the same order; each trained once, on a worker, and in the driver's cache at once
    assert [(r.stage, r.cached, r.key) for r in board.training] == [
        (r.stage, r.cached, r.key) for r in local_board.training
    ]
    assert all(r.ran_on is not None and r.ran_on.executor == "ray" for r in board.training if not r.cached)
    assert {p.stem for p in (tmp_path / "cache").glob("*.pt")} == {r.key for r in board.training}


def test_a_worker_killed_in_the_middle_of_a_unit_is_retried_and_nothing_changes(
    ray_local, synthetic, local_board, tmp_path
):
    kills: list[str] = []

    def kill_one_running_unit(snapshot: dict, done: set) -> None:
        """SIGKILL the worker of a running unit; if that unit finished first, try the next one."""
        if kills and (snapshot[kills[-1]]["attempts"] > 1 or kills[-1] not in done):
            return  # a kill landed (the unit was started again), or is still in flight
        for uid, entry in snapshot.items():
            if uid not in done and uid not in kills and entry["attempts"] == 1:
                os.kill(entry["pid"], signal.SIGKILL)
                kills.append(uid)
                return

    board = _run_api(
        synthetic,
        tmp_path / "cache",
        RayExecutor(settings=WorkerSettings(max_retries=2), observe=kill_one_running_unit),
    )
    _same_cells(local_board, board)
    retried = [c for c in board.cells if c.ran_on.attempts > 1] + [
        r for r in board.training if r.ran_on is not None and r.ran_on.attempts > 1
    ]
    assert kills and retried, f"no unit was killed while running (tried {kills})"


def test_ctrl_c_cancels_what_is_left_keeps_cached_models_and_writes_nothing(ray_local, synthetic, tmp_path):
    def interrupt_after_the_first_unit(snapshot: dict, done: set) -> None:
        if done:
            raise KeyboardInterrupt

    executor = RayExecutor(observe=interrupt_after_the_first_unit)
    with pytest.raises(KeyboardInterrupt):
        _run_api(synthetic, tmp_path / "cache", executor)
    assert executor.cancelled > 0  # units still queued or running were cancelled
    assert list((tmp_path / "cache").glob("*.pt")), "the finished stage is not in the driver's cache"


def test_an_unreachable_address_fails_in_seconds_and_trains_nothing(synthetic, tmp_path):
    t0 = time.monotonic()
    res = _invoke(
        "run",
        *GRID,
        "--data-dir",
        synthetic,
        "--no-download",
        "--out",
        tmp_path / "o.json",
        "--cache-dir",
        tmp_path / "cache",
        "--executor",
        "ray",
        "--address",
        "127.0.0.1:9",
    )
    assert res.exit_code == 2, res.output
    assert "127.0.0.1:9" in error_line(res) and "ray start --head" in error_line(res)
    assert time.monotonic() - t0 < 30
    assert not (tmp_path / "o.json").exists() and not list((tmp_path / "cache").glob("*.pt"))


def test_gpus_the_cluster_does_not_have_are_refused_not_waited_for(ray_local, synthetic, tmp_path):
    res = _invoke(
        "run",
        *GRID,
        "--data-dir",
        synthetic,
        "--no-download",
        "--out",
        tmp_path / "o.json",
        "--cache-dir",
        tmp_path / "cache",
        "--executor",
        "ray",
        "--gpus-per-task",
        "1",
    )
    assert res.exit_code == 2, res.output
    assert "--gpus-per-task 1" in error_line(res) and "GPU" in error_line(res)
    assert not list((tmp_path / "cache").glob("*.pt"))


def test_without_ray_the_error_names_the_extra(without_module, tmp_path):
    without_module("ray")
    res = _invoke("run", *GRID, "--out", tmp_path / "o.json", "--executor", "ray")
    assert res.exit_code == 2, res.output
    assert "ssrbench[ray]" in error_line(res)


@pytest.mark.parametrize("option", [["--address", "auto"], ["--cpus-per-task", "2"], ["--shared-cache"]])
def test_a_ray_option_without_the_ray_executor_is_an_error(option, tmp_path):
    res = _invoke("run", *GRID, "--out", tmp_path / "o.json", *option)
    assert res.exit_code == 2, res.output
    assert option[0] in res.output and "--executor ray" in res.output


def test_retrain_trains_a_shared_stage_once_per_run_not_once_per_model(tmp_path):
    """--retrain ignores what earlier runs cached, not what this run just trained: the classifier that
    every classifier-first model shares is trained once (the Ray units that wait for it rely on this)."""
    from types import SimpleNamespace

    from ssrbench.core.progress import Reporter
    from ssrbench.training.modes import _cached_or_train

    cache = ModelCache(tmp_path)
    cache.save("old", {"w": torch.zeros(1)}, {}, {})  # a previous run's entry
    ctx = SimpleNamespace(
        cache=ModelCache(tmp_path), retrain=True, reporter=Reporter(quiet=True), device=torch.device("cpu")
    )
    model = torch.nn.Linear(1, 1, bias=False)
    trained = []

    def train(resume):
        trained.append(1)
        return {}

    spec = {"stage": "shared"}
    first = _cached_or_train(ctx, "classifier", spec, model, model.state_dict, train)
    again = _cached_or_train(ctx, "classifier", spec, model, model.state_dict, train)
    assert len(trained) == 1 and not first.cached and again.cached and ctx.cache.fresh(first.key)
    assert not ctx.cache.fresh("old")


def test_zoo_only_takes_every_stage_from_the_zoo_even_with_a_shared_cache(
    ray_local, synthetic, local_run, local_board, tmp_path
):
    """A shared cache that holds the same keys is not read under --zoo-only: the local executor reads the zoo
    alone there, and so do the workers."""
    from ssrbench.run.reproduce import add_to_zoo
    from ssrbench.training.zoo import Zoo

    cache = local_run.parent / "cache"  # the reference run's weights: the zoo's, and the shared folder's
    board = local_board.model_copy(update={"git_dirty": False, "git_commit": "0" * 40})
    add_to_zoo(board, local_run, ModelCache(cache), Zoo(tmp_path / "zoo"))
    out = tmp_path / "ray.json"
    res = _invoke(
        "run",
        *GRID,
        "--data-dir",
        synthetic,
        "--no-download",
        "--out",
        out,
        "--cache-dir",
        cache,
        "--executor",
        "ray",
        "--cpus-per-task",
        "1",
        "--shared-cache",
        "--zoo-only",
        "--zoo-dir",
        tmp_path / "zoo",
    )
    assert res.exit_code == 0, res.output
    ray_board = store.load(out)
    assert ray_board.training and all(r.zoo_sha256 for r in ray_board.training), ray_board.training
    _same_cells(local_board, ray_board)
