"""Epoch checkpoints of a training stage, so a stage longer than a session is trained in pieces.

After every finished epoch but the last, ``train_epochs`` keeps everything the rest of the training
depends on -- weights and buffers, optimiser and schedule states, the data-order, device and global
random generators, the held-out monitor's readings -- beside the model cache's entries
(``ModelCache.save_partial``); the same stage started again continues from there, and on the same
machine ends with the weights of an uninterrupted run (``tests/test_resume.py``).
"""

from __future__ import annotations

import copy
import math
import time
import warnings
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .cache import ModelCache


@dataclass
class StageResume:
    """One stage's epoch checkpoints (its cache key), and what they hold once ``track`` names it."""

    cache: ModelCache
    key: str
    ignore_saved: bool = False  # --retrain: start from the first epoch whatever was kept
    seconds_before: float = 0.0  # training time of the runs that wrote the checkpoint resumed from
    model: nn.Module | None = None
    optimizers: Any = None  # the stage's optimiser groups: ``.main`` and ``.aux`` lists of (optimiser, schedule)
    history: list[float] = field(default_factory=list)
    _started: float = field(default_factory=time.perf_counter)

    def track(self, model: nn.Module, optimizers: Any, monitor: Any = None) -> StageResume:
        """What the stage's training changes from epoch to epoch: the model, its optimiser groups and the
        held-out monitor (whose ``history`` list of readings is kept and restored in place)."""
        self.model, self.optimizers = model, optimizers
        self.history = monitor.history if monitor is not None else []
        return self

    def _pairs(self) -> list:
        return self.optimizers.main + self.optimizers.aux

    def restore(self, epochs: int) -> dict[str, Any] | None:
        """Load the kept epoch into the tracked objects; its generator states, or None to start afresh."""
        if self.ignore_saved:
            self.cache.drop_partial(self.key)
            return None
        saved = self.cache.load_partial(self.key)
        if saved is None:
            return None
        untouched = self._snapshot()
        try:
            if (
                type(saved["epochs"]) is not int
                or type(saved["epoch"]) is not int
                or saved["epochs"] != epochs
                or not 0 < saved["epoch"] < epochs
                or len(saved["optimizers"]) != len(self._pairs())
            ):
                raise ValueError(
                    f"it stopped at epoch {saved['epoch']!r} of {saved['epochs']!r}, this stage has {epochs}"
                )
            self._check(saved)
            self._load((saved["model"], saved["optimizers"]))
            history, seconds = [float(v) for v in saved["history"]], float(saved["seconds"])
            states = {name: saved["rng"][name] for name in generator_names(self.model)}
            _check_generator_states(states, next(self.model.parameters()).device)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            self._load(untouched)  # whatever was half loaded: the stage starts as if nothing had been kept
            warnings.warn(
                f"epoch checkpoint {self.cache.partial_path(self.key)} does not fit this stage "
                f"({type(exc).__name__}: {str(exc)[:200]}); training it from its first epoch",
                stacklevel=1,
            )
            return None
        self.history[:], self.seconds_before = history, seconds
        return {"epoch": saved["epoch"], "rng": states}

    def _check(self, saved: dict[str, Any]) -> None:
        """Everything loaded from a kept epoch has the type and shape this stage's own state has, and its
        numbers are finite: a doctored or corrupt file is refused here, not found by a crash epochs later
        (``load_state_dict`` would take a wrong-shaped momentum buffer, a string learning rate, a float step
        count, and training would fail on them -- or record a NaN training time -- after hours)."""
        if not _number(saved["seconds"]) or saved["seconds"] < 0:
            raise ValueError(f"its training time {saved['seconds']!r} is not a number of seconds")
        if not isinstance(saved["history"], list) or not all(_number(v) for v in saved["history"]):
            raise ValueError("its held-out readings are not a list of numbers")
        _same_shape(saved["model"], self.model.state_dict(), "model")
        for i, ((opt, sched), kept) in enumerate(zip(self._pairs(), saved["optimizers"])):
            if not isinstance(kept, (tuple, list)) or len(kept) != 2 or not isinstance(kept[0], dict):
                raise ValueError(f"optimiser {i} is not an (optimiser, schedule) pair of states")
            own = opt.state_dict()
            if set(kept[0]) != set(own):
                raise ValueError(f"optimiser {i}'s state has other parts")
            _same_shape(kept[0]["param_groups"], own["param_groups"], f"optimiser {i}")
            _check_moments(kept[0]["state"], [p for group in opt.param_groups for p in group["params"]], i)
            _same_shape(kept[1], sched.state_dict(), f"schedule {i}")

    def _snapshot(self) -> tuple:
        return (
            copy.deepcopy(self.model.state_dict()),
            [(copy.deepcopy(opt.state_dict()), copy.deepcopy(sched.state_dict())) for opt, sched in self._pairs()],
        )

    def _load(self, snapshot: tuple) -> None:
        """Model state and (optimiser, schedule) states into the tracked objects: a kept epoch or a snapshot."""
        model_state, optimizers = snapshot
        self.model.load_state_dict(model_state)
        for (opt, sched), (opt_state, sched_state) in zip(self._pairs(), optimizers):
            opt.load_state_dict(opt_state)
            sched.load_state_dict(sched_state)

    def save(self, epoch: int, epochs: int, generators: dict[str, torch.Tensor]) -> None:
        self.cache.save_partial(
            self.key,
            {
                "epoch": epoch,
                "epochs": epochs,
                "seconds": self.seconds(),
                "history": list(self.history),
                "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
                "optimizers": [(opt.state_dict(), sched.state_dict()) for opt, sched in self._pairs()],
                "rng": generators,
            },
        )

    def seconds(self) -> float:
        """Training time of this stage so far, over every run that worked on it."""
        return self.seconds_before + time.perf_counter() - self._started


