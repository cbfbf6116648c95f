import numpy as np
import xarray as xr

from stgan.data.coarsen import coarsen, coarsen_array, trim


def test_block_means_trim_the_remainder_and_propagate_nan():
    x = np.arange(2 * 5 * 7, dtype=np.float32).reshape(2, 5, 7)
    x[1, 0, 0] = np.nan
    out = coarsen_array(x, 2)  # (2, 2, 3)
    assert out.shape == (2, 2, 3) and out.dtype == np.float32
    assert out[0, 1, 2] == x[0, 2:4, 4:6].mean()
    assert np.isnan(out[1, 0, 0]) and np.isnan(out).sum() == 1


def test_numpy_dask_and_coordinate_paths_agree():
    x = np.random.default_rng(0).normal(size=(3, 6, 8)).astype(np.float32)
    da = xr.DataArray(x, dims=("time", "y", "x"), coords={"y": np.arange(6.0)}).chunk({"time": 1})
    lazy = coarsen(da, 2, ("y", "x"))
    np.testing.assert_array_equal(lazy.values, coarsen_array(x, 2))
    np.testing.assert_array_equal(lazy["y"].values, [0.5, 2.5, 4.5])
    assert coarsen(da, 1, ("y", "x")) is da
    assert trim(slice(3, 10), 3) == slice(3, 9)
