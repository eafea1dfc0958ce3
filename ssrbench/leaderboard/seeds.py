"""Several training seeds of one cell: mean and spread across seeds, and intervals that count both
sources of noise -- which model was trained (seeds) and which images were drawn (images).

The interval is a hierarchical bootstrap: resample seeds, then images within each resampled seed,
with the same image draw for every metric so that the reverse attack's effects stay paired. The
generator is fixed, so the same cells always give the same interval (it is a derived view, checked on load).
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
from pydantic import Field

from .records import Cell, Record

RESAMPLES = 1000
_RNG_SEED = 20211  # fixed: a derived view must be a function of the cells alone

METRICS = ("clean", "clean_rev", "adv", "adv_rev")
EFFECTS = {"clean_effect": ("clean_rev", "clean"), "adv_effect": ("adv_rev", "adv")}  # the reverse attack's two effects


class Spread(Record):
    """One quantity across seeds, in accuracy points."""

    mean: float
    sd: float = Field(description="standard deviation across seeds (ddof 1; 0 with one seed)")
    ci95: tuple[float, float] = Field(description="hierarchical bootstrap over seeds then images")
    per_seed: list[float]

    @property
    def excludes_zero(self) -> bool:
        """For an effect: the interval lies on one side of zero (significant at 5%, seeds and images counted)."""
        return self.ci95[0] > 0 or self.ci95[1] < 0


class Aggregate(Record):
    task: str
    attack: str
    mode: str
    seeds: list[int]
    n_images: int
    metrics: dict[str, Spread]  # clean, clean_rev, adv, adv_rev, clean_effect, adv_effect


def by_group(cells: Iterable[Cell]) -> dict[tuple, dict[int, Cell]]:
    """Cells of one (task, attack, mode, ...) keyed by seed, in file order."""
    out: dict[tuple, dict[int, Cell]] = {}
    for c in cells:
        out.setdefault(c.group, {})[c.seed] = c
    return out


def _flags(by_seed: dict[int, Cell]) -> dict[str, np.ndarray]:
    """metric -> (seeds, images) correctness, seeds in sorted order."""
    seeds = sorted(by_seed)
    return {m: np.stack([getattr(by_seed[s], m).flags() for s in seeds]) for m in METRICS}


def bootstrap_means(
    flags: dict[str, np.ndarray], resamples: int = RESAMPLES, seed: int = _RNG_SEED
) -> dict[str, np.ndarray]:
    """metric (and effect) -> ``resamples`` bootstrap values of the mean accuracy in points."""
    n_seeds, n_images = next(iter(flags.values())).shape
    rng = np.random.default_rng(seed)
    pick_seed = rng.integers(0, n_seeds, (resamples, n_seeds))
    pick_image = rng.integers(0, n_images, (resamples, n_seeds, n_images), dtype=np.int32)
    out = {m: 100 * f[pick_seed[:, :, None], pick_image].mean(axis=(1, 2)) for m, f in flags.items()}
    for name, (after, before) in EFFECTS.items():
        out[name] = out[after] - out[before]
    return out


def aggregate(cells: Iterable[Cell]) -> list[Aggregate]:
    """One aggregate per cell group that was evaluated under more than one seed."""
    out = []
    for group, by_seed in by_group(cells).items():
        if len(by_seed) < 2:
            continue
        flags = _flags(by_seed)
        per_seed = {m: 100 * f.mean(axis=1) for m, f in flags.items()}
        for name, (after, before) in EFFECTS.items():
            per_seed[name] = per_seed[after] - per_seed[before]
        boot = bootstrap_means(flags)
        metrics = {
            m: Spread(
                mean=float(v.mean()),
                sd=float(v.std(ddof=1)),
                ci95=(float(np.percentile(boot[m], 2.5)), float(np.percentile(boot[m], 97.5))),
                per_seed=[float(x) for x in v],
            )
            for m, v in per_seed.items()
        }
        task, attack, mode = group[:3]
        out.append(
            Aggregate(
                task=task,
                attack=attack,
                mode=mode,
                seeds=sorted(by_seed),
                n_images=next(iter(flags.values())).shape[1],
                metrics=metrics,
            )
        )
    return out


def seed_differences(old: dict[int, Cell], new: dict[int, Cell]) -> dict[str, tuple[float, float]]:
    """metric -> (new - old mean, two-sided bootstrap p-value), each judged against seed-to-seed and image
    variation on both sides (independent hierarchical bootstraps, drawn once for all metrics)."""
    old_flags, new_flags = _flags(old), _flags(new)
    a = bootstrap_means(old_flags, seed=_RNG_SEED)
    b = bootstrap_means(new_flags, seed=_RNG_SEED + 1)
    out = {}
    for metric in METRICS:
        diff = b[metric] - a[metric]
        delta = float(100 * (new_flags[metric].mean() - old_flags[metric].mean()))
        p = 2 * min((diff <= 0).mean(), (diff >= 0).mean())
        out[metric] = (delta, float(min(1.0, max(p, 1 / len(diff)))))
    return out
