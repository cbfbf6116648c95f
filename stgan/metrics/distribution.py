"""Marginal distribution of all valid values pooled: CDF distances and quantiles.

wasserstein1, ks and energy are scipy.stats' ``wasserstein_distance``,
``ks_2samp(...).statistic`` and ``energy_distance``; :func:`cdf_distances` computes the
three from one merged sort of both sides, the formulas of scipy's own ``_cdf_distance``
(the tests pin them to scipy's functions), where the three scipy calls sort the same
values three times: on the reservoir's 10^6 values a side that was a third of an
evaluation's time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from stgan.errors import DataError
from stgan.metrics.base import Array, PairMetric, as_numpy
from stgan.metrics.reservoir import Reservoir

# Values a side that the pooled scores (wasserstein1, ks, energy, quantiles, increments) keep:
# exact up to this many, a seeded uniform subsample of this many above (docs/metrics.md).
# Its size bounds their memory (a few MB) and the cost of the scipy calls at the end.
RESERVOIR_VALUES = 10**6
QUANTILE_LEVELS = (0.001, 0.01, 0.5, 0.99, 0.999)


CDF_SCORES = ("wasserstein1", "ks", "energy")


def cdf_distances(real: np.ndarray, synthetic: np.ndarray) -> dict[str, float]:
    """``{"wasserstein1", "ks", "energy"}`` of two 1-D samples from their empirical CDFs.

    F_r - F_s on the merged sorted values: wasserstein1 is its integral in absolute value,
    energy sqrt(2) times the square root of the integral of its square (as scipy's
    ``energy_distance``), ks its largest absolute value.
    """
    real, synthetic = np.sort(real), np.sort(synthetic)
    merged = np.concatenate([real, synthetic])
    merged.sort(kind="mergesort")  # two sorted runs: one linear merge
    at = merged[:-1]
    gap = (
        real.searchsorted(at, "right") / real.size
        - synthetic.searchsorted(at, "right") / synthetic.size
    )
    widths = np.diff(merged)
    return {
        "wasserstein1": float(np.sum(np.multiply(np.abs(gap), widths))),
        "ks": float(np.max(np.abs(gap), initial=0.0)),
        "energy": float(np.sqrt(2) * np.sqrt(np.sum(np.multiply(np.square(gap), widths)))),
    }


def wasserstein1(real: np.ndarray, synthetic: np.ndarray) -> float:
    """``scipy.stats.wasserstein_distance`` (:func:`cdf_distances`)."""
    return cdf_distances(real, synthetic)["wasserstein1"]


def ks(real: np.ndarray, synthetic: np.ndarray) -> float:
    """Two-sample Kolmogorov-Smirnov statistic, ``scipy.stats.ks_2samp(...).statistic``."""
    return cdf_distances(real, synthetic)["ks"]


def energy(real: np.ndarray, synthetic: np.ndarray) -> float:
    """``scipy.stats.energy_distance`` (:func:`cdf_distances`)."""
    return cdf_distances(real, synthetic)["energy"]


def quantiles(real: np.ndarray, synthetic: np.ndarray) -> dict[str, list[float]]:
    """Linear ``numpy.quantile`` at ``QUANTILE_LEVELS`` on both sides and their |difference|."""
    q_real = np.quantile(real, QUANTILE_LEVELS)
    q_synthetic = np.quantile(synthetic, QUANTILE_LEVELS)
    return {
        "levels": list(QUANTILE_LEVELS),
        "real": q_real.tolist(),
        "synthetic": q_synthetic.tolist(),
        "abs_diff": np.abs(q_real - q_synthetic).tolist(),
    }


SCORES: dict[str, Callable[[np.ndarray, np.ndarray], Any]] = {
    "wasserstein1": wasserstein1,
    "ks": ks,
    "energy": energy,
    "quantiles": quantiles,
}


class ValuePool:
    """Valid (non-NaN) values of one side, exact up to ``cap``, then a seeded subsample.

    Values are kept in their own precision (float32 stays float32, float64 float64) and
    given to the scores as float64, which is exact: the scores are as on all values in
    float64 whenever no more than ``cap`` were seen.
    """

    def __init__(self, cap: int = RESERVOIR_VALUES, seed: int = 0) -> None:
        self.reservoir = Reservoir(cap, seed)

    def update(self, batch: Array) -> None:
        values = as_numpy(batch).ravel()
        missing = np.isnan(values)
        self.reservoir.add(values[~missing] if missing.any() else values)

    def merge(self, other: ValuePool) -> None:
        self.reservoir.merge(other.reservoir)


def pooled(real: ValuePool, synthetic: ValuePool, what: str) -> tuple[np.ndarray, np.ndarray]:
    """Both sides' pooled values; ``DataError`` naming ``what`` a side lacks."""
    values = real.reservoir.rows(), synthetic.reservoir.rows()
    for side, rows in zip(("real", "synthetic"), values):
        if rows.size == 0:
            raise DataError(f"{side} data has no {what} to compare")
    return tuple(rows.astype(np.float64, copy=False) for rows in values)


class Marginal(PairMetric[ValuePool]):
    """The marginal-distribution scores named in ``scores`` over one shared pool of values.

    ``compute`` adds ``"values_subsample": {"real": n, "synthetic": n}`` (values used per
    side) when a side held more than ``cap`` values and was subsampled.
    """

    name = "marginal"

    def __init__(
        self, scores: Sequence[str] = tuple(SCORES), cap: int = RESERVOIR_VALUES, seed: int = 0
    ) -> None:
        self.scores = tuple(scores)
        super().__init__(ValuePool(cap, seed), ValuePool(cap, seed + 1))

    def compute(self) -> dict[str, Any]:
        real, synthetic = pooled(self.real, self.synthetic, "valid (non-NaN) value")
        distances = cdf_distances(real, synthetic) if set(CDF_SCORES) & set(self.scores) else {}
        result = {
            name: distances[name] if name in distances else SCORES[name](real, synthetic)
            for name in self.scores
        }
        if self.real.reservoir.subsampled or self.synthetic.reservoir.subsampled:
            result["values_subsample"] = {"real": len(real), "synthetic": len(synthetic)}
        return result
