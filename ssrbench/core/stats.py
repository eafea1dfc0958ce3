"""Accuracy intervals and compact per-image correctness (so later comparisons can be paired)."""

from __future__ import annotations

import base64
import math

import numpy as np

ALPHA = 0.05  # the default significance level of every paired test ssrbench reports


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
    tail = sum(
        math.exp(math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) + log_half_n) for i in range(k + 1)
    )
    return lost, gained, min(1.0, 2 * tail)


F16_MAX = float(np.finfo(np.float16).max)


def pack_float16(values) -> str:
    """Per-image values, compactly (2 bytes each): float16, little-endian, base64. Non-finite values have no
    place in a leaderboard and are refused; finite ones beyond float16's range are clipped to it."""
    v = np.asarray(values, dtype=np.float64)
    if not np.isfinite(v).all():
        raise ValueError("per-image values must be finite")
    return base64.b64encode(np.clip(v, -F16_MAX, F16_MAX).astype("<f2").tobytes()).decode("ascii")


def unpack_float16(text: str, n: int) -> np.ndarray:
    raw = base64.b64decode(text, validate=True)
    if len(raw) != 2 * n:
        raise ValueError(f"expected {n} float16 values, got {len(raw) // 2}")
    return np.frombuffer(raw, dtype="<f2").astype(np.float64)


def _auroc_rows(neg: np.ndarray, pos: np.ndarray) -> np.ndarray:
    """AUROC of each row pair (P(pos > neg) + half the ties), by ranks: the Mann-Whitney U statistic."""
    both = np.concatenate([neg, pos], axis=1)
    order = np.argsort(both, axis=1, kind="stable")
    ranks = np.empty_like(order, dtype=np.float64)
    rows = np.arange(both.shape[0])[:, None]
    ranks[rows, order] = np.arange(1, both.shape[1] + 1)
    sorted_vals = np.take_along_axis(both, order, axis=1)
    # average ranks over ties, row by row (ties are common: accuracies over 4 rotations take 5 values)
    for r in range(both.shape[0]):
        vals, start, counts = np.unique(sorted_vals[r], return_index=True, return_counts=True)
        if len(vals) < both.shape[1]:
            mean_rank = start + (counts + 1) / 2
            ranks[r, order[r]] = np.repeat(mean_rank, counts)
    n_neg, n_pos = neg.shape[1], pos.shape[1]
    u = ranks[:, n_neg:].sum(axis=1) - n_pos * (n_pos + 1) / 2
    return u / (n_neg * n_pos)


def _tpr_rows(neg: np.ndarray, pos: np.ndarray, fpr: float) -> np.ndarray:
    """True-positive rate at the threshold that flags at most ``fpr`` of the negatives (strictly above it)."""
    thr = np.quantile(neg, 1 - fpr, axis=1, method="higher")
    return (pos > thr[:, None]).mean(axis=1)


def detection_scores(neg, pos, fpr: float = 0.05, reps: int = 200, seed: int = 0) -> dict[str, float | tuple]:
    """AUROC and TPR at ``fpr`` of a score that should be higher on ``pos`` (attacked) than on ``neg``
    (clean) images -- the same images, so a bootstrap resamples image indices for both (paired); 95%
    percentile intervals over ``reps`` resamples with a fixed seed (the same numbers at every load)."""
    neg, pos = np.asarray(neg, np.float64), np.asarray(pos, np.float64)
    if neg.shape != pos.shape or neg.ndim != 1 or len(neg) < 2:
        raise ValueError("detection needs paired per-image scores of at least two images")
    idx = np.random.default_rng(seed).integers(0, len(neg), size=(reps, len(neg)))
    auc, boot_auc = _auroc_rows(neg[None], pos[None])[0], _auroc_rows(neg[idx], pos[idx])
    tpr, boot_tpr = _tpr_rows(neg[None], pos[None], fpr)[0], _tpr_rows(neg[idx], pos[idx], fpr)
    ci = lambda b: (float(np.quantile(b, 0.025)), float(np.quantile(b, 0.975)))  # noqa: E731
    return {"auroc": float(auc), "auroc_ci95": ci(boot_auc), "tpr": float(tpr), "tpr_ci95": ci(boot_tpr)}


def holm(p_values) -> list[float]:
    """Holm-Bonferroni adjusted p-values, in the given order: reject where adjusted p < alpha and the
    family-wise error rate of all the tests together is at most alpha (step-down, no independence needed)."""
    p = [float(v) for v in p_values]
    m = len(p)
    adjusted = [1.0] * m
    running = 0.0
    for rank, i in enumerate(sorted(range(m), key=lambda k: p[k])):
        running = max(running, min(1.0, (m - rank) * p[i]))
        adjusted[i] = running
    return adjusted
