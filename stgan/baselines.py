"""Simple non-GAN generators to judge a GAN against (docs/metrics.md, "the floor and the baselines").

- ``ar1``: an AR(1) process fitted per cell on the training series: keeps each cell's
  mean, variance and lag-1 autocorrelation, but cells are independent, so the spatial
  spectrum is white.

Real training windows (what memorizing would give) are the report's floor
(``stgan.comparison``), not a baseline.
"""

from __future__ import annotations

import numpy as np
import xarray as xr


def ar1_fit(series: xr.DataArray, time_dim: str) -> dict[str, np.ndarray]:
    """Per-cell ``mean``, ``std`` and lag-1 autocorrelation ``phi`` of a (time, y, x) series.

    NaN steps are skipped pairwise; a cell that is NaN throughout stays NaN.
    """
    x = series.astype("float64")
    mean = x.mean(time_dim)
    anomaly = x - mean
    head = anomaly.isel({time_dim: slice(None, -1)}).data
    tail = anomaly.isel({time_dim: slice(1, None)}).data
    lagged = np.nanmean(head * tail, axis=0)  # positional, not label-aligned
    variance = (anomaly**2).mean(time_dim)
    phi = lagged / variance.data
    mean, variance, phi = (np.asarray(a) for a in _compute(mean.data, variance.data, phi))
    return {"mean": mean, "std": np.sqrt(variance), "phi": np.clip(phi, -0.999, 0.999)}


def ar1_sample(fit: dict[str, np.ndarray], num: int, length: int, seed: int = 0) -> np.ndarray:
    """``(num, length, y, x)`` sequences of the fitted AR(1), started from its stationary law."""
    rng = np.random.default_rng(seed)
    mean, std, phi = fit["mean"], fit["std"], fit["phi"]
    shape = (num, *mean.shape)
    out = np.empty((num, length, *mean.shape))
    state = rng.standard_normal(shape)  # standardized anomaly, stationary N(0, 1)
    innovation = np.sqrt(1 - phi**2)
    for t in range(length):
        if t:
            state = phi * state + innovation * rng.standard_normal(shape)
        out[:, t] = mean + std * state
    return out


def _compute(*arrays):
    import dask

    return dask.compute(*arrays)
