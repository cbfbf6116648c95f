import numpy as np
import pytest
import torch
from statsmodels.tsa.stattools import acf

from stgan.errors import DataError
from stgan.metrics.acf import ACF, acf_curves, acf_error, default_lags

from .conftest import space_time

TOL = {np.float64: 1e-6, np.float32: 1e-4}


def reference_curve(x: np.ndarray, lags: int) -> np.ndarray:
    """Mean statsmodels acf over every valid (sample, cell) series, the long way."""
    series = np.moveaxis(x, 1, -1).reshape(-1, x.shape[1]).astype(np.float64)
    valid = [s for s in series if not np.isnan(s).any() and s.max() > s.min()]
    return np.mean([acf(s, nlags=lags, adjusted=False) for s in valid], axis=0)


def with_gaps(x: np.ndarray) -> np.ndarray:
    """Copy of ``x`` with a NaN cell, a NaN series and a constant series."""
    x = x.copy()
    x[0, 2, 1, 1] = np.nan
    x[1, :, 0, 2] = np.nan
    x[-1, :, 2, 0] = 3.0
    return x


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("shape", [(3, 12, 5, 7), (2, 9, 4, 4), (4, 6, 3, 8)])
def test_matches_statsmodels(rng, dtype, shape):
    x = with_gaps(space_time(rng, shape, phi=0.6) + 280).astype(dtype)
    for lags in (1, default_lags(shape[1]), shape[1] - 1):
        metric = ACF(lags)
        metric.update(real=x, synthetic=torch.as_tensor(x))
        result = metric.compute()
        expected = reference_curve(x, lags)
        np.testing.assert_allclose(
            result["acf"]["real"], expected, rtol=TOL[dtype], atol=TOL[dtype]
        )
        np.testing.assert_allclose(result["acf"]["synthetic"], result["acf"]["real"])
        assert result["acf"]["lags"] == list(range(lags + 1))
        assert result["acf"]["error"] == 0


def test_ar1_gives_phi_to_the_k(rng):
    phi = 0.7
    curve = ACF(5)
    curve.update(real=space_time(rng, (2, 400, 8, 8), phi=phi))
    np.testing.assert_allclose(curve.real.mean().numpy(), phi ** np.arange(6), atol=0.03)


def test_invalid_series_are_excluded(rng):
    x = with_gaps(space_time(rng, (2, 10, 3, 3)))
    curves, valid = acf_curves(torch.as_tensor(x), 4)
    assert valid.sum() == 2 * 9 - 2 - 1  # one gap, one all-NaN series, one constant series
    assert torch.isfinite(curves).all()
    assert (curves[:, ~valid] == 0).all()


def test_float32_input_computes_in_float32(rng):
    x = torch.as_tensor(space_time(rng, (2, 8, 3, 3)), dtype=torch.float32)
    assert acf_curves(x, 3)[0].dtype == torch.float32
    assert acf_curves(x.double(), 3)[0].dtype == torch.float64


def test_batches_and_merge_equal_one_shot(rng):
    real, synthetic = space_time(rng, (7, 12, 4, 5), phi=0.5), space_time(rng, (5, 12, 4, 5))
    whole = ACF()
    whole.update(real=real, synthetic=synthetic)
    first, second = ACF(), ACF()
    for metric, part in ((first, slice(0, 3)), (second, slice(3, None))):
        metric.update(real=real[part])
        metric.update(synthetic=synthetic[part])
    first.merge(second)
    for key, value in whole.compute()["acf"].items():
        np.testing.assert_allclose(first.compute()["acf"][key], value, rtol=1e-12)


def test_error_is_mean_abs_difference_over_lags_one_to_k():
    real = torch.tensor([1.0, 0.5, 0.2, 0.1])
    synthetic = torch.tensor([1.0, 0.2, 0.2, 0.4])
    assert acf_error(real, synthetic) == pytest.approx(0.2)


def test_default_lags():
    assert default_lags(24) == 10
    assert default_lags(5) == 4


def test_too_short_series_raises(rng):
    with pytest.raises(DataError, match="too short|longer than"):
        ACF(8).update(real=space_time(rng, (1, 8, 2, 2)))


def test_no_valid_series_raises():
    metric = ACF(2)
    metric.update(real=np.full((1, 5, 2, 2), np.nan), synthetic=np.ones((1, 5, 2, 2)))
    with pytest.raises(DataError, match="real acf series"):
        metric.compute()
