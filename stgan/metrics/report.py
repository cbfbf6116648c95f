"""The evaluation report: every metric of docs/metrics.md for each variable, as a JSON-able dict."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
import xarray as xr
from tqdm import tqdm

from stgan.metrics.acf import ACF
from stgan.metrics.base import Array, PairMetric, as_tensor
from stgan.metrics.correlation import CrossCorrelation
from stgan.metrics.distribution import Marginal
from stgan.metrics.diversity import MAX_SAMPLES, Sequences
from stgan.metrics.inputs import check_arrays, dataset_arrays
from stgan.metrics.registry import selection_score
from stgan.metrics.spectra import PSD
from stgan.metrics.variability import Increments

Device = torch.device | str | None

# Each side keeps at most this many values of flattened samples for mmd2, c2st and prdc
# (64 MB in float32), so memory stays bounded for large grids and long sequences.
SAMPLE_VALUES_BUDGET = 2**24
# The progress bar shows only once an evaluation has run this long: long inputs.
PROGRESS_DELAY_S = 2.0


def evaluate(
    real: xr.Dataset,
    synthetic: xr.Dataset,
    variables: Sequence[str] | None = None,
    lags: int | None = None,
    device: Device = None,
    *,
    batch_size: int = 64,
    progress: bool = False,
) -> dict[str, Any]:
    """Report on two datasets (see ``evaluate_arrays``), after the input rules and checks.

    The sample dimension is one of sample/member/realization/ensemble; a dataset without
    one is cut into windows of the other's sequence length. Raises DataError for different
    variables or grids, differing units, a series too short for ``lags``, an all-NaN variable.
    Datasets opened with dask ``chunks`` along the sample (or time) dimension are streamed
    in batches, never loaded whole.
    """
    real_arrays, synthetic_arrays = dataset_arrays(real, synthetic, variables)
    return evaluate_arrays(
        real_arrays,
        synthetic_arrays,
        lags=lags,
        device=device,
        batch_size=batch_size,
        progress=progress,
    )


def evaluate_arrays(
    real: Mapping[str, Array],
    synthetic: Mapping[str, Array],
    lags: int | None = None,
    device: Device = None,
    floor_real: Mapping[str, Array] | None = None,
    *,
    batch_size: int = 64,
    seed: int = 0,
    progress: bool = False,
    whole_sequence: bool = True,
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
    progress : bool
        Show a progress bar over the batches on stderr once the run takes over
        ``PROGRESS_DELAY_S`` seconds.
    whole_sequence : bool
        Compute the whole-sequence metrics (mmd2, c2st, precision, recall, density,
        coverage), which keep samples and fit classifiers; ``False``: the streaming ones
        only (acf, psd, the marginal and increment distributions), for cheap evaluations.

    Returns
    -------
    dict
        ``{"variables": {name: {"acf", "psd", "wasserstein1", "ks", "energy", "quantiles",
        "increments",
        "mmd2", "c2st", "precision", "recall", "density", "coverage"}},
        "cross_correlation", "n_real", "n_synthetic"[, "floor"], "score"}``: ``score`` is
        ``stgan.metrics.registry.selection_score`` with the default criterion.
    """
    lags = check_arrays(real, synthetic, lags)
    if floor_real is not None:
        check_arrays(real, floor_real, lags)
    sides = [real, synthetic] + ([real, floor_real] if floor_real is not None else [])
    batches = sum(math.ceil(_count(arrays) / batch_size) for arrays in sides)
    options = {
        "lags": lags,
        "device": device,
        "batch_size": batch_size,
        "seed": seed,
        "whole_sequence": whole_sequence,
    }
    with _progress_bar(batches, progress) as bar:
        variables, cross = _compare(real, synthetic, bar=bar, **options)
        report = {
            "variables": variables,
            "cross_correlation": {"variables": list(real), **cross.compute()["cross_correlation"]},
            "n_real": _count(real),
            "n_synthetic": _count(synthetic),
        }
        if floor_real is not None:
            report["floor"] = _compare(real, floor_real, bar=bar, **options)[0]
    report["score"] = selection_score(report)  # over the floor where there is one
    return report


def to_json(report: Mapping[str, Any]) -> str:
    """``report`` as strict JSON text: NaN and infinities become ``null``."""
    return json.dumps(_finite(report), indent=2, allow_nan=False) + "\n"


def sample_cap(arrays: Mapping[str, Array], budget: int = SAMPLE_VALUES_BUDGET) -> int:
    """Samples per side kept for mmd2, c2st and prdc: ``budget`` values, 16 samples at least."""
    values = math.prod(next(iter(arrays.values())).shape[1:])  # T * y * x
    return max(16, min(MAX_SAMPLES, budget // max(1, values)))


def _finite(tree: Any) -> Any:
    if isinstance(tree, np.ndarray | np.generic):
        tree = tree.tolist()
    if isinstance(tree, Mapping):
        return {str(key): _finite(value) for key, value in tree.items()}
    if isinstance(tree, list | tuple):
        return [_finite(item) for item in tree]
    if isinstance(tree, float):
        return tree if math.isfinite(tree) else None
    return tree


def _count(arrays: Mapping[str, Array]) -> int:
    return len(next(iter(arrays.values())))


def _progress_bar(batches: int, show: bool) -> tqdm:
    """A bar over ``batches`` on stderr, shown after ``PROGRESS_DELAY_S`` (a no-op if not ``show``)."""
    return tqdm(
        total=batches,
        desc="evaluate",
        unit="batch",
        file=sys.stderr,
        disable=not show,
        delay=PROGRESS_DELAY_S,
        leave=False,
    )


def _compare(
    real: Mapping[str, Array],
    synthetic: Mapping[str, Array],
    lags: int,
    device: Device,
    batch_size: int,
    seed: int,
    bar: tqdm,
    whole_sequence: bool = True,
) -> tuple[dict[str, dict[str, Any]], CrossCorrelation]:
    cap = sample_cap(real)
    metrics: dict[str, list[PairMetric]] = {
        name: [ACF(lags, device), PSD(device), Marginal(seed=seed), Increments(seed=seed)]
        + ([Sequences(cap=cap, seed=seed)] if whole_sequence else [])
        for name in real
    }
    cross = CrossCorrelation()
    for side, arrays in (("real", real), ("synthetic", synthetic)):
        _stream(side, arrays, metrics, cross, batch_size, device, bar)
    return {name: _entry(variable_metrics) for name, variable_metrics in metrics.items()}, cross


def _stream(
    side: str,
    arrays: Mapping[str, Array],
    metrics: dict[str, list[PairMetric]],
    cross: CrossCorrelation,
    batch_size: int,
    device: Device,
    bar: tqdm,
) -> None:
    for start in range(0, _count(arrays), batch_size):
        batch = {
            name: as_tensor(a[start : start + batch_size], device) for name, a in arrays.items()
        }
        for name, x in batch.items():
            for metric in metrics[name]:
                metric.update(**{side: x})
        cross.update(**{side: torch.stack(list(batch.values()), dim=2)})  # (B, T, V, Y, X)
        bar.update()


def _entry(metrics: list[PairMetric]) -> dict[str, Any]:
    return {key: value for metric in metrics for key, value in metric.compute().items()}
