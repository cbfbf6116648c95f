"""Temporal variability: pooled one-step increments, pinned against numpy and scipy."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from stgan.metrics import evaluate_arrays
from stgan.metrics.variability import Increments


def _increments(x: np.ndarray) -> np.ndarray:
    d = np.diff(x.astype(np.float64), axis=1).ravel()
    return d[np.isfinite(d)]


def test_increments_match_numpy_and_scipy_streamed_in_batches():
    rng = np.random.default_rng(3)
    real = rng.standard_normal((7, 6, 3, 4))
    synthetic = 2.0 * rng.standard_normal((5, 6, 3, 4)) + 1.0
    real[2, 3, 1, 1] = np.nan  # drops the increments into and out of step 3 there
    metric = Increments()
    for part in (real[:4], real[4:]):
        metric.update(real=part)
    metric.update(synthetic=synthetic)
    found = metric.compute()["increments"]
    r, s = _increments(real), _increments(synthetic)
    assert r.size == 7 * 5 * 12 - 2
    assert found["wasserstein1"] == pytest.approx(stats.wasserstein_distance(r, s), rel=1e-12)
    assert found["std_ratio"] == pytest.approx(np.std(s) / np.std(r), rel=1e-12)


def test_a_flat_generator_passes_the_acf_but_not_the_increments():
    """Damping every sequence towards its mean keeps its autocorrelation and halves its steps."""
    rng = np.random.default_rng(0)
    real = np.cumsum(rng.standard_normal((16, 12, 4, 4)), axis=1) * 0.3 + 280.0
    flat = 0.5 * real + 0.5 * real.mean(axis=1, keepdims=True)
    entry = evaluate_arrays({"tas": real}, {"tas": flat})["variables"]["tas"]
    assert entry["acf"]["error"] < 1e-12
    assert entry["increments"]["std_ratio"] == pytest.approx(0.5)
    same = evaluate_arrays({"tas": real}, {"tas": real})["variables"]["tas"]["increments"]
    assert same["wasserstein1"] == 0 and entry["increments"]["wasserstein1"] > 0.05


def test_float32_batches_with_gaps_give_exactly_the_float64_increments():
    rng = np.random.default_rng(4)
    real = (280 + 5 * rng.standard_normal((9, 7, 4, 5))).astype(np.float32)
    synthetic = (281 + 4 * rng.standard_normal((6, 7, 4, 5))).astype(np.float32)
    real[1, 2, 0, 3] = real[4, :, 1, 1] = np.nan
    metric = Increments()
    for part in (real[:2], real[2:7], real[7:]):
        metric.update(real=part)
    metric.update(synthetic=synthetic)
    found = metric.compute()["increments"]
    r, s = _increments(real), _increments(synthetic)
    kept = metric.real.reservoir.rows()
    assert kept.dtype == np.float64 and np.array_equal(kept, r)  # the same values, in order
    assert found["wasserstein1"] == stats.wasserstein_distance(r, s)
    assert found["real_std"] == np.std(r)


def test_a_subsampled_pool_holds_true_increments():
    """Above the cap, each kept value is the float64 increment at some valid position."""
    rng = np.random.default_rng(5)
    x = rng.standard_normal((20, 10, 3, 3)).astype(np.float32)
    x[3, 4] = np.nan
    metric = Increments(cap=50, seed=2)
    for start in range(0, 20, 3):
        metric.update(real=x[start : start + 3])
    kept = metric.real.reservoir.rows()
    assert len(kept) == 50 and metric.real.reservoir.seen == _increments(x).size
    assert np.isin(kept, _increments(x)).all()


def test_infinite_steps_follow_float64_arithmetic():
    """inf - inf is NaN (dropped), inf - finite is inf (kept), as in float64 differences."""
    x = np.array([[1.0, np.inf, np.inf, 2.0, 4.0]], dtype=np.float32)  # (B=1, T=5)
    metric = Increments()
    metric.update(real=x)
    metric.update(real=np.empty((0, 5), dtype=np.float32))
    kept = metric.real.reservoir.rows()
    np.testing.assert_array_equal(kept, [np.inf, -np.inf, 2.0])
