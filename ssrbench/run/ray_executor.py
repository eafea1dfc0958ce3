"""``ssrbench run --executor ray``: a run's units of work as Ray tasks, one leaderboard, the same numbers.

Units: a mode's shared stage (classifier-first's classifier, per seed), each model's own training stage
(which waits for the shared one), and each model's evaluation against every attack (which waits for its
training). Every unit runs the code the local executor runs (``build_shared``, ``build_model``,
``runner.evaluate_model``) with the same seeds, so with the same weights, device and threads each cell
is equal image for image to the local run's.

Weights never need a shared filesystem: a coordinator actor pinned to the driver's node owns the
driver's model cache, so a finished stage is in that cache at once (an interrupted run keeps it) and
the next unit loads it through Ray's object store. With ``--shared-cache`` the workers read and write
the cache folder themselves (a folder every node mounts at the same path).

Progress: a worker's Reporter writes its plain lines (stages' starts and ends, epochs, model x attack
results; per-batch lines rate-limited as anywhere) to the coordinator, and the driver writes what it
drained on every poll through its own Reporter, so a Ray run's log has the lines of a local one.
"""

from __future__ import annotations

import os
import socket
import time
from collections import deque
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, replace
from typing import Any

import torch

from ..core.errors import ConfigError, SSRBenchError
from ..core.extras import require
from ..core.progress import Reporter
from ..data.datasets import ImageDataset
from ..leaderboard.records import seeded
from ..leaderboard.robustness import BASE_MODE
from ..models.environment import make_deterministic
from ..pretext.base import TASKS
from ..training.cache import ModelCache
from ..training.modes import MODES, TrainingMode, build_model, build_shared
from ..training.zoo import Zoo
from .ray_address import parse_address
from .spec import RunSpec
from .units import ModelResult, ModelUnit, evaluate_model, ran_here, train_context

CONNECT_TIMEOUT_S = 5.0
POLL_S = 0.5
MAX_LINES = 10_000  # workers' progress lines the coordinator keeps between two polls; older ones are dropped


@dataclass(frozen=True)
class WorkerSettings:
    """How every unit runs on its worker: resources asked of Ray, and what the numbers depend on."""

    cpus: float = 1.0
    gpus: float = 0.0
    threads: int = 1
    deterministic: bool = False
    max_retries: int = 2
    shared_cache: bool = False  # workers use the cache folder directly (it is on a shared filesystem)

    @property
    def device(self) -> str:
        return "cuda" if self.gpus > 0 else "cpu"


class Coordinator:
    """A Ray actor on the driver's node: the driver's model cache for the workers, and a ledger of which
    unit started where, how often (a count above 1 is a retry after a worker died), and the workers'
    progress lines until the driver drains them."""

    def __init__(self, cache_root: str, cache_enabled: bool, zoo_root: str | None = None, zoo_only: bool = False):
        self.cache = ModelCache(cache_root, cache_enabled, zoo=Zoo(zoo_root) if zoo_root else None, zoo_only=zoo_only)
        self.memory: dict[str, tuple[dict, dict]] = {}  # this run's stages, also when the cache is disabled
        self.units: dict[str, dict[str, Any]] = {}
        self.lines: deque[tuple[str, str, int, str]] = deque(maxlen=MAX_LINES)  # (unit, node, attempt, line)
        self.dropped = 0

    def load(self, key: str, layout=None):
        return self.memory.get(key) or self.cache.load(key, layout)

    def save(self, key: str, state: dict, spec: dict, info: dict) -> None:
        self.cache.save(key, state, spec, info)
        self.memory[key] = (state, {"spec": spec, **info})

    def mark_fresh(self, key: str) -> None:
        """A worker saved ``key`` into the shared folder itself: it counts as trained in this run."""
        self.cache.mark_fresh(key)

    def fresh(self, key: str) -> bool:
        return self.cache.fresh(key)

    def started(self, unit: str, node: str, pid: int) -> int:
        entry = self.units.setdefault(unit, {"attempts": 0})
        entry.update(attempts=entry["attempts"] + 1, node=node, pid=pid, since=time.time())
        return entry["attempts"]

    def snapshot(self) -> dict[str, dict[str, Any]]:
        return {k: dict(v) for k, v in self.units.items()}

    def line(self, unit: str, line: str) -> None:
        """A progress line of ``unit``'s worker, with where (and on which attempt) it runs."""
        entry = self.units.get(unit, {})
        self.dropped += len(self.lines) == self.lines.maxlen
        self.lines.append((unit, entry.get("node", "?"), entry.get("attempts", 1), line))

    def poll(self) -> tuple[dict[str, dict[str, Any]], list[tuple[str, str, int, str]], int]:
        """The ledger, the lines since the last poll (oldest first; each of a unit the ledger has) and how many
        were dropped for want of room: in one call, so the driver can show a unit's start before its lines."""
        out, dropped = list(self.lines), self.dropped
        self.lines.clear()
        self.dropped = 0
        return self.snapshot(), out, dropped


