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
from stgan.metrics.distribution import RESERVOIR_VALUES, ValuePool, pooled, wasserstein1


class IncrementPool(ValuePool):
    """The valid one-step increments ``x[t + 1] - x[t]`` of one side, in float64.

    Which increments are valid is found in the input's precision (a difference is NaN in
    float32 exactly when it is in float64); the float64 differences are computed only for
    the increments the reservoir takes.
    """

    def update(self, batch: Array) -> None:
        x = np.ascontiguousarray(as_numpy(batch))
        if x.size == 0:
            return
        x = x.reshape(*x.shape[:2], -1)  # (B, T, cells)
        count = len(x) * (x.shape[1] - 1) * x.shape[2]
        valid = None  # all valid, the common case: no pass over the differences
        if not np.isfinite(x).all():  # NaN, or inf - inf, in some difference
            with np.errstate(invalid="ignore"):  # inf - inf: NaN, dropped
                missing = np.isnan(x[:, 1:] - x[:, :-1]).reshape(-1)  # (B * (T - 1) * cells,)
            valid = np.flatnonzero(~missing)
            count = len(valid)

        def rows_at(positions: np.ndarray) -> np.ndarray:
            """The increments at ``positions`` among the valid ones."""
            return _increments_at(x, positions if valid is None else valid[positions])

        self.reservoir.add_from(count, rows_at)


def _increments_at(x: np.ndarray, at: np.ndarray) -> np.ndarray:
    """float64 ``x[b, t + 1, c] - x[b, t, c]`` of ``(B, T, cells)`` ``x`` at flat indices
    ``at`` into ``(B, T - 1, cells)``."""
    length, cells = x.shape[1:]
    sample, offset = np.divmod(at, (length - 1) * cells)
    before = sample * length * cells + offset  # flat index of (b, t, c) in x
    flat = x.reshape(-1)
    return flat[before + cells].astype(np.float64) - flat[before].astype(np.float64)


class Increments(PairMetric[IncrementPool]):
    """``{"increments": {"wasserstein1", "std_ratio", "real_std", "synthetic_std"}}``."""

    name = "increments"

    def __init__(self, cap: int = RESERVOIR_VALUES, seed: int = 0) -> None:
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
