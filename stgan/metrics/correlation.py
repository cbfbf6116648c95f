"""Several variables: Pearson correlation matrix between variables, R against S."""

from __future__ import annotations

from typing import Any

import numpy as np

from stgan.errors import DataError
from stgan.metrics.base import Array, PairMetric, as_numpy, check_ndim
from stgan.metrics.moments import CoMoments


class CellMoments:
    """Co-moments of the variables of one side over its cells."""

    def __init__(self) -> None:
        self.moments: CoMoments | None = None

    def update(self, batch: Array) -> None:
        check_ndim(batch, 5, "(sample, time, variable, y, x)")
        values = np.moveaxis(as_numpy(batch), 2, 0).reshape(batch.shape[2], -1)  # (V, cells)
        if self.moments is None:
            self.moments = CoMoments(len(values))
        self.moments.update(values)

    def merge(self, other: CellMoments) -> None:
        if self.moments is None:
            self.moments = other.moments
        elif other.moments is not None:
            self.moments.merge(other.moments)

    def correlation(self, side: str) -> np.ndarray:
        if self.moments is None:
            raise DataError(f"cross_correlation: no {side} data was given")
        return self.moments.correlation()


class CrossCorrelation(PairMetric[CellMoments]):
    """Correlation matrices of R and S over pooled valid cells, and their mean |difference|.

    Batches are ``(sample, time, variable, y, x)``; a pair of variables is correlated over the
    cells where both are valid. The difference is averaged over pairs of distinct variables
    (``None`` for a single variable).
    """

    name = "cross_correlation"

    def __init__(self) -> None:
        super().__init__(CellMoments(), CellMoments())

    def compute(self) -> dict[str, Any]:
        real, synthetic = self.real.correlation("real"), self.synthetic.correlation("synthetic")
        if real.shape != synthetic.shape:
            raise DataError(
                f"cross_correlation: {len(real)} real variables, {len(synthetic)} synthetic"
            )
        pairs = np.triu_indices(len(real), 1)
        diff = np.abs(real - synthetic)[pairs]
        mean_abs_diff = float(diff.mean()) if diff.size else None
        matrices = {"real": real.tolist(), "synthetic": synthetic.tolist()}
        return {"cross_correlation": {**matrices, "mean_abs_diff": mean_abs_diff}}
