"""The evaluation report: every metric of METRICS.md for each variable, as a JSON-able dict."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
import xarray as xr

from stgan.metrics.acf import ACF
from stgan.metrics.base import Array, PairMetric, as_tensor
from stgan.metrics.correlation import CrossCorrelation
from stgan.metrics.distribution import Marginal
from stgan.metrics.diversity import Sequences
from stgan.metrics.inputs import check_arrays, dataset_arrays
from stgan.metrics.spectra import PSD

Device = torch.device | str | None


def evaluate(
    real: xr.Dataset,
    synthetic: xr.Dataset,
    variables: Sequence[str] | None = None,
    lags: int | None = None,
    device: Device = None,
) -> dict[str, Any]:
    """Report on two datasets (see ``evaluate_arrays``), after the input rules and checks.

    The sample dimension is one of sample/member/realization/ensemble; a dataset without
    one is cut into windows of the other's sequence length. Raises DataError for different
    variables or grids, differing units, a series too short for ``lags``, an all-NaN variable.
    """
    real_arrays, synthetic_arrays = dataset_arrays(real, synthetic, variables)
    return evaluate_arrays(real_arrays, synthetic_arrays, lags=lags, device=device)


def evaluate_arrays(
    real: Mapping[str, Array],
    synthetic: Mapping[str, Array],
    lags: int | None = None,
    device: Device = None,
    floor_real: Mapping[str, Array] | None = None,
    *,
    batch_size: int = 64,
    seed: int = 0,
) -> dict[str, Any]:
    """Compare real and synthetic ``{variable: (sample, time, y, x)}`` arrays, NaN = missing.

    Parameters
    ----------
    real, synthetic : mapping of str to array
        Same variables, sequence length and grid on both sides, physical units. Any array
        that slices along the first axis works (NumPy, torch, dask): it is streamed in
        batches of ``batch_size`` samples.
    lags : int, optional
        K for the acf; default ``min(T - 1, 10)``.
    device : torch device, optional
        Where the acf and spectra run; default each array's own (CPU for NumPy).
    floor_real : mapping, optional
        A second real sample; adds ``"floor"``, the same per-variable metrics for real
        against it: what a perfect generator would score.
    seed : int
        Seed of the subsamples and of the classifier folds.

    Returns
    -------
    dict
        ``{"variables": {name: {"acf", "psd", "wasserstein1", "ks", "energy", "quantiles",
        "mmd2", "c2st", "precision", "recall", "density", "coverage"}},
        "cross_correlation", "n_real", "n_synthetic"[, "floor"]}``.
    """
    lags = check_arrays(real, synthetic, lags)
    options = {"lags": lags, "device": device, "batch_size": batch_size, "seed": seed}
    variables, cross = _compare(real, synthetic, **options)
    report = {
        "variables": variables,
        "cross_correlation": {"variables": list(real), **cross.compute()["cross_correlation"]},
        "n_real": len(next(iter(real.values()))),
        "n_synthetic": len(next(iter(synthetic.values()))),
    }
    if floor_real is not None:
        check_arrays(real, floor_real, lags)
        report["floor"] = _compare(real, floor_real, **options)[0]
    return report


def _compare(
    real: Mapping[str, Array],
    synthetic: Mapping[str, Array],
    lags: int,
    device: Device,
    batch_size: int,
    seed: int,
) -> tuple[dict[str, dict[str, Any]], CrossCorrelation]:
    metrics = {
        name: [ACF(lags, device), PSD(device), Marginal(seed=seed), Sequences(seed=seed)]
        for name in real
    }
    cross = CrossCorrelation()
    for side, arrays in (("real", real), ("synthetic", synthetic)):
        _stream(side, arrays, metrics, cross, batch_size, device)
    return {name: _entry(variable_metrics) for name, variable_metrics in metrics.items()}, cross


def _stream(
    side: str,
    arrays: Mapping[str, Array],
    metrics: dict[str, list[PairMetric]],
    cross: CrossCorrelation,
    batch_size: int,
    device: Device,
) -> None:
    n_samples = len(next(iter(arrays.values())))
    for start in range(0, n_samples, batch_size):
        batch = {
            name: as_tensor(a[start : start + batch_size], device) for name, a in arrays.items()
        }
        for name, x in batch.items():
            for metric in metrics[name]:
                metric.update(**{side: x})
        cross.update(**{side: torch.stack(list(batch.values()), dim=2)})  # (B, T, V, Y, X)


def _entry(metrics: list[PairMetric]) -> dict[str, Any]:
    return {key: value for metric in metrics for key, value in metric.compute().items()}
