"""The attack contract: a pydantic ``Params`` schema and a call that returns adversarial pixels."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

import torch
from pydantic import BaseModel
from torch import nn


class Attack(ABC):
    """An attack kind; a named config in ``attacks/`` picks the kind and fills ``Params``."""

    Params: ClassVar[type[BaseModel]]
    version: ClassVar[str] = "1"

    def __init__(self, params: BaseModel | dict[str, Any]):
        self.params = params if isinstance(params, BaseModel) else self.Params(**params)

    @abstractmethod
    def perturb(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        """Adversarial images in [0, 1] inside the threat model. ``model`` maps pixels to logits."""

    def __call__(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        if model.training:
            raise RuntimeError("attacks run on a model in eval mode (BatchNorm/dropout must not adapt)")
        return self.perturb(model, x, y, generator).detach()


def check_attack_class(name: str, obj: Any) -> None:
    if not (isinstance(obj, type) and issubclass(obj, Attack)):
        raise TypeError(f"{name!r} must be a subclass of ssrbench.adversarial.base.Attack, got {obj!r}")
    if not (isinstance(getattr(obj, "Params", None), type) and issubclass(obj.Params, BaseModel)):
        raise TypeError(f"{name!r} must define a pydantic `Params` model")
