"""Trained weights keyed by a hash of everything that determines them.

Adding an attack to a finished run, or changing the reverse attack, never retrains. A corrupt or
mismatching entry is reported and retrained, never a crash. A stage being trained keeps its last finished
epoch beside the entries (``<key>.partial.pt``), so a killed run resumes that stage where it stopped;
an evaluation keeps its finished batches the same way (``<key>.eval.pt``) until its run has built every cell.
"""

from __future__ import annotations

import io
import json
import math
import os
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..core.fileio import (
    UnwritableError,
    atomic_write,
    check_writable_dir,
    open_regular_file,
    read_regular_file,
    refusal_reason,
    sweep_stale_temps,
)
from ..core.hashing import config_hash
from .zoo import Layout, Zoo, ZooError, ZooManifestError

CACHE_DIR_ENV = "SSRBENCH_CACHE_DIR"
PARTIAL_FORMAT = 1  # layout of an epoch checkpoint (``<key>.partial.pt``)
PROGRESS_FORMAT = 1  # layout of an evaluation's kept batches (``<key>.eval.pt``)


def default_cache_dir() -> Path:
    env = os.environ.get(CACHE_DIR_ENV)
    return Path(env) if env else Path.home() / ".cache" / "ssrbench" / "models"


class ModelCache:
    """Trained weights on this machine, and behind them the zoo's reference weights (``zoo``): a stage is
    loaded from here, else from the zoo, else trained. ``zoo_only``: from the zoo or not at all -- a stage
    it lacks, or refuses, is an error (exit 2), never trained and never read from this machine's cache."""

    def __init__(
        self, root: Path | str | None = None, enabled: bool = True, zoo: Zoo | None = None, zoo_only: bool = False
    ):
        if zoo_only and zoo is None:
            raise ValueError("zoo_only needs a zoo")
        self.root = Path(root) if root else default_cache_dir()
        self.enabled = enabled
        self.zoo, self.zoo_only = zoo, zoo_only
        self._zoo_refused = False  # the zoo's manifest was refused (warned once)
        self._fresh: set[str] = set()  # keys saved through this object: trained in this run
        self._progress: set[str] = set()  # evaluations kept through this object, dropped once their run is done
        self._unwritable = False  # a write failed in this run (warned once)
        self._unsaved: dict[str, tuple[dict[str, torch.Tensor], dict[str, Any]]] = {}  # entries it failed to write

    def fresh(self, key: str) -> bool:
        """Was ``key`` trained in this run? --retrain retrains a stage once, not once per model using it."""
        return key in self._fresh

    def mark_fresh(self, key: str) -> None:
        self._fresh.add(key)

    def prepare(self) -> None:
        """Before any work: the folder must take files, and temp files of killed writers are removed."""
        if not self.enabled:
            return
        check_writable_dir(self.root, "--cache-dir")
        sweep_stale_temps(self.root)

    @staticmethod
    def key(spec: dict[str, Any]) -> str:
        return config_hash(spec)

    def _paths(self, key: str) -> tuple[Path, Path]:
        return self.root / f"{key}.pt", self.root / f"{key}.json"

    def partial_path(self, key: str) -> Path:
        """Where stage ``key``'s training keeps its last finished epoch until the stage is cached."""
        return self.root / f"{key}.partial.pt"

    def load_partial(self, key: str) -> dict[str, Any] | None:
        """The epoch checkpoint of stage ``key``, or None: absent, the cache off, or unreadable (warned, then
        the stage starts again from its first epoch -- never a crash, never code run from the file)."""

        def finite(state: dict[str, Any]) -> None:
            if not all_finite(state["model"]):
                raise ValueError("it holds NaN or infinite weights")

        return self._load_kept(
            self.partial_path(key),
            PARTIAL_FORMAT,
            key,
            "an epoch checkpoint of this stage",
            "epoch checkpoint",
            "training this stage from its first epoch",
            finite,
        )

    def save_partial(self, key: str, state: dict[str, Any]) -> None:
        self._save_kept(self.partial_path(key), PARTIAL_FORMAT, key, state)

    def drop_partial(self, key: str) -> None:
        if self.enabled:
            self.partial_path(key).unlink(missing_ok=True)

    def progress_path(self, key: str) -> Path:
        """Where evaluation ``key`` keeps its finished batches until its run has built every cell."""
        return self.root / f"{key}.eval.pt"

    def load_progress(self, key: str) -> dict[str, Any] | None:
        """Evaluation ``key``'s kept batches, or None: absent, the cache off, or unreadable (warned; the
        evaluation then starts from its first image -- never a crash, never code run from the file)."""
        state = self._load_kept(
            self.progress_path(key),
            PROGRESS_FORMAT,
            key,
            "the kept batches of this evaluation",
            "evaluation progress",
            "evaluating from the first image",
        )
        if state is not None:
            self._progress.add(key)
        return state

    def save_progress(self, key: str, state: dict[str, Any]) -> None:
        if self.enabled:
            self._progress.add(key)
        self._save_kept(self.progress_path(key), PROGRESS_FORMAT, key, state)

    def _load_kept(
        self,
        path: Path,
        fmt: int,
        key: str,
        what: str,
        name: str,
        then: str,
        check: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any] | None:
        """A kept file (epoch checkpoint or evaluation progress) of ``key``, loaded weights-only, its format and
        key checked (and ``check`` passed), or None: absent, the cache off, or unreadable (warned: ``then``)."""
        if not self.enabled or not path.exists():
            return None
        try:
            with open_regular_file(path) as fh:
                state = torch.load(fh, map_location="cpu", weights_only=True)
            if not isinstance(state, dict) or state.get("format") != fmt or state.get("key") != key:
                raise ValueError(f"not {what}")
            if check is not None:
                check(state)
            return state
        except Exception as exc:  # noqa: BLE001 - any unreadable file is simply not resumed from
            warnings.warn(f"{name} {path} is unreadable ({refusal_reason(exc)}); {then}", stacklevel=1)
            return None

    def _save_kept(self, path: Path, fmt: int, key: str, state: dict[str, Any]) -> None:
        if not self.enabled:
            return
        buf = io.BytesIO()
        torch.save({"format": fmt, "key": key, **state}, buf)
        self._write(path, buf.getvalue())

    def _write(self, path: Path, data: bytes) -> bool:
        """Write one cache file atomically. A cache that stops taking files mid-run (a full disk, a lost mount)
        is a fault, not an error: the run goes on without keeping this file (warned once per run), the old
        file, if any, is untouched, and no temp file is left behind."""
        try:
            atomic_write(path, lambda fh: fh.write(data))
            return True
        except UnwritableError as exc:
            if not self._unwritable:
                warnings.warn(
                    f"model cache {self.root} stopped taking files ({exc}); the run goes on without "
                    f"keeping models or progress there",
                    stacklevel=1,
                )
            self._unwritable = True
            return False

    def drop_progress(self) -> None:
        """Forget the evaluations kept by this run: called once every cell is built (a later run of the same
        command evaluates afresh, with its own timings)."""
        if self.enabled:
            for key in sorted(self._progress):
                self.progress_path(key).unlink(missing_ok=True)
        self._progress.clear()

    def load(self, key: str, layout: Layout | None = None) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
        """Stage ``key``'s weights and record: from this machine's cache, else from the zoo (``info`` then holds
        ``zoo_sha256``, the zoo file's hash), else None (train it). ``layout``: the model's tensors (names,
        shapes, dtypes), against which a zoo file is checked before a tensor is read."""
        if not self.zoo_only:
            local = self._load_local(key)
            if local is not None:
                return local
        return self._load_zoo(key, layout)

    def in_zoo(self, key: str) -> bool:
        """Would ``load`` look for ``key`` in the zoo and find it listed (not yet verified)?"""
        if self.zoo is None or (not self.zoo_only and self._load_local_exists(key)):
            return False
        try:
            return self.zoo.entry(key) is not None
        except ZooError:
            return False

    def _load_local_exists(self, key: str) -> bool:
        return self.enabled and (key in self._unsaved or self._paths(key)[0].exists())

    def _load_zoo(self, key: str, layout: Layout | None) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
        if self.zoo is None:
            return None
        try:
            if self.zoo.entry(key) is None:
                if self.zoo_only:
                    raise ZooError(
                        f"the weights of stage {key} are not in the zoo {self.zoo.root}; leave out "
                        f"--zoo-only to train them here"
                    )
                return None
            state, entry = self.zoo.load(key, layout)
        except ZooError as exc:
            if self.zoo_only:
                raise
            manifest = isinstance(exc, ZooManifestError)
            if not (manifest and self._zoo_refused):  # a refused manifest is said once, not once per stage
                warnings.warn(f"{exc}; training {'the stages' if manifest else 'this stage'} instead", stacklevel=1)
            self._zoo_refused = self._zoo_refused or manifest
            return None
        t = entry.training
        return state, {
            "seconds": t.seconds,
            "final_logs": dict(t.final_logs),
            "trained_on": dict(t.environment),
            "warnings": list(t.warnings),
            "zoo_sha256": entry.sha256,
        }

    def _load_local(self, key: str) -> tuple[dict[str, torch.Tensor], dict[str, Any]] | None:
        if not self.enabled:
            return None
        if key in self._unsaved:  # trained in this run, but the cache would not take it
            state, info = self._unsaved[key]
            return {k: v.clone() for k, v in state.items()}, dict(info)
        weights, meta = self._paths(key)
        if not weights.exists():
            return None
        try:
            with open_regular_file(weights) as fh:  # a FIFO or device planted in a shared cache cannot block
                state = torch.load(fh, map_location="cpu", weights_only=True)
            if not isinstance(state, dict) or not all(
                isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in state.items()
            ):
                raise ValueError("not a state dict of tensors")
            if not all_finite(state):
                raise ValueError("it holds NaN or infinite weights")
            if not meta.exists():  # the weights are written first: a writer killed between the two left this
                raise ValueError(f"its record {meta.name} is missing")
            info = json.loads(read_regular_file(meta).decode("utf-8"))
            _check_info(info, meta.name)
            return state, info
        except Exception as exc:  # noqa: BLE001 - any unreadable entry is simply retrained
            warnings.warn(
                f"model cache entry {weights} is unreadable ({refusal_reason(exc)}); retraining", stacklevel=1
            )
            return None

    def save(self, key: str, state: dict[str, torch.Tensor], spec: dict[str, Any], info: dict[str, Any]) -> None:
        self.mark_fresh(key)
        if not self.enabled:
            return
        if not all_finite(state):
            raise ValueError(f"refusing to cache model {key}: it holds NaN or infinite weights")
        weights, meta = self._paths(key)
        buf = io.BytesIO()
        torch.save({k: v.detach().cpu() for k, v in state.items()}, buf)
        record = json.dumps({"spec": spec, **info}, indent=2, default=str).encode("utf-8")
        if self._write(weights, buf.getvalue()):
            if self._write(meta, record):
                return
            weights.unlink(missing_ok=True)  # these weights beside another record (or none) are not an entry
        # kept for the rest of this run instead: later units load the shared classifier from here, not retrain it
        self._unsaved[key] = ({k: v.detach().cpu().clone() for k, v in state.items()}, json.loads(record))


def _check_info(info: Any, name: str) -> None:
    """A cache entry's record (``save``'s ``info``) holds what the run's leaderboard takes from it, typed as
    the leaderboard needs it: a wrong type would otherwise fail the run at its end, or be written as data."""

    def number(v: Any) -> bool:
        return type(v) in (int, float) and math.isfinite(v)

    if not isinstance(info, dict):
        raise ValueError(f"{name} is not a JSON object")
    if not number(info.get("seconds", 0.0)) or info.get("seconds", 0.0) < 0:
        raise ValueError(f"{name}: seconds is not a number of seconds")
    logs = info.get("final_logs", {})
    if not isinstance(logs, dict) or not all(number(v) for v in logs.values()):
        raise ValueError(f"{name}: final_logs is not an object of finite numbers")
    if not isinstance(info.get("trained_on", {}), dict):
        raise ValueError(f"{name}: trained_on is not an object")
    found = info.get("warnings", [])
    if not isinstance(found, list) or not all(isinstance(w, str) for w in found):
        raise ValueError(f"{name}: warnings is not a list of strings")


def all_finite(state: dict[str, torch.Tensor]) -> bool:
    return all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point())
