"""Accuracy intervals and compact per-image correctness (so later comparisons can be paired)."""

from __future__ import annotations

import base64
import math

import numpy as np


def wilson_interval(correct: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95% Wilson score interval for a proportion, in percent (well-behaved at 0% and 100%)."""
    if n == 0:
        return (0.0, 100.0)
    p = correct / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return (100 * max(0.0, centre - half), 100 * min(1.0, centre + half))


def pack_bits(flags: np.ndarray) -> str:
    return base64.b64encode(np.packbits(np.asarray(flags, dtype=bool)).tobytes()).decode("ascii")


def unpack_bits(text: str, n: int) -> np.ndarray:
    raw = np.frombuffer(base64.b64decode(text), dtype=np.uint8)
    return np.unpackbits(raw)[:n].astype(bool)


def mcnemar_exact(before: np.ndarray, after: np.ndarray) -> tuple[int, int, float]:
    """Paired test on per-image correctness: (lost, gained, two-sided exact p-value).

    Only discordant images carry information; under "no change" they split 50/50 (binomial).
    """
    before, after = np.asarray(before, bool), np.asarray(after, bool)
    if before.shape != after.shape:
        raise ValueError(f"paired test needs the same images: {before.shape} vs {after.shape}")
    lost = int((before & ~after).sum())
    gained = int((~before & after).sum())
    n, k = lost + gained, min(lost, gained)
    if n == 0:
        return lost, gained, 1.0
    log_half_n = n * math.log(0.5)
    tail = sum(math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + log_half_n) for i in range(k + 1))
    return lost, gained, min(1.0, 2 * tail)
