import numpy as np
import pytest
import xarray as xr

from stgan.errors import DataError
from stgan.metrics.inputs import check_arrays, dataset_arrays, to_samples


def dataset(values: np.ndarray, dims: tuple[str, ...], units: str = "K", **coords) -> xr.Dataset:
    """A one-variable ``t2m`` dataset on a regular grid."""
    return xr.Dataset(
        {"t2m": (dims, values, {"units": units})},
        coords={
            "lat": np.arange(values.shape[-2]) * 0.5,
            "lon": np.arange(values.shape[-1]),
            **coords,
        },
    )


def test_to_samples_cuts_windows_from_the_start_and_drops_the_rest():
    series = np.arange(11 * 2 * 3).reshape(11, 2, 3)
    windows = to_samples(series, 4)
    assert windows.shape == (2, 4, 2, 3)
    np.testing.assert_array_equal(windows[1, 0], series[4])
    with pytest.raises(DataError, match="shorter than one window"):
        to_samples(series, 12)


def test_check_arrays_resolves_default_lags_and_rejects_bad_input(rng):
    x = {"a": rng.normal(size=(2, 6, 3, 3))}
    assert check_arrays(x, x, None) == 5
    with pytest.raises(DataError, match="too short for 6 lags"):
        check_arrays(x, x, 6)
    with pytest.raises(DataError, match="variables differ"):
        check_arrays(x, {"b": x["a"]}, None)
    with pytest.raises(DataError, match="same sequence length and grid"):
        check_arrays(x, {"a": x["a"][:, :5]}, None)


def test_member_dim_is_the_sample_dim_and_a_long_series_is_windowed(rng):
    real = dataset(rng.normal(size=(10, 3, 4)), ("time", "lat", "lon"))
    synthetic = dataset(rng.normal(size=(4, 2, 3, 4)), ("member", "time", "lat", "lon"))
    real_arrays, synthetic_arrays = dataset_arrays(real, synthetic)
    assert real_arrays["t2m"].shape == (5, 2, 3, 4)
    assert synthetic_arrays["t2m"].shape == (4, 2, 3, 4)


def test_layout_is_transposed_to_sample_time_y_x(rng):
    values = rng.normal(size=(3, 4, 2, 5))  # (lon, lat, sample, time)
    ds = dataset(np.moveaxis(values, (0, 1), (3, 2)), ("sample", "time", "lat", "lon"))
    shuffled = ds.transpose("lon", "lat", "sample", "time")
    np.testing.assert_array_equal(dataset_arrays(shuffled, ds)[0]["t2m"], ds["t2m"].values)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda ds: ds.rename({"t2m": "tp"}), "variables differ: only in real \\['t2m'\\]"),
        (lambda ds: ds.assign_coords(lat=ds.lat + 1), "grids differ along y"),
        (lambda ds: ds.isel(lon=slice(0, 3)), "grids differ along x"),
        (
            lambda ds: ds.assign(t2m=ds.t2m.assign_attrs(units="degC")),
            "units 'K', synthetic 'degC'",
        ),
        (lambda ds: ds.assign(t2m=ds.t2m * np.nan), "all NaN in the synthetic"),
        (lambda ds: ds.expand_dims(level=2), "has dims"),
    ],
)
def test_mismatches_raise_one_clear_error(rng, change, message):
    real = dataset(rng.normal(size=(2, 3, 3, 4)), ("sample", "time", "lat", "lon"))
    with pytest.raises(DataError, match=message):
        dataset_arrays(real, change(real.copy()))


def test_two_long_series_have_no_window_length(rng):
    series = dataset(rng.normal(size=(6, 3, 4)), ("time", "lat", "lon"))
    with pytest.raises(DataError, match="neither dataset has a sample dimension"):
        dataset_arrays(series, series)


def test_chosen_variables_must_exist(rng):
    ds = dataset(rng.normal(size=(2, 3, 3, 4)), ("sample", "time", "lat", "lon"))
    with pytest.raises(DataError, match="'tp' in real, 'tp' in synthetic"):
        dataset_arrays(ds, ds, variables=["tp"])
