"""Streaming means, variances and covariances of several variables, NaN-aware and mergeable.

Pair ``(a, b)`` is counted over the cells where both are valid. Batches and partial states
combine with Chan et al.'s parallel update, which stays accurate when the mean is large
compared with the spread (temperatures in kelvin), unlike raw sums of squares.
"""

from __future__ import annotations

import numpy as np

# Values (all variables together) taken at a time: pieces that stay in cache run several
# times faster than passes over a whole batch, and merge exactly like batches.
CHUNK_VALUES = 2**16


class CoMoments:
    """Per pair of ``n_vars`` variables: count, mean of ``a``, squared deviations, co-moment.

    All states are ``(n_vars, n_vars)`` float64 arrays; entry ``[a, b]`` is over the cells
    where ``a`` and ``b`` are both valid, and ``mean[a, b]`` is the mean of ``a`` there.
    """

    def __init__(self, n_vars: int) -> None:
        shape = (n_vars, n_vars)
        self.count = np.zeros(shape)
        self.mean = np.zeros(shape)
        self.m2 = np.zeros(shape)
        self.comoment = np.zeros(shape)

    def update(self, values: np.ndarray) -> None:
        """Add ``(n_vars, cells)`` values, NaN where missing."""
        step = max(1, CHUNK_VALUES // max(1, len(values)))
        for start in range(0, values.shape[1], step):
            self.merge(_batch_moments(np.asarray(values[:, start : start + step], np.float64)))

    def merge(self, other: CoMoments) -> None:
        count = self.count + other.count
        weight = self.count * other.count / np.maximum(count, 1)
        delta = other.mean - self.mean  # delta[b, a] is b's, over the same cells
        self.mean += delta * other.count / np.maximum(count, 1)
        self.m2 += other.m2 + delta**2 * weight
        self.comoment += other.comoment + delta * delta.T * weight
        self.count = count

    def std(self) -> np.ndarray:
        """Population standard deviation of each variable over its valid cells."""
        return np.sqrt(np.diag(self.m2) / np.diag(self.count))

    def correlation(self) -> np.ndarray:
        """Pearson correlation matrix, pairwise over cells where both are valid."""
        return self.comoment / np.sqrt(self.m2 * self.m2.T)


def _batch_moments(values: np.ndarray) -> CoMoments:
    valid = ~np.isnan(values)  # (V, N)
    if valid.all():
        return _complete_moments(values)
    mask = valid.astype(np.float64)
    # shift by each variable's own mean first so the products below do not cancel
    shift = np.nanmean(np.where(valid.any(1, keepdims=True), values, 0), axis=1, keepdims=True)
    dev = np.where(valid, values - shift, 0)
    batch = CoMoments(len(values))
    batch.count = mask @ mask.T
    sums = dev @ mask.T  # [a, b]: sum of a's deviations where b is valid
    mean_dev = sums / np.maximum(batch.count, 1)
    batch.mean = mean_dev + shift
    batch.m2 = dev**2 @ mask.T - sums * mean_dev
    batch.comoment = dev @ dev.T - sums * mean_dev.T
    return batch


def _complete_moments(values: np.ndarray) -> CoMoments:
    """``_batch_moments`` of ``(V, N)`` values without NaN: every pair over all N cells."""
    n = values.shape[1]
    shift = values.mean(1, keepdims=True)  # (V, 1)
    dev = values - shift
    sums = dev.sum(1)  # (V,)
    batch = CoMoments(len(values))
    batch.count[:] = n
    batch.mean[:] = (sums / n + shift[:, 0])[:, None]
    batch.m2[:] = ((dev**2).sum(1) - sums**2 / n)[:, None]
    batch.comoment = dev @ dev.T - np.outer(sums, sums) / n
    return batch
