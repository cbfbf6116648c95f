import io
import os

import numpy as np
import pytest
import torch
import xarray as xr

from stgan import __version__
from stgan.data import load_spec
from stgan.data.cf import (
    check_output_path,
    describe_grid,
    grid_coords,
    grid_shape,
    select_grid,
    static_mask,
    time_coordinate,
    write_netcdf,
)
from stgan.data.io import open_source
from stgan.errors import DataError
from tests.conftest import make_dataset, write_spec


def grid_of(tmp_path, dataset, patch=None, **spec):
    dataset.to_netcdf(tmp_path / "data.nc")
    source = open_source(load_spec(write_spec(tmp_path / "spec.yaml", **spec)))
    return describe_grid(source, patch)


@pytest.fixture
def noleap(tmp_path):
    ds = make_dataset(calendar="noleap", variables=("tas", "pr"), nan_cells=((0, 0), (2, 3)))
    ds["pr"][:, 1, 1] = np.nan  # always missing in pr only
    ds["tas"][5, 4, 4] = np.nan  # missing once: not static
    ds.attrs.update(title="tiny", license="CC-BY-4.0", history="made by a test")
    return ds, grid_of(tmp_path, ds, variables=["tas", "pr"])  # a list keeps the order


def test_round_trips_through_a_weights_only_checkpoint(noleap):
    _, grid = noleap
    buffer = io.BytesIO()
    torch.save({"grid": grid}, buffer)
    buffer.seek(0)
    assert torch.load(buffer, weights_only=True)["grid"] == grid


def test_records_coords_time_attrs_and_global_attrs(noleap, tmp_path):
    ds, grid = noleap
    on_disk = xr.open_dataset(tmp_path / "data.nc")
    assert grid["dims"] == {"time": "time", "y": "lat", "x": "lon"}
    coords = grid_coords(grid)
    np.testing.assert_array_equal(coords["lat"].values, ds.lat.values)
    np.testing.assert_array_equal(coords["lon"].values, ds.lon.values)
    assert coords["lat"].attrs["units"] == "degrees_north"
    assert grid_shape(grid) == (ds.sizes["lat"], ds.sizes["lon"])
    time = grid["time"]
    step = (ds.indexes["time"][1] - ds.indexes["time"][0]).total_seconds()
    assert time["step_seconds"] == step
    assert time["calendar"] == "noleap"
    assert time["units"] == on_disk.time.encoding["units"]
    assert time["first"] == ds.indexes["time"][0].isoformat()
    assert list(grid["variables"]) == ["tas", "pr"]
    assert grid["variables"]["tas"] == ds.tas.attrs
    assert grid["global_attrs"] == {"title": "tiny", "license": "CC-BY-4.0"}  # no history


def test_static_mask_is_per_variable_and_always_missing_only(noleap):
    ds, grid = noleap
    mask = static_mask(grid)  # (C, H, W)
    always = np.stack([ds[v].isnull().all("time").values for v in ("tas", "pr")])
    np.testing.assert_array_equal(mask, always)
    assert mask[0].sum() == 2 and mask[1].sum() == 3  # the once-missing cell is not in it


def test_patch_is_the_centre_region(tmp_path):
    ds = make_dataset(ny=6, nx=8, nan_cells=((1, 2),))
    grid = grid_of(tmp_path, ds, patch=4)
    assert grid["region"] == {"y": [1, 5], "x": [2, 6], "grid": [6, 8], "patch": 4}
    coords = grid_coords(grid)
    np.testing.assert_array_equal(coords["lat"].values, ds.lat.values[1:5])
    np.testing.assert_array_equal(coords["lon"].values, ds.lon.values[2:6])
    expected = np.zeros((1, 4, 4), bool)
    expected[0, 0, 0] = True  # cell (1, 2) of the grid
    np.testing.assert_array_equal(static_mask(grid), expected)
    older = {("window" if k == "region" else k): v for k, v in grid.items()}  # its former name
    np.testing.assert_array_equal(static_mask(older), expected)


