"""Budget sweeps: every named attack and task config of a run expanded over a grid of budgets.

Curves, not single points: one cell per (attack eps, attack steps, reverse eps, reverse steps) point,
each with its own recorded params, on the same trained models (a task config's reverse attack is not
part of its model's cache key) and the same images, so points are paired. A step size scales with
its eps (PGD's 2/255 at 8/255 stays eps / 4), so a point differs from its config in the swept value.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

from pydantic import ValidationError

from ..adversarial.base import ATTACKS
from ..core.budget import format_budget
from ..core.errors import ConfigError, format_validation_error
from ..core.limits import MAX_STEPS, parse_number, shown
from ..leaderboard.records import SweepPoint
from .config import AttackConfig, TaskConfig, validated_params


@dataclass(frozen=True)
class Grid:
    """The swept values (None: the config's own value, not swept)."""

    attack_eps: tuple[float, ...] | None = None
    attack_steps: tuple[int, ...] | None = None
    reverse_eps: tuple[float, ...] | None = None
    reverse_steps: tuple[int, ...] | None = None

    def __bool__(self) -> bool:
        return any(v is not None for v in asdict(self).values())

    def record(self) -> dict:
        return {k: list(v) for k, v in asdict(self).items() if v is not None}


label = format_budget  # a sweep point's budget in its name: the one form (core.budget)


def parse_budgets(text: str) -> tuple[float, ...]:
    """ "1/255,2/255,0.1" -> budgets in [0, 1]; a bad item is a ValueError naming it."""
    items = [t.strip() for t in text.split(",") if t.strip()]
    if not items:
        raise ValueError(f"{text!r} lists no value; give e.g. 1/255,2/255,4/255")
    out = []
    for t in items:
        v = parse_number(t)  # a ValueError naming t: not a number, too large, not finite
        if not 0 <= v <= 1:
            raise ValueError(f"{shown(t)} = {v:g} is outside [0, 1] (pixels are in [0, 1])")
        out.append(v)
    return tuple(dict.fromkeys(out))


def parse_steps(text: str, minimum: int) -> tuple[int, ...]:
    """ "1,2,5" or a range "1..10" (inclusive) -> step counts in ``minimum``..MAX_STEPS; each bound is
    checked before a range becomes a list, so "1..3000000000" is an error, not a MemoryError."""
    out: list[int] = []
    for t in (t.strip() for t in text.split(",")):
        if not t:
            continue
        lo, sep, hi = t.partition("..")
        try:
            ends = (int(lo), int(hi)) if sep else (int(t),)
        except ValueError:
            raise ValueError(f"{shown(t)} is not a whole number or a range like 1..10") from None
        for n in ends:
            if n < minimum:
                raise ValueError(f"{n} steps is below the minimum of {minimum}")
            if n > MAX_STEPS:
                raise ValueError(f"{shown(n)} steps is above the maximum of {MAX_STEPS}")
        out += list(range(ends[0], ends[-1] + 1))
    if not out:
        raise ValueError(f"{shown(text)} lists no value; give e.g. 1,2,5,10 or 1..10")
    return tuple(dict.fromkeys(out))


def _scaled_step(params: dict, eps: float) -> dict:
    old_eps, step = params.get("eps"), params.get("step_size")
    if step is None:
        return {}
    return {"step_size": step * eps / old_eps if old_eps else step}


def _budget_points(base: dict, eps_values, steps_values):
    """Every (eps, steps) of the grid applied to a budget's values: (values, swept eps, swept steps) per point."""
    for eps in eps_values or (None,):
        for steps in steps_values or (None,):
            values = dict(base)
            if eps is not None:
                values |= {"eps": eps, **_scaled_step(base, eps)}
            if steps is not None:
                values["steps"] = steps
            yield values, eps, steps


def point_name(point: SweepPoint, eps_tag: str, steps_tag: str) -> str:
    """A point's name, written from its coordinates (``pgd10@eps=4/255``): for tables and messages; what
    reads a point reads ``SweepPoint``, never this."""
    parts = [f"{eps_tag}={label(point.eps)}"] if point.eps is not None else []
    parts += [f"{steps_tag}={point.steps}"] if point.steps is not None else []
    return f"{point.of}@{','.join(parts)}"


def attack_points(cfg: AttackConfig, grid: Grid) -> list[AttackConfig]:
    cls = ATTACKS.get(cfg.kind)
    base = dict(cfg.params)  # validated in full when the config was loaded
    if grid.attack_eps is not None and "eps" not in base:
        raise ConfigError(f"--attack-eps: attack {cfg.name!r} ({cfg.kind}) has no eps to sweep")
    if grid.attack_steps is not None and "steps" not in base:
        raise ConfigError(f"--attack-steps: attack {cfg.name!r} ({cfg.kind}) has no steps to sweep")
    out = []
    for params, eps, steps in _budget_points(base, grid.attack_eps, grid.attack_steps):
        point = SweepPoint(of=cfg.name, eps=eps, steps=steps)
        name = point_name(point, "eps", "steps")
        params = validated_params(f"sweep point {name}", cls.Params, params)
        out.append(cfg.model_copy(update={"name": name, "params": params, "point": point}))
    return out


def task_points(cfg: TaskConfig, grid: Grid) -> list[TaskConfig]:
    out = []
    for rev, eps, steps in _budget_points(cfg.reverse.model_dump(), grid.reverse_eps, grid.reverse_steps):
        point = SweepPoint(of=cfg.name, eps=eps, steps=steps)
        name = point_name(point, "rev", "rev-steps")
        if rev["eps"] > 0 and rev["steps"] > 0 and rev["step_size"] == 0:
            rev["step_size"] = rev["eps"] / 4  # swept up from eps 0: the default ratio
        try:
            reverse = type(cfg.reverse)(**rev)
        except ValidationError as exc:
            raise ConfigError(format_validation_error(f"sweep point {name}", exc)) from exc
        out.append(cfg.model_copy(update={"name": name, "reverse": reverse, "point": point}))
    return out


def expand(
    tasks: list[TaskConfig], attacks: list[AttackConfig], grid: Grid
) -> tuple[list[TaskConfig], list[AttackConfig]]:
    """The configs of every grid point, tasks outer, in the order given."""
    if grid.attack_eps is None and grid.attack_steps is None:
        new_attacks = list(attacks)
    else:
        new_attacks = [p for a in attacks for p in attack_points(a, grid)]
    if grid.reverse_eps is None and grid.reverse_steps is None:
        new_tasks = list(tasks)
    else:
        new_tasks = [p for t in tasks for p in task_points(t, grid)]
    return new_tasks, new_attacks
