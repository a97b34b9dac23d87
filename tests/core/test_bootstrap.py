"""Percentile bootstrap: intervals contain the mean, narrow with n, are seeded and paired."""

from __future__ import annotations

import numpy as np
import pytest

from trellis.core.bootstrap import bootstrap_ci, paired_delta_ci


def test_interval_contains_mean_and_is_deterministic():
    rng = np.random.default_rng(1)
    values = rng.binomial(1, 0.3, size=200).astype(float).tolist()
    mean, low, high = bootstrap_ci(values, resamples=2000, confidence=0.95, seed=7)
    assert mean == pytest.approx(np.mean(values))
    assert low < mean < high
    assert 0.0 <= low and high <= 1.0
    assert bootstrap_ci(values, 2000, 0.95, 7) == (mean, low, high)
    # A different seed moves the bounds only a little.
    _, low2, high2 = bootstrap_ci(values, 2000, 0.95, 8)
    assert abs(low2 - low) < 0.03 and abs(high2 - high) < 0.03


def test_interval_narrows_with_n():
    rng = np.random.default_rng(2)
    widths = []
    for n in (25, 100, 400, 1600):
        values = rng.normal(0.5, 0.2, size=n).tolist()
        _, low, high = bootstrap_ci(values, resamples=1000, confidence=0.95, seed=0)
        widths.append(high - low)
    assert widths == sorted(widths, reverse=True)
    # Width shrinks roughly as 1/sqrt(n): 64x the data, about 1/8 the width.
    assert widths[-1] < widths[0] / 5


def test_higher_confidence_is_wider():
    values = np.random.default_rng(3).normal(size=300).tolist()
    _, l90, h90 = bootstrap_ci(values, 1000, 0.90, 0)
    _, l99, h99 = bootstrap_ci(values, 1000, 0.99, 0)
    assert l99 < l90 and h99 > h90


def test_degenerate_inputs():
    assert bootstrap_ci([1.0, 1.0, 1.0], 100, 0.95, 0) == (1.0, 1.0, 1.0)
    assert bootstrap_ci([0.25], 100, 0.95, 0) == (0.25, 0.25, 0.25)
    with pytest.raises(ValueError, match="empty"):
        bootstrap_ci([], 100, 0.95, 0)
    with pytest.raises(ValueError, match="confidence"):
        bootstrap_ci([1.0, 0.0], 100, 1.5, 0)


def test_paired_delta_is_tighter_than_unpaired_and_centered():
    rng = np.random.default_rng(4)
    difficulty = rng.uniform(0, 1, size=300)
    control = (rng.uniform(0, 1, size=300) > difficulty).astype(float)
    # The treatment solves what the control solves, plus ~10% more.
    treatment = np.maximum(control, (rng.uniform(0, 1, size=300) < 0.1).astype(float))
    delta, low, high = paired_delta_ci(treatment.tolist(), control.tolist(), 2000, 0.95, 0)
    assert delta == pytest.approx(treatment.mean() - control.mean())
    assert 0 < low < delta < high
    _, la, ha = bootstrap_ci(treatment.tolist(), 2000, 0.95, 0)
    _, lb, hb = bootstrap_ci(control.tolist(), 2000, 0.95, 0)
    assert (high - low) < (ha - la) + (hb - lb)
    with pytest.raises(ValueError, match="length"):
        paired_delta_ci([1.0, 0.0], [1.0], 100, 0.95, 0)
