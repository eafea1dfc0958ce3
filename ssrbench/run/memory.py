"""Attacks that fit in memory: one attack call on a batch, split into chunks that fit, with the unsplit call's images.

Second-order attacks (the unrolled one) and EOT through a large model can need more memory for a batch than the
device has. ``AttackMemory`` runs such a call chunk by chunk: each chunk starts from the generator as the whole
batch did and draws its random start as the whole batch would (``linf.drawn_as_batch``), and the generator is left
as the whole batch leaves it -- so every image meets the attack it meets unsplit, and the streams after it are
the unsplit run's. (That holds for every attack whose randomness is its random start and whose images do not
meet each other. A library attack seeding its own generator gives another draw of the same estimate, as in a
cascade; so does a task whose loss couples the images of a batch -- the contrastive one, whose negatives are the
batch's other images -- where the chunk's defense is the one attacked.)

When to split: on CUDA, when a call runs out of memory -- the chunk is halved and the call retried from the
batch's first image (the chunk is kept for the attack's later batches); with a budget (``run --attack-memory``,
any device), the chunk the budget holds, from the bytes autograd keeps alive while the attack runs on one and on
two images (each storage counted once: the per-image slope, plus what does not grow with the batch, such as the
weights). Those saved activations are most of an attack's memory, not all of it: leave headroom.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

from ..adversarial.base import Attack
from ..core.linf import drawn_as_batch
from ..defense.reverse import Defense
from ..leaderboard.records import AttackSplit

_UNITS = {"": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}  # fmt: skip
_SIZE = re.compile(r"\s*([0-9]*\.?[0-9]+(?:e[+-]?[0-9]+)?)\s*([a-z]*)\s*", re.IGNORECASE)


def parse_bytes(text: str) -> int:
    """A memory size as people write it -- ``4GiB``, ``512MiB``, ``2.5GB``, ``1000000`` (bytes) -- in bytes (> 0).
    Raises ValueError naming the value and the forms it takes."""
    m = _SIZE.fullmatch(str(text))
    unit = m and _UNITS.get(m.group(2).lower())
    if not m or unit is None:
        raise ValueError(f"{text!r} is not a memory size: write it as 4GiB, 512MiB, 2.5GB or a number of bytes")
    value = float(m.group(1)) * unit
    if not math.isfinite(value) or value < 1:
        raise ValueError(f"{text!r} is not a memory size of at least one byte")
    return int(value)


def format_bytes(n: float) -> str:
    """``1.5 GiB``: how a size is written back in the notes."""
    for unit, size in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= size:
            return f"{n / size:.1f} {unit}"
    return f"{int(n)} B"


class _SavedBytes:
    """The peak bytes of the tensors autograd keeps for backward while inside, each storage counted once."""

    def __init__(self) -> None:
        self.refs: dict[tuple[str, int], list[int]] = {}
        self.live = self.peak = 0

    def pack(self, t: torch.Tensor) -> _Held:
        storage = t.untyped_storage()
        key = (str(t.device), storage.data_ptr())
        if key in self.refs:
            self.refs[key][0] += 1
        else:
            self.refs[key] = [1, storage.nbytes()]
            self.live += storage.nbytes()
            self.peak = max(self.peak, self.live)
        return _Held(t, self, key)

    def release(self, key: tuple[str, int]) -> None:
        ref = self.refs[key]
        ref[0] -= 1
        if not ref[0]:
            self.live -= ref[1]
            del self.refs[key]

    @contextmanager
    def counting(self) -> Iterator[_SavedBytes]:
        with torch.autograd.graph.saved_tensors_hooks(self.pack, lambda held: held.tensor):
            yield self


class _Held:
    """A tensor autograd saved, released from the count when autograd lets go of it."""

    __slots__ = ("key", "meter", "tensor")

    def __init__(self, tensor: torch.Tensor, meter: _SavedBytes, key: tuple[str, int]):
        self.tensor, self.meter, self.key = tensor, meter, key

    def __del__(self) -> None:
        self.meter.release(self.key)


def _stats_of(chunks: list[tuple[int, dict[str, float]]]) -> dict[str, float]:
    """One call's stats from its chunks': a fraction of images (``*_fraction``, ``robust_*``) weighted by each
    chunk's images, any other value as the first chunk gave it."""
    total = sum(n for n, _ in chunks)
    out = dict(chunks[0][1])
    for key in out:
        if key.endswith("_fraction") or key.startswith("robust_"):
            out[key] = sum(n * s.get(key, 0.0) for n, s in chunks) / total
    return out