def test_crop_and_coarsen_carry_to_coordinates_and_aux_coords(tmp_path):
    ds = make_dataset(ny=6, nx=8)
    ds = ds.assign_coords(height=((), 2.0, {"units": "m"}), row=("lat", np.arange(6) * 10.0))
    grid = grid_of(tmp_path, ds, crop={"y": [2, 6], "x": [0, 8]}, coarsen=2)
    coords = grid_coords(grid)
    np.testing.assert_allclose(coords["lat"].values, ds.lat.values[2:6].reshape(2, 2).mean(1))
    np.testing.assert_allclose(coords["lon"].values, ds.lon.values.reshape(4, 2).mean(1))
    np.testing.assert_allclose(coords["row"].values, [25.0, 45.0])
    assert coords["row"].dims == ("lat",)
    assert coords["height"].values == 2.0 and coords["height"].attrs["units"] == "m"


def test_time_coordinate_follows_the_calendar_and_encodes_exactly(noleap):
    _, grid = noleap
    times = time_coordinate(grid, "2001-02-28T12:00:00", 3)
    assert [t.isoformat() for t in times.values] == [
        "2001-02-28T12:00:00",
        "2001-02-28T13:00:00",
        "2001-02-28T14:00:00",
    ]
    across = time_coordinate(
        {**grid, "time": {**grid["time"], "step_seconds": 86400}}, "2000-02-28", 2
    )
    assert across.values[1].isoformat() == "2000-03-01T00:00:00"  # noleap: no 29 February
    assert times.encoding == {
        "units": grid["time"]["units"],
        "calendar": "noleap",
        "dtype": "int32",
    }
    half_hours = {**grid, "time": {**grid["time"], "step_seconds": 1800}}
    assert time_coordinate(half_hours, "2000-01-01", 3).encoding["dtype"] == "float64"


def test_select_grid_accepts_equal_or_larger_grids(noleap, tmp_path):
    ds, grid = noleap
    xr.testing.assert_identical(select_grid(ds, grid, "ctx"), ds)
    wider = xr.concat([ds.assign_coords(lon=ds.lon - 10), ds], "lon")
    xr.testing.assert_identical(select_grid(wider, grid, "ctx"), ds)
    expected = (
        r"ctx: its grid \(lat 6 points.*lon 4 points.*training grid \(lat 6 points 50\.\.55, "
    )
    with pytest.raises(DataError, match=expected + r"lon 8 points -5\.\.2\)"):
        select_grid(ds.isel(lon=slice(0, 4)), grid, "ctx")


def test_write_netcdf_is_cf_float32_zlib(noleap, tmp_path):
    ds, _ = noleap
    ds = ds.assign(count=ds.tas.astype("float64"))
    out = write_netcdf(ds, tmp_path / "out.nc", command="stgan generate run --num 1")
    back = xr.open_dataset(out)
    assert back["count"].encoding["dtype"] == np.float32 and back["count"].encoding["zlib"]
    np.testing.assert_array_equal(back.tas.isnull(), ds.tas.isnull())
    assert back.attrs["Conventions"] == "CF-1.8"
    assert back.attrs["stgan_version"] == __version__
    newest, previous = back.attrs["history"].split("\n")
    assert newest.endswith("Z: stgan generate run --num 1") and previous == "made by a test"
    assert "_FillValue" not in back.lat.encoding
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data.nc", "out.nc", "spec.yaml"]


def test_write_failing_midway_leaves_no_file(noleap, tmp_path, monkeypatch):
    ds, _ = noleap
    real = xr.Dataset.to_netcdf

    def write_then_fail(self, path, *args, **kwargs):
        real(self, path, *args, **kwargs)
        assert os.path.getsize(path) > 0  # a whole file under the temporary name
        raise OSError("disk full")

    monkeypatch.setattr(xr.Dataset, "to_netcdf", write_then_fail)
    before = sorted(p.name for p in tmp_path.iterdir())
    with pytest.raises(OSError, match="disk full"):
        write_netcdf(ds, tmp_path / "out.nc")
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_output_path_must_be_writable(tmp_path):
    assert check_output_path(tmp_path / "a.nc") == tmp_path / "a.nc"
    with pytest.raises(DataError, match="directory .*missing does not exist; create it first"):
        check_output_path(tmp_path / "missing" / "a.nc")
    with pytest.raises(DataError, match="is a directory"):
        check_output_path(tmp_path)


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into read-only directories")
def test_output_directory_not_writable(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o555)
    with pytest.raises(DataError, match="is not writable"):
        check_output_path(locked / "a.nc")
