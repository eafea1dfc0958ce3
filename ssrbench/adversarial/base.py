"""The attack contract: a pydantic ``Params`` schema and a call that returns adversarial pixels."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, Any, ClassVar

import torch
from pydantic import BaseModel
from torch import nn

from ..core.budget import LinfBudget, ThreatModel
from ..core.registry import Registry

if TYPE_CHECKING:
    from ..defense.reverse import Defense


class Attack(ABC):
    """An attack kind; a named config in ``attacks/`` picks the kind and fills ``Params``.

    A non-adaptive attack sees only the classifier. An ``adaptive`` one also receives the defense
    (the reverse attack and its task) and attacks the defended model f(rev(x)).
    """

    Params: ClassVar[type[BaseModel]]
    version: ClassVar[str] = "1"
    adaptive: ClassVar[bool] = False

    def __init__(self, params: BaseModel | dict[str, Any]):
        self.params = params if isinstance(params, BaseModel) else self.Params(**params)
        self.stats: dict[str, float] = {}  # diagnostics of the last call (e.g. zero-gradient fraction)

    def threat_model(self) -> ThreatModel | None:
        """What this attack may do, recorded in every cell and read by the worst case and the sanity
        checks. Attacks whose ``Params`` is an L-inf budget get it for free; any other attack (another
        norm, other field names) must override this, or its cells join no budget comparison."""
        p = self.params
        return ThreatModel(norm="linf", eps=p.eps, steps=p.steps) if isinstance(p, LinfBudget) else None

    def cost(self, reverse_passes: float, randomised: bool = False) -> float:
        """Gradient passes per image, declared so a cascade (``run --cascade``) can run the cheapest attacks
        first and ``run --estimate`` can count a run: its threat model's steps (one for a one-step attack), and
        through the defense (adaptive) each step also passes the reverse attack's ``reverse_passes``, once per
        EOT draw of a ``randomised`` defense. An attack whose cost differs overrides it."""
        threat = self.threat_model()
        steps = max(1, threat.steps) if threat is not None else 1
        if not self.adaptive:
            return float(steps)
        return steps * self.draws(randomised) * (1 + reverse_passes)

    def draws(self, randomised: bool) -> int:
        """Draws of the defense per gradient step (EOT): one unless the attack averages a randomised one."""
        return 1

    @abstractmethod
    def perturb(
        self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, generator: torch.Generator, **kw
    ) -> torch.Tensor:
        """Adversarial images in [0, 1] inside the threat model. ``model`` maps pixels to logits."""

    def __call__(
        self,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        generator: torch.Generator,
        defense: Defense | None = None,
    ) -> torch.Tensor:
        if model.training:
            raise RuntimeError("attacks run on a model in eval mode (BatchNorm/dropout must not adapt)")
        self.stats = {}
        if self.adaptive:
            if defense is None:
                raise ValueError(f"{type(self).__name__} is adaptive: it needs the defense it attacks")
            return self.perturb(model, x, y, generator, defense=defense).detach()
        return self.perturb(model, x, y, generator).detach()


def check_attack_class(name: str, obj: Any) -> None:
    if not (isinstance(obj, type) and issubclass(obj, Attack)):
        raise TypeError(f"{name!r} must be a subclass of ssrbench.adversarial.base.Attack, got {obj!r}")
    if not (isinstance(getattr(obj, "Params", None), type) and issubclass(obj.Params, BaseModel)):
        raise TypeError(f"{name!r} must define a pydantic `Params` model")


ATTACKS: Registry[type[Attack]] = Registry("attack kind", "ssrbench.attacks", validate=check_attack_class)
