"""Epoch checkpoints of a training stage, so a stage longer than a session is trained in pieces.

After every finished epoch but the last, ``train_epochs`` keeps everything the rest of the training
depends on -- weights and buffers, optimiser and schedule states, the data-order, device and global
random generators, the held-out monitor's readings -- beside the model cache's entries
(``ModelCache.save_partial``); the same stage started again continues from there, and on the same
machine ends with the weights of an uninterrupted run (``tests/test_resume.py``).
"""

from __future__ import annotations

import copy
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
            if saved["epochs"] != epochs or not 0 < saved["epoch"] < epochs or len(saved["optimizers"]) != len(self._pairs()):
                raise ValueError(f"it stopped at epoch {saved['epoch']} of {saved['epochs']}, this stage has {epochs}")
            self._load((saved["model"], saved["optimizers"]))
            history, seconds = [float(v) for v in saved["history"]], float(saved["seconds"])
            states = {name: saved["rng"][name] for name in generator_names(self.model)}
            _check_generator_states(states, next(self.model.parameters()).device)
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            self._load(untouched)  # whatever was half loaded: the stage starts as if nothing had been kept
            warnings.warn(f"epoch checkpoint {self.cache.partial_path(self.key)} does not fit this stage "
                          f"({type(exc).__name__}: {str(exc)[:200]}); training it from its first epoch")
            return None
        self.history[:], self.seconds_before = history, seconds
        return {"epoch": saved["epoch"], "rng": states}

    def _snapshot(self) -> tuple:
        return (copy.deepcopy(self.model.state_dict()),
                [(copy.deepcopy(opt.state_dict()), copy.deepcopy(sched.state_dict())) for opt, sched in self._pairs()])

    def _load(self, snapshot: tuple) -> None:
        """Model state and (optimiser, schedule) states into the tracked objects: a kept epoch or a snapshot."""
        model_state, optimizers = snapshot
        self.model.load_state_dict(model_state)
        for (opt, sched), (opt_state, sched_state) in zip(self._pairs(), optimizers):
            opt.load_state_dict(opt_state)
            sched.load_state_dict(sched_state)

    def save(self, epoch: int, epochs: int, generators: dict[str, torch.Tensor]) -> None:
        self.cache.save_partial(self.key, {
            "epoch": epoch, "epochs": epochs, "seconds": self.seconds(), "history": list(self.history),
            "model": {k: v.detach().cpu() for k, v in self.model.state_dict().items()},
            "optimizers": [(opt.state_dict(), sched.state_dict()) for opt, sched in self._pairs()],
            "rng": generators})

    def seconds(self) -> float:
        """Training time of this stage so far, over every run that worked on it."""
        return self.seconds_before + time.perf_counter() - self._started


def generator_names(model: nn.Module) -> tuple[str, ...]:
    cuda = next(model.parameters()).device.type == "cuda"
    return ("order", "device", "torch", "cuda") if cuda else ("order", "device", "torch")


def _check_generator_states(states: dict, device: torch.device) -> None:
    """Each kept state loads into a generator of its kind (tried on throwaway ones first: a bad state must not
    leave the real generators half set)."""
    torch.Generator().set_state(states["order"])
    torch.Generator(device=device).set_state(states["device"])
    own = torch.get_rng_state()
    if not isinstance(states["torch"], torch.Tensor) or states["torch"].dtype != own.dtype or states["torch"].shape != own.shape:
        raise ValueError("the global generator's state has another shape")
    if "cuda" in states:
        own = torch.cuda.get_rng_state(device)
        if not isinstance(states["cuda"], torch.Tensor) or states["cuda"].dtype != own.dtype or states["cuda"].shape != own.shape:
            raise ValueError("the CUDA generator's state has another shape")


def generator_states(order_gen: torch.Generator, dev_gen: torch.Generator, device: torch.device) -> dict:
    states = {"order": order_gen.get_state(), "device": dev_gen.get_state(), "torch": torch.get_rng_state()}
    if device.type == "cuda":
        states["cuda"] = torch.cuda.get_rng_state(device)
    return states


def set_generator_states(states: dict, order_gen: torch.Generator, dev_gen: torch.Generator,
                          device: torch.device) -> None:
    order_gen.set_state(states["order"])
    dev_gen.set_state(states["device"])
    torch.set_rng_state(states["torch"])
    if device.type == "cuda":
        torch.cuda.set_rng_state(states["cuda"], device)