def _number(v: Any) -> bool:
    return type(v) in (int, float) and math.isfinite(v)


def _same_shape(kept: Any, own: Any, where: str) -> None:
    """``kept`` is built like ``own``: the same keys, lengths and types, tensors of the same dtype and shape,
    finite numbers (an int may stand for a float); None and strings as they are in ``own``."""
    if isinstance(own, torch.Tensor):
        if not isinstance(kept, torch.Tensor) or kept.dtype != own.dtype or kept.shape != own.shape:
            raise ValueError(f"{where} is not a {own.dtype} tensor of shape {tuple(own.shape)}")
    elif isinstance(own, dict):
        if not isinstance(kept, dict) or set(kept) != set(own):
            raise ValueError(f"{where} has other entries")
        for k in own:
            _same_shape(kept[k], own[k], f"{where}.{k}")
    elif isinstance(own, (list, tuple)):
        if not isinstance(kept, (list, tuple)) or len(kept) != len(own):
            raise ValueError(f"{where} has another length")
        for j, (a, b) in enumerate(zip(kept, own)):
            _same_shape(a, b, f"{where}[{j}]")
    elif type(own) is float:
        if not _number(kept):
            raise ValueError(f"{where} is {kept!r}, not a finite number")
    elif type(kept) is not type(own) or (own is None or isinstance(own, str)) and kept != own:
        raise ValueError(f"{where} is {kept!r}, not like {own!r}")


def _check_moments(state: Any, params: list[torch.Tensor], i: int) -> None:
    """An optimiser's per-parameter state (momentum, Adam's moments and step): tensors of the parameter's
    shape, or scalars, all finite, for parameters the optimiser has."""
    if not isinstance(state, dict) or not all(type(k) is int and 0 <= k < len(params) for k in state):
        raise ValueError(f"optimiser {i}'s per-parameter state is not for its parameters")
    for k, entry in state.items():
        if not isinstance(entry, dict):
            raise ValueError(f"optimiser {i}'s state of parameter {k} is not a dict")
        for name, v in entry.items():
            if v is None:
                continue
            if (
                not isinstance(v, torch.Tensor)
                or not v.is_floating_point()
                or v.dim()
                and v.shape != params[k].shape
                or not bool(torch.isfinite(v).all())
            ):
                raise ValueError(f"optimiser {i}'s {name} of parameter {k} is not finite values of its shape")


def generator_names(model: nn.Module) -> tuple[str, ...]:
    cuda = next(model.parameters()).device.type == "cuda"
    return ("order", "device", "torch", "cuda") if cuda else ("order", "device", "torch")


def _check_generator_states(states: dict, device: torch.device) -> None:
    """Each kept state loads into a generator of its kind (tried on throwaway ones first: a bad state must not
    leave the real generators half set)."""
    torch.Generator().set_state(states["order"])
    torch.Generator(device=device).set_state(states["device"])
    own = torch.get_rng_state()
    if (
        not isinstance(states["torch"], torch.Tensor)
        or states["torch"].dtype != own.dtype
        or states["torch"].shape != own.shape
    ):
        raise ValueError("the global generator's state has another shape")
    if "cuda" in states:
        own = torch.cuda.get_rng_state(device)
        if (
            not isinstance(states["cuda"], torch.Tensor)
            or states["cuda"].dtype != own.dtype
            or states["cuda"].shape != own.shape
        ):
            raise ValueError("the CUDA generator's state has another shape")


def generator_states(order_gen: torch.Generator, dev_gen: torch.Generator, device: torch.device) -> dict:
    states = {"order": order_gen.get_state(), "device": dev_gen.get_state(), "torch": torch.get_rng_state()}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def set_generator_states(
    states: dict, order_gen: torch.Generator, dev_gen: torch.Generator, device: torch.device
) -> None:
    order_gen.set_state(states["order"])
    dev_gen.set_state(states["device"])
    torch.set_rng_state(states["torch"])
    if device.type == "cuda":
        torch.cuda.set_rng_state(states["cuda"], device)