class LineSink:
    """A worker Reporter's ``sink``: each line to the coordinator without waiting (an actor runs one caller's
    calls in order); ``flush`` waits for the last, so a unit's lines are drained no later than its result."""

    def __init__(self, coordinator, unit: str):
        self.coordinator, self.unit, self.last = coordinator, unit, None

    def __call__(self, line: str) -> None:
        self.last = self.coordinator.line.remote(self.unit, line)

    def flush(self) -> None:
        import ray

        if self.last is not None:
            ray.get(self.last)


class CoordinatedCache(ModelCache):
    """A worker's view of the driver's cache, through the coordinator (or the shared folder itself)."""

    def __init__(self, coordinator, root: str, enabled: bool, shared: bool):
        super().__init__(root, enabled)
        self.coordinator, self.shared = coordinator, shared

    def load(self, key, layout=None):
        import ray

        # the shared folder first; the zoo is the driver's (a worker's node may have no copy of it)
        found = super().load(key, layout) if self.shared else None
        return found or ray.get(self.coordinator.load.remote(key, layout))

    def save(self, key, state, spec, info):
        import ray

        state = {k: v.detach().cpu() for k, v in state.items()}
        if self.shared:
            super().save(key, state, spec, info)
            ray.get(self.coordinator.mark_fresh.remote(key))
        else:
            ray.get(self.coordinator.save.remote(key, state, spec, info))

    def fresh(self, key):
        import ray

        return ray.get(self.coordinator.fresh.remote(key))


def _has_shared_stage(mode: TrainingMode) -> bool:
    return type(mode).build_shared is not TrainingMode.build_shared


def run_unit(
    kind: str,
    unit_id: str,
    spec: RunSpec,
    unit: ModelUnit,
    data: ImageDataset,
    settings: WorkerSettings,
    coordinator,
    cache_root: str,
    cache_enabled: bool,
    retrain: bool,
    progress: bool,
    *_upstream,
) -> ModelResult:
    """One unit on a worker (``_upstream``: results of the units it waits for, passed so Ray orders them);
    with ``progress``, its plain progress lines go to the coordinator (the driver writes them)."""
    import ray

    node = ray.util.get_node_ip_address()
    attempts = ray.get(coordinator.started.remote(unit_id, node, os.getpid()))
    torch.set_num_threads(settings.threads)
    if settings.deterministic:
        make_deterministic()
    cache = CoordinatedCache(coordinator, cache_root, cache_enabled, settings.shared_cache)
    device = torch.device(settings.device)
    sink = LineSink(coordinator, unit_id) if progress else None
    reporter = Reporter(sink=sink) if sink else Reporter(quiet=True)
    t0 = time.perf_counter()
    try:
        if kind == "evaluate":
            result = evaluate_model(spec, unit, data, device=device, cache=cache, reporter=reporter)
        else:
            ctx = train_context(spec, data, unit.seed, device=device, cache=cache, reporter=reporter, retrain=retrain)
            mode = MODES.get(unit.mode)()
            built = (
                build_shared(mode, ctx)
                if kind == "shared"
                else build_model(mode, ctx, TASKS.get(unit.task.kind)(unit.task.params))
            )
            result = ModelResult(built.records if built else [], [])
    finally:
        if sink:
            sink.flush()
    return ran_here(result, time.perf_counter() - t0, device, executor="ray", node=node, attempts=attempts)


