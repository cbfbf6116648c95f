"""Whole-sequence distribution: each sample is one point (diversity, mode collapse).

Samples are flattened, standardized with R's mean and std over valid values and NaN set to
0, then compared with MMD, a classifier two-sample test and precision/recall/density/coverage.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics.pairwise import euclidean_distances
from sklearn.model_selection import StratifiedKFold, cross_val_score

from stgan.errors import DataError
from stgan.metrics.base import Array, PairMetric, as_numpy, check_ndim
from stgan.metrics.moments import CoMoments
from stgan.metrics.prdc import prdc
from stgan.metrics.reservoir import Reservoir

MAX_SAMPLES = 2000
C2ST_FOLDS = 5


def mmd2(real: np.ndarray, synthetic: np.ndarray) -> float:
    """Unbiased squared MMD, Gaussian kernel ``exp(-d^2 / (2 sigma^2))``.

    ``sigma`` is the median pairwise distance of the real and synthetic points pooled.
    """
    for side, points in (("real", real), ("synthetic", synthetic)):
        if len(points) < 2:
            raise DataError(f"mmd2 needs at least 2 {side} samples, got {len(points)}")
    pooled = joined(real, synthetic)
    sq_dist = np.maximum(euclidean_distances(pooled, squared=True), 0)
    np.fill_diagonal(sq_dist, 0)
    sigma = np.median(np.sqrt(sq_dist[np.triu_indices(len(pooled), 1)]))
    kernel = np.exp(-sq_dist / (2 * sigma**2))
    m = len(real)
    k_rr, k_ss, k_rs = kernel[:m, :m], kernel[m:, m:], kernel[:m, m:]
    within = [(k.sum() - np.trace(k)) / (len(k) * (len(k) - 1)) for k in (k_rr, k_ss)]
    return float(within[0] + within[1] - 2 * k_rs.mean())


def c2st(real: np.ndarray, synthetic: np.ndarray, seed: int = 0) -> float:
    """Classifier two-sample test: ``|accuracy - 0.5|`` of a logistic regression.

    Equal counts per class (the larger side is subsampled), stratified 5-fold CV.
    With more features than points the points are first expressed in an orthonormal
    basis of their span (from the Gram matrix): L2-regularized logistic regression has its optimum in
    that span, so the fits and predictions are the same, and a 16k-feature fit takes
    milliseconds instead of a minute.
    """
    n = min(len(real), len(synthetic))
    if n < C2ST_FOLDS:
        raise DataError(f"c2st needs at least {C2ST_FOLDS} samples per side, got {n}")
    rng = np.random.default_rng(seed)
    take = [rng.permutation(len(side))[:n] for side in (real, synthetic)]  # rows per class
    if real.shape[1] > 2 * n:
        points = _span_coordinates(real, synthetic, take)
    else:
        points = _tamed(np.concatenate([side[rows] for side, rows in zip((real, synthetic), take)]))
    labels = np.repeat([0, 1], n)
    folds = StratifiedKFold(C2ST_FOLDS, shuffle=True, random_state=seed)
    accuracy = cross_val_score(LogisticRegression(max_iter=1000), points, labels, cv=folds)
    return float(abs(accuracy.mean() - 0.5))


def joined(real: np.ndarray, synthetic: np.ndarray) -> np.ndarray:
    """``np.concatenate([real, synthetic])`` in float64: a view, not a copy, when the two
    are consecutive rows of one float64 array (as ``standardize`` gives them)."""
    base = real.base
    if (
        base is not None
        and base is synthetic.base
        and base.dtype == np.float64
        and base.flags.c_contiguous
        and len(real) + len(synthetic) == len(base)
        and real.ctypes.data == base.ctypes.data
        and synthetic.ctypes.data == base.ctypes.data + real.nbytes
        and real.flags.c_contiguous
        and synthetic.flags.c_contiguous
    ):
        return base
    return np.concatenate([real, synthetic], dtype=np.float64)


def _tamed(points: np.ndarray) -> np.ndarray:
    """``points`` with NaN set to 0 and values capped at +-1e6, in place.

    A diverged generator's values can overflow the Gram matrix: cap them (they are
    standardized, so +-1e6 is already absurd and keeps the test's verdict).
    """
    np.nan_to_num(points, copy=False, nan=0.0, posinf=1e6, neginf=-1e6)
    return np.clip(points, -1e6, 1e6, out=points)


def _span_coordinates(
    real: np.ndarray, synthetic: np.ndarray, take: list[np.ndarray]
) -> np.ndarray:
    """Coordinates of the points ``real[take[0]]`` then ``synthetic[take[1]]`` in an
    orthonormal basis of their span, ``(2n, 2n)``, from their Gram matrix.

    X = U S V^T: X V = U S, from the eigenvectors of the small Gram matrix X X^T, taken
    from the Gram matrix of both sides pooled (no copy of the wide points).
    """
    pooled = joined(real, synthetic)
    if not (pooled.min() >= -1e6 and pooled.max() <= 1e6):  # also False for NaN
        pooled = _tamed(pooled.copy())
    index = np.concatenate([take[0], len(real) + take[1]])
    gram = (pooled @ pooled.T)[np.ix_(index, index)]
    eigenvalues, eigenvectors = np.linalg.eigh(gram)
    return eigenvectors * np.sqrt(np.clip(eigenvalues, 0, None))


# score groups computed together; a metric asks for some names and runs the groups holding them
# (real, synthetic, seed) -> scores
GROUPS: dict[tuple[str, ...], Callable[[np.ndarray, np.ndarray, int], dict[str, float]]] = {
    ("mmd2",): lambda real, synthetic, seed: {"mmd2": mmd2(real, synthetic)},
    ("c2st",): lambda real, synthetic, seed: {"c2st": c2st(real, synthetic, seed)},
    ("precision", "recall", "density", "coverage"): lambda real, synthetic, seed: prdc(
        real, synthetic
    ),
}
SCORES = tuple(name for names in GROUPS for name in names)


class SamplePool:
    """Flattened samples of one side (seeded subsample above ``cap``) and value moments."""

    def __init__(self, cap: int = MAX_SAMPLES, seed: int = 0) -> None:
        self.samples = Reservoir(cap, seed)
        self.moments = CoMoments(1)

    def update(self, batch: Array) -> None:
        check_ndim(batch, 4, "(sample, time, y, x)")
        samples = as_numpy(batch).reshape(len(batch), -1)  # (S, T * Y * X)
        self.samples.add(samples)
        self.moments.update(samples.reshape(1, -1))

    def merge(self, other: SamplePool) -> None:
        self.samples.merge(other.samples)
        self.moments.merge(other.moments)


def standardize(real: SamplePool, synthetic: SamplePool) -> tuple[np.ndarray, np.ndarray]:
    """Both sides' samples scaled with R's mean and std, NaN set to 0."""
    mean, std = real.moments.mean[0, 0], real.moments.std()[0]
    if not std > 0:  # also catches NaN: R had no valid value
        raise DataError(f"real data has no spread (std {std}); cannot standardize samples")
    rows = [pool.samples.rows() for pool in (real, synthetic)]
    if rows[0].shape[1:] != rows[1].shape[1:]:
        raise DataError(
            f"real samples have {rows[0].shape[1]} values, synthetic {rows[1].shape[1]}; "
            "give both the same sequence length and grid"
        )
    # one float64 array, real rows then synthetic: the scores take both without a copy
    pooled = np.empty((len(rows[0]) + len(rows[1]), *rows[0].shape[1:]), np.float64)
    scaled = pooled[: len(rows[0])], pooled[len(rows[0]) :]
    for out, samples in zip(scaled, rows):
        np.subtract(samples, mean, out=out, dtype=np.float64)
        out /= std
    for block in np.array_split(pooled, max(1, len(pooled) // 16)):  # small masks, in place
        np.nan_to_num(block, copy=False, nan=0.0)
    return scaled


class Sequences(PairMetric[SamplePool]):
    """The whole-sequence scores named in ``scores`` over one shared pool of samples.

    Each side keeps up to ``cap`` flattened samples (memory ``cap * T * y * x`` values a side:
    lower ``cap`` for large grids); ``seed`` seeds the subsample and the c2st folds.

    ``compute`` adds ``"samples_subsample": {"real": n, "synthetic": n}`` (samples used per
    side) when a side held more than ``cap`` samples and was subsampled.
    """

    name = "sequences"

    def __init__(
        self, scores: Sequence[str] = SCORES, cap: int = MAX_SAMPLES, seed: int = 0
    ) -> None:
        self.scores = tuple(scores)
        self.seed = seed
        super().__init__(SamplePool(cap, seed), SamplePool(cap, seed + 1))

    def compute(self) -> dict[str, Any]:
        real, synthetic = standardize(self.real, self.synthetic)
        found: dict[str, float] = {}
        for names, score in GROUPS.items():
            if set(names) & set(self.scores):
                found.update(score(real, synthetic, self.seed))
        result: dict[str, Any] = {name: found[name] for name in self.scores}
        if self.real.samples.subsampled or self.synthetic.samples.subsampled:
            result["samples_subsample"] = {"real": len(real), "synthetic": len(synthetic)}
        return result
