"""Temporal variability: how far values move from one time step to the next.

The acf is normalised by each series' own variance, so a generator whose sequences are far
too flat in time can still match it. The one-step increments ``x[t + 1] - x[t]`` of every
sample and grid cell (both steps valid), pooled, are compared instead:
``increments.wasserstein1`` is ``scipy.stats.wasserstein_distance`` of the two pools (in the
variable's units per step), ``increments.std_ratio`` the synthetic increments' standard
deviation over the real ones' (1 is right, below 1 too smooth, above 1 too rough).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from stgan.metrics.base import Array, PairMetric, as_numpy
from stgan.metrics.distribution import MAX_VALUES, ValuePool, pooled, wasserstein1


def increments(batch: Array) -> np.ndarray:
    """One-step increments of ``(B, T, ...)`` sequences, ``(B, T - 1, ...)``, NaN where
    either step is missing."""
    x = as_numpy(batch).astype(np.float64)
    return x[:, 1:] - x[:, :-1]


class IncrementPool(ValuePool):
    """The valid one-step increments of one side."""

    def update(self, batch: Array) -> None:
        super().update(increments(batch))


class Increments(PairMetric[IncrementPool]):
    """``{"increments": {"wasserstein1", "std_ratio", "real_std", "synthetic_std"}}``."""

    name = "increments"

    def __init__(self, cap: int = MAX_VALUES, seed: int = 0) -> None:
        super().__init__(IncrementPool(cap, seed), IncrementPool(cap, seed + 1))

    def compute(self) -> dict[str, Any]:
        real, synthetic = pooled(self.real, self.synthetic, "two valid steps in a row")
        real_std, synthetic_std = float(np.std(real)), float(np.std(synthetic))
        ratio = synthetic_std / real_std if real_std > 0 else float("nan")
        return {
            "increments": {
                "wasserstein1": wasserstein1(real, synthetic),
                "std_ratio": ratio,
                "real_std": real_std,
                "synthetic_std": synthetic_std,
            }
        }
