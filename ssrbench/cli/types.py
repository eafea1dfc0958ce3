"""Click parameter types of the command line, and the option type a preset field gets."""

from __future__ import annotations

import click

from ..core.limits import parse_number, shown
from ..core.presets import PresetField


class FiniteFloat(click.ParamType):
    """One rule for every float option: a finite number, within the bounds the option declares."""

    name = "number"

    def __init__(self, gt: float | None = None, ge: float | None = None, le: float | None = None):
        self.gt, self.ge, self.le = gt, ge, le

    def convert(self, value, param, ctx):
        try:
            number = parse_number(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
        if self.gt is not None and not number > self.gt:
            self.fail(f"{shown(value)} must be greater than {self.gt:g}", param, ctx)
        if self.ge is not None and not number >= self.ge:
            self.fail(f"{shown(value)} must be at least {self.ge:g}", param, ctx)
        if self.le is not None and not number <= self.le:
            self.fail(f"{shown(value)} must be at most {self.le:g}", param, ctx)
        return number


def preset_param_type(field: PresetField) -> click.ParamType:
    """The option type that accepts exactly the values the preset field does (its choices or its bounds)."""
    b = field.bounds
    if field.choices is not None:
        return click.Choice(field.choices)
    if field.type is float:
        return FiniteFloat(**{k: float(v) for k, v in b.items()})
    if field.type is int:
        if "gt" in b:
            return click.IntRange(min=b["gt"], min_open=True, max=b.get("le"))
        return click.IntRange(min=b.get("ge"), max=b.get("le"))
    return click.STRING


class RayAddressType(click.ParamType):
    """--address: its form checked as the option is read (Ray need not be installed), the text kept for Ray."""

    name = "address"

    def convert(self, value, param, ctx):
        from ..run.ray_address import AddressError, parse_address

        try:
            parse_address(value)
        except AddressError as exc:
            self.fail(exc.reason, param, ctx)
        return value


class MemorySize(click.ParamType):
    """--attack-memory: a size as people write it (4GiB, 512MiB, 2.5GB, bytes), read by the one rule attacks use."""

    name = "size"

    def convert(self, value, param, ctx):
        from ..run.memory import parse_bytes

        if isinstance(value, int):
            return value
        try:
            return parse_bytes(value)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)