def check_address(address: str) -> None:
    """An address that cannot be reached fails in seconds, with the fix, before Ray tries for minutes."""
    parsed = parse_address(address)
    if parsed is None:  # auto, local: Ray finds or starts the cluster
        return
    try:
        socket.create_connection((parsed.host, parsed.port), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as exc:
        raise ConfigError(
            f"--address {address}: no Ray cluster answers there ({exc.strerror or exc}); start one "
            f"with `ray start --head` on that machine, or leave --address out for a local "
            f"instance"
        ) from None


def connect(address: str | None) -> bool:
    """Connect to Ray (an instance already started in this process is used as it is); True when this call
    started it, so the executor shuts it down again."""
    ray = require("ray", "--executor ray")
    if address is not None:
        check_address(address)
    if ray.is_initialized():
        return False
    try:
        ray.init(address=address, include_dashboard=False, logging_level="ERROR", log_to_driver=False)
    except ConnectionError as exc:
        raise ConfigError(
            f"--address {address}: {str(exc).strip().splitlines()[0]}; start a cluster with "
            f"`ray start --head`, or leave --address out for a local instance"
        ) from None
    return True


def check_resources(settings: WorkerSettings) -> None:
    """Units asking for more than any node has would wait forever: refused before any work."""
    import ray

    nodes = [n.get("Resources", {}) for n in ray.nodes() if n.get("Alive")]
    for what, asked, flag in (("CPU", settings.cpus, "--cpus-per-task"), ("GPU", settings.gpus, "--gpus-per-task")):
        most = max((r.get(what, 0.0) for r in nodes), default=0.0)
        if asked > most:
            raise ConfigError(
                f"{flag} {asked:g}: no node of the Ray cluster has {asked:g} {what}s (the most is "
                f"{most:g}); ask for at most {most:g}"
                + (", or leave --gpus-per-task out to run on CPUs" if what == "GPU" else "")
            )


class RayExecutor:
    """Units as Ray tasks; results in the local executor's order. ``observe(snapshot, done)`` is called on
    every poll with the coordinator's ledger and the finished unit ids (the progress view is one)."""

    name = "ray"

    def __init__(
        self,
        address: str | None = None,
        settings: WorkerSettings | None = None,
        observe: Callable[[dict, set], None] | None = None,
    ):
        self.address, self.settings, self.observe = address, settings or WorkerSettings(), observe
        self.cancelled: int = 0

    def run_units(self, spec, units, data, *, device, cache, reporter, retrain):
        import ray

        owns = connect(self.address)
        try:
            check_resources(self.settings)
            return self._run(ray, spec, units, data, cache, reporter, retrain)
        finally:
            if owns:
                ray.shutdown()

    def _run(self, ray, spec, units, data, cache, reporter, retrain):
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        # --zoo-only: every stage from the driver's zoo, as the local executor does -- never the shared folder
        s = replace(self.settings, shared_cache=False) if cache.zoo_only else self.settings
        here = ray.get_runtime_context().get_node_id()
        coordinator = (
            ray.remote(Coordinator)
            .options(num_cpus=0, scheduling_strategy=NodeAffinitySchedulingStrategy(here, soft=False))
            .remote(str(cache.root), cache.enabled, str(cache.zoo.root) if cache.zoo else None, cache.zoo_only)
        )
        remote = ray.remote(run_unit).options(num_cpus=s.cpus, num_gpus=s.gpus, max_retries=s.max_retries)
        data_ref = ray.put(data)
        several = spec.several_seeds
        common = (data_ref, s, coordinator, str(cache.root), cache.enabled, retrain, reporter.mode != "none")

        shared: dict[tuple[int, str], tuple[str, Any]] = {}
        refs: dict[str, Any] = {}
        for unit in units:  # every mode is judged against classifier-first's classifier: its stage comes first
            for mode in dict.fromkeys([BASE_MODE, unit.mode]):
                key = (unit.seed, mode)
                if key not in shared and _has_shared_stage(MODES.get(mode)()):
                    uid = seeded(f"train the stage {mode} shares", unit.seed, several)
                    shared[key] = (uid, remote.remote("shared", uid, spec, replace(unit, mode=mode), *common))
                    refs[uid] = shared[key][1]
        plan: list[tuple[ModelUnit, str, str]] = []  # (model unit, train unit, evaluate unit), in order
        for unit in units:
            label = unit.label(several)
            upstream = [
                shared[k][1] for k in dict.fromkeys([(unit.seed, unit.mode), (unit.seed, BASE_MODE)]) if k in shared
            ]
            train_ref = remote.remote("build", f"train {label}", spec, unit, *common, *upstream)
            refs[f"train {label}"] = train_ref
            refs[f"evaluate {label}"] = remote.remote("evaluate", f"evaluate {label}", spec, unit, *common, train_ref)
            plan.append((unit, f"train {label}", f"evaluate {label}"))

        results = self._wait(ray, refs, coordinator, reporter)
        shared_records = {r.key: r for uid, _ in shared.values() for r in results[uid].records}
        out = []
        for unit, train_id, eval_id in plan:
            # a model's records begin with its base's, as the local executor's do (the run keeps each stage once)
            base = results[shared[(unit.seed, BASE_MODE)][0]].records if unit.mode != BASE_MODE else []
            records = []
            for r in [*base, *results[train_id].records]:  # the shared stage as trained, where it first appears
                records.append(shared_records.pop(r.key) if r.key in shared_records else r)
            done = results[eval_id]
            out.append(ModelResult(records, done.cells, done.notes, done.cascades))
        return out

    def _wait(self, ray, refs: dict[str, Any], coordinator, reporter: Reporter) -> dict[str, ModelResult]:
        pending = {ref: uid for uid, ref in refs.items()}
        results: dict[str, ModelResult] = {}
        view = _UnitView(reporter, list(refs))
        try:
            with view:
                while pending:
                    ready, _ = ray.wait(list(pending), num_returns=len(pending), timeout=POLL_S)
                    # a unit's lines reach the coordinator before its result: a ready unit's are all here
                    snapshot, lines, dropped = ray.get(coordinator.poll.remote())
                    view.update(snapshot, set(results))  # units started: their bars, then their lines
                    view.forward(lines, dropped)
                    for ref in ready:
                        uid = pending.pop(ref)
                        results[uid] = _result(ray, uid, ref)
                    view.update(snapshot, set(results))
                    if self.observe is not None:
                        self.observe(snapshot, set(results))
        except BaseException:
            for ref in pending:  # Ctrl-C or a failed unit: nothing more runs; models cached so far stay cached
                ray.cancel(ref, force=True)
                self.cancelled += 1
            raise
        return results


def _result(ray, uid: str, ref) -> ModelResult:
    try:
        return ray.get(ref)
    except ray.exceptions.RayTaskError as exc:
        if isinstance(exc.cause, SSRBenchError):
            raise exc.cause from None
        raise SSRBenchError(
            f"{uid} failed on its Ray worker: {type(exc.cause).__name__}: "
            f"{str(exc.cause).strip().splitlines()[0] if str(exc.cause).strip() else ''}"
        ) from None
    except ray.exceptions.RayError as exc:  # a worker that died more often than --max-retries allows, ...
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise SSRBenchError(f"{uid} did not finish on Ray: {first}") from None


class _UnitView:
    """A progress bar per unit from when it runs on a node (a retry on another attempt is a milestone) to
    when it is done, and a total whose every finished unit is a milestone: in a plain log, a line as each
    unit starts, moves and ends, and one with the run's ETA per finished unit -- never one per poll."""

    def __init__(self, reporter: Reporter, units: list[str]):
        self.reporter, self.units = reporter, units
        self.stack = ExitStack()
        self.open: dict[str, tuple[ExitStack, Callable]] = {}  # units running: their bar
        self.shown: dict[str, str] = {}  # where (node, attempt) each running unit's bar says it runs
        self.done: set[str] = set()
        self.counted = 0  # finished units already added to the total bar

    def __enter__(self):
        self.total = self.stack.enter_context(self.reporter.bar("units on Ray", len(self.units), unit="units"))
        return self

    def __exit__(self, *exc):
        return self.stack.__exit__(*exc)  # a bar still open says where its unit stopped, and why

    def forward(self, lines: list[tuple[str, str, int, str]], dropped: int = 0) -> None:
        """The workers' progress lines, through the driver's Reporter (plain: lines; rich: logged), each
        prefixed with its node (and attempt) and, where the line does not begin with it, its unit."""
        for uid, node, attempts, line in lines:
            where = node + (f", attempt {attempts}" if attempts > 1 else "")
            self.reporter.log(f"[{where}] " + (line if line.startswith(uid) else f"{uid}: {line}"))
        if dropped:
            self.reporter.log(
                f"{dropped} progress lines of the workers left out: more came between two polls than "
                f"the coordinator keeps ({MAX_LINES})",
                style="yellow",
            )

    def update(self, snapshot: dict, finished: set[str]) -> None:
        retried = 0
        for uid in self.units:
            entry = snapshot.get(uid)
            attempts = entry["attempts"] if entry else 0
            retried += attempts > 1
            if uid in self.done or not (entry or uid in finished):
                continue  # done and shown, or still queued
            again = f" (attempt {attempts}: retried)" if attempts > 1 else ""
            where = f"on {entry['node'] if entry else '?'}{again}"
            if uid not in self.open:
                unit_stack = self.stack.enter_context(ExitStack())
                advance = unit_stack.enter_context(self.reporter.bar(uid, 1, unit="unit", info=f"running {where}"))
                self.open[uid] = (unit_stack, advance)
                self.shown[uid] = where
            unit_stack, advance = self.open[uid]
            if uid in finished:
                self.done.add(uid)
                advance(1, f"done {where}")
                unit_stack.close()
            elif self.shown[uid] != where:
                self.shown[uid] = where
                advance(0, f"running {where}", milestone=True)
        running = sum(1 for uid in self.units if uid in snapshot and uid not in finished)
        new, self.counted = len(finished) - self.counted, len(finished)
        self.total(
            new,
            f"{len(finished)} done, {running} running, {len(self.units) - len(finished) - running} "
            f"queued, {retried} retried",
            milestone=new > 0,
        )
