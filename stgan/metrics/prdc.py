"""Precision, recall, density and coverage (Naeem et al. 2020, "Reliable fidelity and
diversity metrics for generative models"), from k-nearest-neighbour balls."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import pairwise_distances
from sklearn.neighbors import NearestNeighbors

from stgan.errors import DataError

NEAREST_K = 5


def knn_radii(points: np.ndarray, k: int = NEAREST_K) -> np.ndarray:
    """Distance from each point to its ``k``-th nearest neighbour among the others."""
    # the query set is the fitted set, so each point is its own first neighbour
    distances, _ = NearestNeighbors(n_neighbors=k + 1).fit(points).kneighbors(points)
    return distances[:, k]


def prdc(real: np.ndarray, synthetic: np.ndarray, k: int = NEAREST_K) -> dict[str, float]:
    """The four manifold estimates for ``(n, features)`` real and synthetic points.

    Precision: share of synthetic points inside some real k-NN ball. Recall: share of real
    points inside some synthetic k-NN ball. Density: mean number of real balls holding a
    synthetic point, over ``k``. Coverage: share of real balls holding a synthetic point.
    Mode collapse shows as low recall and coverage with high precision.
    """
    for side, points in (("real", real), ("synthetic", synthetic)):
        if len(points) <= k:
            raise DataError(f"prdc needs more than k={k} {side} samples, got {len(points)}")
    real_radii, synthetic_radii = knn_radii(real, k), knn_radii(synthetic, k)
    distances = pairwise_distances(real, synthetic)  # (n_real, n_synthetic)
    in_real_ball = distances < real_radii[:, None]
    return {
        "precision": float(in_real_ball.any(0).mean()),
        "recall": float((distances < synthetic_radii[None, :]).any(1).mean()),
        "density": float(in_real_ball.sum() / (k * len(synthetic))),
        "coverage": float((distances.min(1) < real_radii).mean()),
    }
