"""Percentile-bootstrap confidence intervals for benchmark metrics.

Every metric in the study is a mean over examples (a rate is a mean of 0/1 scores), so one
resampler covers all of them. Curated and control arms are evaluated on the same examples, so
their difference is bootstrapped *paired* (the same resampled example indices for both arms):
that removes the between-example variance both arms share and gives a much tighter interval than
two independent intervals would.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

# Resampled means are computed in blocks of this many resamples so that memory stays bounded
# (resamples × n indices) even for a large suite and many resamples.
_BLOCK = 256


def _check(values: Sequence[float], name: str) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name}: expected a flat list of per-example values, got shape {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name}: cannot bootstrap an empty list of values")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name}: values must be finite numbers")
    return arr


def _check_params(resamples: int, confidence: float) -> None:
    if int(resamples) < 1:
        raise ValueError(f"resamples must be >= 1, got {resamples}")
    if not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")


def _weights(weights: Sequence[float] | None, n: int) -> np.ndarray:
    if weights is None:
        return np.ones(n)
    w = _check(weights, "weights")
    if w.size != n or np.any(w <= 0):
        raise ValueError(f"weights must be {n} positive numbers, one per value")
    return w


def _resampled_means(arr: np.ndarray, w: np.ndarray, resamples: int, rng: np.random.Generator) -> np.ndarray:
    n = arr.size
    means = np.empty(resamples, dtype=np.float64)
    for start in range(0, resamples, _BLOCK):
        stop = min(start + _BLOCK, resamples)
        idx = rng.integers(0, n, size=(stop - start, n))
        means[start:stop] = (arr[idx] * w[idx]).sum(axis=1) / w[idx].sum(axis=1)
    return means


def _interval(
    arr: np.ndarray, resamples: int, confidence: float, seed: int, weights: Sequence[float] | None = None
) -> tuple[float, float, float]:
    _check_params(resamples, confidence)
    w = _weights(weights, arr.size)
    mean = float((arr * w).sum() / w.sum())
    if arr.size == 1 or np.all(arr == arr[0]):
        # No spread to resample: every bootstrap mean equals the sample mean.
        return mean, mean, mean
    rng = np.random.default_rng(seed)
    means = _resampled_means(arr, w, int(resamples), rng)
    alpha = 1.0 - float(confidence)
    low, high = np.quantile(means, [alpha / 2.0, 1.0 - alpha / 2.0])
    return mean, float(low), float(high)


def bootstrap_ci(
    values: Sequence[float],
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    weights: Sequence[float] | None = None,
) -> tuple[float, float, float]:
    """(mean, low, high): the sample mean and its percentile-bootstrap interval.

    ``weights``: per-value weights for a weighted mean (e.g. BFCL's unweighted mean of category
    accuracies: each example weighs 1 / (categories × its category's size)); each resample
    takes the weighted mean of the values it drew.
    """
    return _interval(_check(values, "values"), resamples, confidence, seed, weights)


def paired_delta_ci(
    a: Sequence[float],
    b: Sequence[float],
    resamples: int = 1000,
    confidence: float = 0.95,
    seed: int = 0,
    weights: Sequence[float] | None = None,
) -> tuple[float, float, float]:
    """(mean(a - b), low, high) for per-example scores of two systems on the same examples.

    ``a[i]`` and ``b[i]`` must score the same example (e.g. curated and control arm);
    ``weights`` as in ``bootstrap_ci``.
    """
    arr_a = _check(a, "a")
    arr_b = _check(b, "b")
    if arr_a.size != arr_b.size:
        raise ValueError(f"paired values differ in length: {arr_a.size} vs {arr_b.size}")
    return _interval(arr_a - arr_b, resamples, confidence, seed, weights)


def metric_intervals(
    examples: Sequence[dict], names: Sequence[str], resamples: int, confidence: float, seed: int
) -> dict[str, dict[str, float]]:
    """{metric: {value, ci_low, ci_high}} from per-example records ({"scores": {metric: x}}).

    A metric is the mean over the examples that carry it (a summary metric may cover part of a
    result's examples), weighted by the examples' ``weights`` for it where they have them.
    """
    out = {}
    for name in names:
        rows = [ex for ex in examples if name in ex["scores"]]
        values = [ex["scores"][name] for ex in rows]
        weights = [ex["weights"][name] for ex in rows] if rows and "weights" in rows[0] else None
        mean, low, high = bootstrap_ci(values, resamples, confidence, seed, weights=weights)
        out[name] = {"value": mean, "ci_low": low, "ci_high": high}
    return out
