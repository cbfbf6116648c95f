"""One owner of dimension names: data the loader accepts is data the metrics can lay out."""

import numpy as np
import pytest
import xarray as xr

from stgan.data.cf import describe_grid, grid_coords, time_coordinate, write_netcdf
from stgan.data.io import open_source
from stgan.data.spec import load_spec
from stgan.errors import DataError
from stgan.metrics.inputs import dataset_arrays
from tests.conftest import make_dataset, write_spec

# How the y/x dims ``row``/``col`` (in no table of common names) are identified.
IDENTIFIED_BY = {
    "dims": ({}, {}, {"dims": {"y": "row", "x": "col"}}),
    "axis": ({"axis": "Y"}, {"axis": "X"}, {}),
    "standard_name": ({"standard_name": "latitude"}, {"standard_name": "longitude"}, {}),
    "units": ({"units": "degrees_north"}, {"units": "degrees_east"}, {}),
}


def row_col_data(directory, how: str):
    """data.nc on (time, row, col) and its spec, the dims identified as ``how`` says."""
    y_attrs, x_attrs, spec_fields = IDENTIFIED_BY[how]
    ds = make_dataset(nt=12, ny=4, nx=5).rename(lat="row", lon="col")
    ds["row"].attrs, ds["col"].attrs = y_attrs, x_attrs
    ds.to_netcdf(directory / "data.nc")
    return open_source(load_spec(write_spec(directory / "spec.yaml", **spec_fields)))


def synthetic_file(source, path, samples=2, length=4):
    """A file laid out as ``stgan generate`` writes it: ``(sample, time, y, x)`` on the grid."""
    grid = describe_grid(source)
    names = grid["dims"]
    values = np.random.default_rng(0).normal(280, 1, (samples, length, 4, 5))
    times = time_coordinate(grid, grid["time"]["first"], length)
    ds = xr.Dataset(
        {"tas": (("sample", names["time"], names["y"], names["x"]), values, {"units": "K"})},
        {"sample": np.arange(samples), names["time"]: times, **grid_coords(grid)},
    )
    return write_netcdf(ds, path, command="test")


@pytest.mark.parametrize("how", sorted(IDENTIFIED_BY))
def test_data_the_loader_accepts_can_be_evaluated(tmp_path, how):
    source = row_col_data(tmp_path, how)
    assert (source.dims.y, source.dims.x) == ("row", "col")
    real = xr.open_dataset(tmp_path / "data.nc")
    synthetic = xr.open_dataset(synthetic_file(source, tmp_path / "syn.nc"))
    real_arrays, synthetic_arrays = dataset_arrays(real, synthetic)
    assert real_arrays["tas"].shape == (3, 4, 4, 5)  # 12 steps cut into windows of 4
    assert synthetic_arrays["tas"].shape == (2, 4, 4, 5)
    np.testing.assert_array_equal(real_arrays["tas"][1, 0], real["tas"].values[4])


def test_dims_named_only_in_the_spec_are_passed_to_the_layout(tmp_path):
    source = row_col_data(tmp_path, "dims")
    real = source.to_dask()
    synthetic = real.isel(time=slice(0, 8)).coarsen(time=4).construct(time=("sample", "time"))
    with pytest.raises(DataError, match=r"has dims .*give the coordinates CF 'axis' attributes"):
        dataset_arrays(real, synthetic)
    real_arrays, synthetic_arrays = dataset_arrays(real, synthetic, dims=source.dims)
    assert real_arrays["tas"].shape == (3, 4, 4, 5)
    assert synthetic_arrays["tas"].shape == (2, 4, 4, 5)
