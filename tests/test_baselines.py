"""The non-GAN baselines recover what they claim to keep."""

from __future__ import annotations

import numpy as np
import pytest
import xarray as xr
from statsmodels.tsa.stattools import acf

from stgan.baselines import ar1_fit, ar1_sample


def _ar1_series(phi=0.7, n=4000, seed=0):
    rng = np.random.default_rng(seed)
    x = np.zeros((n, 3, 4))
    for t in range(1, n):
        x[t] = phi * x[t - 1] + rng.standard_normal((3, 4))
    x = 5 + 2 * x
    x[:, 0, 0] = np.nan  # a masked cell
    return xr.DataArray(x, dims=("time", "y", "x")).chunk({"time": 500})


def test_ar1_fit_matches_statsmodels_lag1_and_keeps_the_mask():
    series = _ar1_series()
    fit = ar1_fit(series, "time")
    assert np.isnan(fit["mean"][0, 0])
    values = series.values
    for y, x in ((1, 1), (2, 3)):
        assert fit["phi"][y, x] == pytest.approx(acf(values[:, y, x], nlags=1)[1], rel=1e-3)
        assert fit["mean"][y, x] == pytest.approx(values[:, y, x].mean())
        assert fit["std"][y, x] == pytest.approx(values[:, y, x].std())


def test_ar1_samples_have_the_fitted_moments_and_autocorrelation():
    fit = {"mean": np.full((2, 2), 3.0), "std": np.full((2, 2), 0.5), "phi": np.full((2, 2), 0.8)}
    samples = ar1_sample(fit, num=200, length=200, seed=1)
    assert samples.shape == (200, 200, 2, 2)
    assert samples.mean() == pytest.approx(3.0, abs=0.02)
    assert samples.std() == pytest.approx(0.5, rel=0.03)
    lag1 = np.mean([acf(s[:, 0, 0], nlags=1)[1] for s in samples])
    assert lag1 == pytest.approx(0.8, abs=0.03)
    assert np.array_equal(ar1_sample(fit, 3, 5, seed=7), ar1_sample(fit, 3, 5, seed=7))
