"""The task contract: everything a self-supervised task provides, and nothing it knows of the runner.

A task builds its heads on the shared feature map, gives a training loss, a deterministic
reverse-attack loss (one value per image, differentiable down to the pixels) and a per-image pretext
metric. The runner, the training modes and the attacks only ever call these.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from pydantic import BaseModel, ConfigDict, Field
from torch import nn

from ..core.registry import Registry
from ..models.backbone import FeatureSpec
from ..models.ssr_model import SSRModel


class TaskParams(BaseModel):
    """Fields every task has; a task's ``Params`` extends this (finite numbers only: a weight of "1e400"
    is inf, refused here rather than found as a diverged training)."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    multitask_weight: float = Field(1.0, ge=0.0, description="weight of the task loss beside cross-entropy")
    task_stages: int = Field(0, ge=0, le=8, description="last backbone stages copied out for the task (0 = all shared)")


@dataclass
class TaskLoss:
    loss: torch.Tensor  # minimised over the task heads (and the backbone in multitask mode)
    # shown and recorded per step: floats or detached 0-dim tensors (tensors are read by the host every few
    # steps in one synchronisation, not one per value per step, which stalls a GPU)
    logs: dict[str, float | torch.Tensor] = field(default_factory=dict)
    aux_loss: torch.Tensor | None = None  # minimised over ``aux_heads`` only, with their own optimiser


class PretextTask(ABC):
    name: ClassVar[str]
    version: ClassVar[str]  # bump whenever the task's behaviour changes: leaderboards record it
    Params: ClassVar[type[TaskParams]] = TaskParams
    metric_name: ClassVar[str]
    higher_is_better: ClassVar[bool]
    aux_heads: ClassVar[tuple[str, ...]] = ()  # e.g. a GAN discriminator, trained by ``aux_loss``
    # Does the task draw randomness at test time (e.g. augmented views)? Then ``reverse_loss`` and
    # ``pretext_metric`` take a keyword ``generator``, their only source of randomness; callers go through
    # ``loss_for_reverse`` / ``metric_for_eval``, so deterministic tasks keep the two-argument signature.
    randomized_eval: ClassVar[bool] = False

    def __init__(self, params: TaskParams | dict[str, Any] | None = None):
        self.params = params if isinstance(params, BaseModel) else self.Params(**(params or {}))

    @abstractmethod
    def build_heads(self, spec: FeatureSpec) -> dict[str, nn.Module]:
        """Modules on the shared feature map; attached as ``model.heads[name]``."""

    @abstractmethod
    def training_loss(self, model: SSRModel, x: torch.Tensor, generator: torch.Generator) -> TaskLoss:
        """Loss on a training batch of pixels in [0, 1]; may draw randomness from ``generator``."""

    @abstractmethod
    def reverse_loss(self, model: SSRModel, x: torch.Tensor) -> torch.Tensor:
        """Per-image loss the reverse attack minimises; deterministic unless ``randomized_eval``."""

    @abstractmethod
    def pretext_metric(self, model: SSRModel, x: torch.Tensor) -> torch.Tensor:
        """Per-image quality of the pretext task at evaluation (see ``metric_name``)."""

    def loss_for_reverse(self, model: SSRModel, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """``reverse_loss``, handed the defense's random stream when the task draws at test time."""
        if self.randomized_eval:
            return self.reverse_loss(model, x, generator=generator)
        return self.reverse_loss(model, x)

    def metric_for_eval(self, model: SSRModel, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
        """``pretext_metric``, handed a random stream when the task draws at test time."""
        if self.randomized_eval:
            return self.pretext_metric(model, x, generator=generator)
        return self.pretext_metric(model, x)

    def describe(self) -> dict[str, Any]:
        """Derived facts a leaderboard should record beside the params (e.g. a permutation-set fingerprint)."""
        return {}

    def preview(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """Optional: named image batches showing what the network sees (for `ssrbench peek`)."""
        return {}

    def attach(self, model: SSRModel) -> SSRModel:
        """Build the heads on ``model`` (and split off the task's own stages if configured)."""
        if self.params.task_stages:
            model.heads["task_branch"] = model.split(self.params.task_stages)
        heads = self.build_heads(model.spec)
        missing = set(self.aux_heads) - set(heads)
        if missing:
            raise TypeError(f"task {self.name!r} declares aux_heads {sorted(missing)} that build_heads does not build")
        for key, module in heads.items():
            if hasattr(module, "bind"):  # heads that mirror part of the backbone (e.g. BatchNormStats)
                module.bind(model.backbone)
            model.heads[key] = module
        return model


_REQUIRED = ("name", "version", "metric_name", "higher_is_better")


def check_task_class(name: str, obj: Any) -> None:
    """Reject a plugin that does not honour the contract, with the reason."""
    if not (isinstance(obj, type) and issubclass(obj, PretextTask)):
        raise TypeError(f"{name!r} must be a subclass of ssrbench.pretext.base.PretextTask, got {obj!r}")
    missing = [a for a in _REQUIRED if not hasattr(obj, a)]
    if missing:
        raise TypeError(f"task {name!r} does not define {', '.join(missing)}")
    if getattr(obj, "__abstractmethods__", None):
        raise TypeError(f"task {name!r} does not implement {', '.join(sorted(obj.__abstractmethods__))}")
    if not issubclass(obj.Params, TaskParams):
        raise TypeError(f"task {name!r}: Params must extend ssrbench.pretext.base.TaskParams")
    if obj.name != name:
        raise TypeError(f"task class says name={obj.name!r} but is registered as {name!r}")


TASKS: Registry[type[PretextTask]] = Registry("task", "ssrbench.tasks", validate=check_task_class)
