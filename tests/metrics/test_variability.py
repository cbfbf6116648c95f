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
