import numpy as np
import pytest
import torch

from stgan.errors import DataError
from stgan.metrics.correlation import CrossCorrelation


def pooled_corrcoef(x: np.ndarray) -> np.ndarray:
    """Pairwise-complete Pearson correlation of ``(sample, time, var, y, x)`` variables."""
    cells = np.moveaxis(x, 2, 0).reshape(x.shape[2], -1)
    n = len(cells)
    out = np.ones((n, n))
    for a in range(n):
        for b in range(n):
            both = ~np.isnan(cells[a]) & ~np.isnan(cells[b])
            out[a, b] = np.corrcoef(cells[a, both], cells[b, both])[0, 1]
    return out


@pytest.fixture
def pair(rng):
    real = rng.normal(size=(4, 5, 3, 6, 6))
    real[:, :, 1] += 0.8 * real[:, :, 0] + 280
    real[0, 0, 2, :3] = np.nan
    synthetic = rng.normal(size=(3, 5, 3, 6, 6))
    synthetic[:, :, 2] -= 0.5 * synthetic[:, :, 1]
    return real, synthetic


def test_matches_numpy_and_streams(pair):
    real, synthetic = pair
    metric, other = CrossCorrelation(), CrossCorrelation()
    metric.update(real=real[:2], synthetic=torch.as_tensor(synthetic[:1]))
    other.update(real=real[2:], synthetic=synthetic[1:])
    metric.merge(other)
    result = metric.compute()["cross_correlation"]
    expected_r, expected_s = pooled_corrcoef(real), pooled_corrcoef(synthetic)
    np.testing.assert_allclose(result["real"], expected_r, rtol=1e-9)
    np.testing.assert_allclose(result["synthetic"], expected_s, rtol=1e-9)
    diff = np.abs(expected_r - expected_s)[np.triu_indices(3, 1)].mean()
    assert result["mean_abs_diff"] == pytest.approx(diff, rel=1e-9)


def test_single_variable_has_no_difference(rng):
    metric = CrossCorrelation()
    metric.update(real=rng.normal(size=(2, 3, 1, 4, 4)), synthetic=rng.normal(size=(2, 3, 1, 4, 4)))
    assert metric.compute()["cross_correlation"]["mean_abs_diff"] is None


def test_bad_input_raises(rng):
    with pytest.raises(DataError, match="5-D"):
        CrossCorrelation().update(real=rng.normal(size=(2, 3, 4, 4)))
    metric = CrossCorrelation()
    metric.update(real=rng.normal(size=(2, 3, 2, 4, 4)))
    with pytest.raises(DataError, match="no synthetic data"):
        metric.compute()