class AttackMemory:
    """Runs an evaluation's attack calls split into chunks that fit (see the module); ``splits`` says which were,
    per attack name. ``budget_bytes``: a memory budget (``run --attack-memory``); None: split only on CUDA's
    out-of-memory error."""

    def __init__(self, budget_bytes: int | None = None):
        if budget_bytes is not None and budget_bytes < 1:
            raise ValueError(f"a memory budget is at least one byte, not {budget_bytes}")
        self.budget_bytes = budget_bytes
        self.chunks: dict[tuple[str, str], int] = {}  # (attack, against what) -> the most images per call
        self.estimates: dict[tuple[str, str], tuple[int, int]] = {}  # -> (per-image, fixed) saved bytes
        self.out_of_memory: set[tuple[str, str]] = set()  # the calls whose chunk an out-of-memory error halved
        self.splits: dict[str, AttackSplit] = {}  # per attack: how its calls were split (its cell's record)

    def __call__(
        self,
        name: str,
        attack: Attack,
        model: nn.Module,
        x: torch.Tensor,
        y: torch.Tensor,
        generator: torch.Generator,
        defense: Defense | None = None,
        against: str = "model",
    ) -> torch.Tensor:
        """``attack(model, x, y, generator, defense)``, split as needed; ``against`` tells apart the calls of one
        attack whose memory differs (the defended model, the fixed draws, the bare base)."""
        b, key = len(x), (name, against)
        if self.budget_bytes is not None and key not in self.estimates and b >= 2:
            self.estimates[key] = self._estimate(attack, model, x, y, generator, defense)
            per_image, fixed = self.estimates[key]
            self.chunks[key] = max(1, (self.budget_bytes - fixed) // per_image)
        start = generator.get_state()
        while True:
            chunk = min(self.chunks.get(key, b), b)
            try:
                out = self._run(attack, model, x, y, generator, defense, chunk)
            except torch.cuda.OutOfMemoryError:
                if chunk == 1:
                    raise
                if x.is_cuda:
                    torch.cuda.empty_cache()
                generator.set_state(start)  # from the batch's first image again
                self.chunks[key] = (chunk + 1) // 2
                self.out_of_memory.add(key)
                continue
            if chunk < b:
                self._record(name, key, chunk)
            return out

    def _record(self, name: str, key: tuple[str, str], chunk: int) -> None:
        """A call of ``name`` split into ``chunk`` images: the smallest chunk an attack came to is its cell's."""
        kept = self.splits.get(name)
        if kept is not None and kept.images_per_call <= chunk:
            return
        if key in self.out_of_memory:
            self.splits[name] = AttackSplit(images_per_call=chunk, reason="cuda-out-of-memory")
        else:
            per_image, fixed = self.estimates[key]
            self.splits[name] = AttackSplit(
                images_per_call=chunk,
                reason="memory-budget",
                budget_bytes=self.budget_bytes,
                per_image_bytes=per_image,
                fixed_bytes=fixed,
            )

    @staticmethod
    def _run(attack, model, x, y, generator, defense, chunk: int) -> torch.Tensor:
        b = len(x)
        if chunk >= b:
            return attack(model, x, y, generator, defense=defense)
        start = generator.get_state()
        parts, stats = [], []
        for j in range(0, b, chunk):
            generator.set_state(start)  # every chunk draws as the whole batch did, from where it started
            index = torch.arange(j, min(j + chunk, b), device=x.device)
            with drawn_as_batch(index, b):
                parts.append(attack(model, x[index], y[index], generator, defense=defense))
            stats.append((len(index), dict(attack.stats)))
        attack.stats = _stats_of(stats)
        return torch.cat(parts)

    @staticmethod
    def _estimate(attack, model, x, y, generator, defense) -> tuple[int, int]:
        """The bytes autograd keeps for this attack per image, and those that do not grow with the images (the
        weights): its peak saved bytes on one and on two images of the batch, drawn as the batch would be."""
        start = generator.get_state()
        peaks = []
        for k in (1, 2):
            generator.set_state(start)
            meter = _SavedBytes()
            with meter.counting(), drawn_as_batch(torch.arange(k, device=x.device), len(x)):
                attack(model, x[:k], y[:k], generator, defense=defense)
            peaks.append(meter.peak)
        generator.set_state(start)  # the probe draws nothing the evaluation sees
        per_image = max(peaks[1] - peaks[0], 1)
        return per_image, max(peaks[0] - per_image, 0)
