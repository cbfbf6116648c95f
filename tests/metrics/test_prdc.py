import numpy as np
import pytest

from stgan.errors import DataError
from stgan.metrics.prdc import prdc


def brute_force(real: np.ndarray, fake: np.ndarray, k: int = 5) -> dict[str, float]:
    """Naeem et al. (2020), eqs. for P, R, D, C, written out with explicit distances."""

    def dist(a, b):
        return np.sqrt(((a[:, None, :] - b[None, :, :]) ** 2).sum(-1))

    def radii(points):
        return np.sort(dist(points, points), axis=1)[:, k]  # column 0 is the point itself

    r_real, r_fake = radii(real), radii(fake)
    d = dist(real, fake)  # (N, M)
    n, m = len(real), len(fake)
    return {
        "precision": sum(any(d[i, j] < r_real[i] for i in range(n)) for j in range(m)) / m,
        "recall": sum(any(d[i, j] < r_fake[j] for j in range(m)) for i in range(n)) / n,
        "density": sum(d[i, j] < r_real[i] for i in range(n) for j in range(m)) / (k * m),
        "coverage": sum(d[i].min() < r_real[i] for i in range(n)) / n,
    }


@pytest.mark.parametrize("seed", range(4))
def test_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    real = rng.normal(size=(30, 4))
    fake = rng.normal(size=(25, 4)) * rng.uniform(0.5, 1.5) + rng.uniform(-1, 1)
    result = prdc(real, fake)
    for key, value in brute_force(real, fake).items():
        assert result[key] == pytest.approx(value, abs=1e-12), key


def test_collapsed_generator_has_no_recall_and_no_coverage(rng):
    real = rng.normal(size=(200, 6))
    collapsed = np.repeat(rng.normal(size=(1, 6)), 100, axis=0)
    result = prdc(real, collapsed)
    assert result["recall"] < 0.05 and result["coverage"] < 0.1


def test_needs_more_than_k_samples(rng):
    with pytest.raises(DataError, match="more than k=5 synthetic"):
        prdc(rng.normal(size=(10, 2)), rng.normal(size=(5, 2)))
