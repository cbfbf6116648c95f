import numpy as np
import pytest
import torch
from pysteps.utils.spectral import rapsd

from stgan.errors import DataError
from stgan.metrics.spectra import PSD, lsd_db, power_spectra_sum, radial_average

from .conftest import power_law_fields, space_time

TOL = {np.float64: 1e-6, np.float32: 1e-4}
GRIDS = [(8, 8), (9, 9), (6, 11), (11, 6), (16, 10)]


def reference_curve(x: np.ndarray) -> np.ndarray:
    """Mean pysteps rapsd over frames, NaN filled with the frame mean, all-NaN frames skipped."""
    curves = []
    for frame in x.reshape(-1, *x.shape[-2:]).astype(np.float64):
        if np.isnan(frame).all():
            continue
        curves.append(rapsd(np.where(np.isnan(frame), np.nanmean(frame), frame), fft_method=np.fft))
    return np.mean(curves, axis=0)


def psd_of(x: np.ndarray) -> np.ndarray:
    metric = PSD()
    metric.update(real=x, synthetic=x)
    return np.array(metric.compute()["psd"]["real"])


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("grid", GRIDS)
def test_matches_pysteps(rng, dtype, grid):
    # a large mean, as temperatures in kelvin, is the hard case for float32
    x = space_time(rng, (2, 3, *grid), beta=2.0) + 280
    x[0, 1, 2, 3] = np.nan
    x[1, 2] = np.nan
    x = x.astype(dtype)
    np.testing.assert_allclose(psd_of(x), reference_curve(x), rtol=TOL[dtype])


def test_ring_count_follows_pysteps(rng):
    for grid in GRIDS:
        assert len(psd_of(rng.normal(size=(1, 1, *grid)))) == len(rapsd(np.ones(grid), np.fft))


def test_power_law_slope(rng):
    beta = 2.5
    curve = psd_of(power_law_fields(rng, 16, 64, 64, beta)[None])
    radii = np.arange(2, 24)
    slope = np.polyfit(np.log(radii), np.log(curve[radii]), 1)[0]
    assert slope == pytest.approx(-beta, abs=0.2)


def test_spectrum_is_computed_on_the_input_device_and_precision(rng):
    x = torch.as_tensor(rng.normal(size=(1, 2, 4, 4)), dtype=torch.float32)
    power, frames = power_spectra_sum(x)
    assert power.shape == (4, 4) and int(frames) == 2 and power.device == x.device
    assert radial_average(power).dtype == torch.float64  # the running sum is float64


def test_batches_and_merge_equal_one_shot(rng):
    real, synthetic = space_time(rng, (6, 4, 9, 10), beta=2.0), space_time(rng, (4, 4, 9, 10))
    whole = PSD()
    whole.update(real=real, synthetic=synthetic)
    first, second = PSD(), PSD()
    first.update(real=real[:2], synthetic=synthetic[:3])
    second.update(real=real[2:], synthetic=synthetic[3:])
    first.merge(second)
    for key, value in whole.compute()["psd"].items():
        np.testing.assert_allclose(first.compute()["psd"][key], value, rtol=1e-12)


def test_lsd_is_ten_db_for_tenfold_power_and_ignores_r0():
    real = torch.tensor([5.0, 1.0, 2.0, 3.0], dtype=torch.float64)
    synthetic = torch.tensor([1.0, 10.0, 20.0, 30.0], dtype=torch.float64)
    assert lsd_db(real, synthetic) == pytest.approx(10.0)


def test_different_grids_raise(rng):
    metric = PSD()
    metric.update(real=rng.normal(size=(1, 2, 8, 8)), synthetic=rng.normal(size=(1, 2, 8, 9)))
    with pytest.raises(DataError, match="grid"):
        metric.compute()


def test_all_nan_side_raises():
    metric = PSD()
    metric.update(real=np.ones((1, 2, 4, 4)), synthetic=np.full((1, 2, 4, 4), np.nan))
    with pytest.raises(DataError, match="synthetic frames"):
        metric.compute()
