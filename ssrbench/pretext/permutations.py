"""Jigsaw permutation sets with maximal minimum Hamming distance (greedy farthest-point selection).

Noroozi & Favaro (2016) pick permutations greedily so that they are far apart in Hamming distance;
a set whose closest pair still differs in many positions makes the puzzle a classification problem
with well-separated classes. Here every step adds the permutation whose *minimum* distance to the set
is largest (ties broken by a seeded RNG), so the same (tiles, size, seed) always gives the same set.
"""

from __future__ import annotations

import hashlib
import itertools
from functools import lru_cache

import numpy as np


@lru_cache(maxsize=4)
def _all_permutations(n: int) -> np.ndarray:
    if n > 10:
        raise ValueError(f"{n} tiles: {n}! permutations is too many to search; use a grid of at most 3x3")
    return np.array(list(itertools.permutations(range(n))), dtype=np.int8)


@lru_cache(maxsize=16)
def max_hamming_set(n_tiles: int, size: int, seed: int = 0) -> np.ndarray:
    """``size`` permutations of ``range(n_tiles)``, shape (size, n_tiles), first one random."""
    candidates = _all_permutations(n_tiles)
    if not 1 <= size <= len(candidates):
        raise ValueError(f"permutation set size must be in [1, {len(candidates)}] for {n_tiles} tiles, got {size}")
    rng = np.random.default_rng(seed)
    chosen = [int(rng.integers(len(candidates)))]
    min_dist = (candidates != candidates[chosen[0]]).sum(1)
    for _ in range(size - 1):
        best = np.flatnonzero(min_dist == min_dist.max())
        j = int(rng.choice(best))
        chosen.append(j)
        min_dist = np.minimum(min_dist, (candidates != candidates[j]).sum(1))
    out = candidates[chosen].astype(np.int64)
    out.setflags(write=False)
    return out


def min_hamming_distance(perms: np.ndarray) -> int:
    """The smallest Hamming distance between two members of the set (computed, not assumed)."""
    d = (perms[:, None, :] != perms[None, :, :]).sum(-1)
    np.fill_diagonal(d, perms.shape[1] + 1)
    return int(d.min())


def set_fingerprint(perms: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(perms, dtype=np.int64).tobytes()).hexdigest()[:16]
