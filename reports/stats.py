"""Statistics the reports share: mean with a 95% interval over seeds, and a paired bootstrap.

Interval over seeds: Student-t, ``mean +- t(0.975, n-1) * sd / sqrt(n)`` over the per-seed values
(one seed: no interval, shown as the mean alone). Paired bootstrap: the difference of two methods'
accuracy on the same test items and seeds, resampling seeds and then items within each seed with
replacement (a two-level bootstrap), so both sources of variation enter the interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

CONFIDENCE = 0.95


def t_quantile(df: int, confidence: float = CONFIDENCE) -> float:
    """The two-sided Student-t quantile for ``df`` degrees of freedom."""
    from scipy.stats import t

    return float(t.ppf(0.5 + confidence / 2, df))


def mean_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float, float]:
    """``(mean, low, high)`` of ``values`` (one per seed); low = high = nan with fewer than two values."""
    x = np.asarray([v for v in values if v is not None and not math.isnan(v)], dtype=float)
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan, math.nan
    half = t_quantile(x.size - 1, confidence) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return mean, mean - half, mean + half


def paired_bootstrap(a, b, iterations: int = 2000, seed: int = 0, confidence: float = CONFIDENCE) -> dict:
    """Bootstrap of the accuracy difference ``a - b`` over paired outcomes of shape (seeds, items).

    ``a`` and ``b`` may also be lists of such arrays, one per dataset (same seeds, any number of
    items each): the statistic is then the mean over datasets of the per-dataset difference (the
    Avg column). Each iteration draws seeds with replacement, then items with replacement within
    every drawn seed (and dataset). Returns the observed difference, its ``confidence`` interval
    (percentile), a two-sided p-value (twice the smaller tail share at zero) and ``significant``
    (the interval excludes 0).
    """
    a_parts = [np.asarray(x, dtype=float) for x in (a if isinstance(a, list) else [a])]
    b_parts = [np.asarray(x, dtype=float) for x in (b if isinstance(b, list) else [b])]
    if len(a_parts) != len(b_parts) or not a_parts:
        raise ValueError("paired_bootstrap needs the same number of datasets on both sides")
    n_seeds = a_parts[0].shape[0] if a_parts[0].ndim == 2 else 0
    for x, y in zip(a_parts, b_parts):
        if x.shape != y.shape or x.ndim != 2 or x.size == 0 or x.shape[0] != n_seeds:
            raise ValueError(f"paired_bootstrap needs equal (seeds, items) arrays, got {x.shape} and {y.shape}")
    rng = np.random.default_rng(seed)
    seed_draws = rng.integers(0, n_seeds, size=(iterations, n_seeds))
    samples = np.zeros(iterations)
    observed = 0.0
    for x, y in zip(a_parts, b_parts):
        diff = x - y
        observed += diff.mean() / len(a_parts)
        item_draws = rng.integers(0, diff.shape[1], size=(iterations, n_seeds, diff.shape[1]))
        samples += diff[seed_draws[:, :, None], item_draws].mean(axis=(1, 2)) / len(a_parts)
    alpha = 1 - confidence
    low, high = np.quantile(samples, [alpha / 2, 1 - alpha / 2])
    p = min(1.0, 2 * min((samples <= 0).mean(), (samples >= 0).mean()))
    return {"difference": float(observed), "low": float(low), "high": float(high), "p": float(p),
            "significant": bool(low > 0 or high < 0)}
