"""Perturbation budgets and threat models: value types shared by attacks, the reverse attack and the
leaderboard (a leaf: it imports only ssrbench.core.limits, the number rule)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from .limits import MAX_STEPS, parse_number


def _fraction(value: Any) -> Any:
    """Accept budgets written as "8/255" -- how papers state them -- as well as plain floats, by the one
    number rule of the command line (a finite float; "1e400" is an error naming it, not an OverflowError)."""
    if isinstance(value, (str, int, float)) and not isinstance(value, bool):
        return parse_number(value)
    return value


PixelBudget = Annotated[float, BeforeValidator(_fraction), Field(ge=0.0, le=1.0)]


def format_budget(eps: float) -> str:
    """A budget as ssrbench writes it everywhere -- sweep point names, tables, pages: 8/255 for a multiple of
    1/255 (how papers write budgets), else the number. ``PixelBudget`` (``parse_number``) reads either back."""
    k = eps * 255
    return f"{round(k)}/255" if abs(k - round(k)) < 1e-6 else f"{eps:g}"


class LinfBudget(BaseModel):
    """L-inf projected gradient steps: the one budget type of the adversary's PGD and the reverse attack.

    Subclasses only change defaults (and may narrow bounds); the validation is shared.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    eps: PixelBudget = 8 / 255
    step_size: PixelBudget = 2 / 255
    steps: int = Field(10, ge=0, le=MAX_STEPS)
    random_start: bool = False

    @model_validator(mode="after")
    def _step_reaches_somewhere(self) -> LinfBudget:
        if self.eps > 0 and self.steps > 0 and self.step_size == 0:
            raise ValueError("step_size must be > 0 when eps > 0 and steps > 0")
        return self


class ReverseConfig(LinfBudget):
    """The reverse attack: L-inf PGD that minimises the task's self-supervised loss (from the clean
    image, deterministic unless ``random_start``)."""


class ThreatModel(BaseModel):
    """What an attack is allowed to do, as every cell records it: the worst case and the sanity checks
    read this, never an attack's parameter names. ``probe`` marks a sanity probe (e.g. eps = 128/255),
    which must drive accuracy to ~0 and is no threat model of its own."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)
    norm: Literal["linf", "l2", "l1", "l0", "other"]
    eps: float = Field(ge=0)
    steps: int = Field(1, ge=0)
    probe: bool = False

    def at_most(self, other: ThreatModel) -> bool:
        """Same norm, and no more budget or steps than ``other``."""
        return self.norm == other.norm and self.eps <= other.eps and self.steps <= other.steps
