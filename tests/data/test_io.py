import numpy as np
import pytest

from stgan.data.io import open_source
from stgan.data.spec import load_spec
from stgan.errors import DataError, SpecError
from tests.conftest import make_dataset, write_spec


def source_for(tmp_path, **fields):
    return open_source(load_spec(write_spec(tmp_path / "spec.yaml", **fields)))


def test_opens_lazily_and_reads_a_window(tiny):
    src = open_source(load_spec(tiny / "spec.yaml"))
    assert src.dims.time == "time" and src.dims.y == "lat" and src.dims.x == "lon"
    assert src.grid == (6, 8)
    window = src.read(src.open_handles(), 5, 9, src.ys, src.xs)
    expected = make_dataset()["tas"].values[5:9, None]
    np.testing.assert_array_equal(window, expected)


def test_several_files_join_along_time_in_time_order(tmp_path):
    full = make_dataset(nt=30, variables=("tas", "pr"))
    full.isel(time=slice(15, 30)).to_netcdf(tmp_path / "a.nc")  # later part sorts first by name
    full.isel(time=slice(0, 15)).to_netcdf(tmp_path / "b.nc")
    src = source_for(tmp_path, files="*.nc", variables=["tas", "pr"])
    assert len(src.time) == 30 and src.time.is_monotonic_increasing
    window = src.read(src.open_handles(), 12, 18, src.ys, src.xs)  # crosses the file boundary
    expected = np.stack([full["tas"].values[12:18], full["pr"].values[12:18]], axis=1)
    np.testing.assert_array_equal(window, expected)


def test_dims_from_common_names_and_overrides(tmp_path):
    ds = make_dataset().rename(lat="rows", lon="cols")
    for name in ("rows", "cols"):
        ds[name].attrs = {}
    ds.to_netcdf(tmp_path / "data.nc")
    with pytest.raises(DataError, match=r"cannot identify the y dim among dims time, rows, cols"):
        source_for(tmp_path)
    src = source_for(tmp_path, dims={"y": "rows", "x": "cols"})
    assert (src.dims.y, src.dims.x) == ("rows", "cols")


def test_crop_by_index_and_by_coordinates(tiny):
    src = source_for(tiny, crop={"y": [1, 5], "x": [0, 6]})
    assert src.grid == (4, 6)
    lat = make_dataset()["lat"].values
    src = source_for(tiny, crop={"y": [float(lat[2]), float(lat[4])], "by": "coords"})
    assert (src.ys.start, src.ys.stop) == (2, 5)


def test_coarsen_trims_to_a_multiple(tiny):
    src = source_for(tiny, coarsen=4)
    assert src.grid == (1, 2)
    assert src.coords["x"].size == 2


def test_glob_matching_nothing(tiny):
    with pytest.raises(DataError, match=r"glob 'nothing\*.nc' matches no file"):
        source_for(tiny, files="nothing*.nc")


def test_missing_file(tiny):
    with pytest.raises(DataError, match=r"'absent.nc' not found"):
        source_for(tiny, files="absent.nc")


def test_corrupt_file_is_named(tiny):
    (tiny / "bad.nc").write_bytes(b"this is not netcdf at all")
    with pytest.raises(DataError, match=r"bad.nc: cannot be read as NetCDF"):
        source_for(tiny, files="bad.nc")


def test_missing_variable_lists_those_present(tiny):
    with pytest.raises(DataError, match=r"variable 'precip' not found; variables present: tas"):
        source_for(tiny, variables=["precip"])


def test_variable_with_extra_dims(tmp_path):
    ds = make_dataset()
    ds["lev"] = ds["tas"].expand_dims(level=2)
    ds.to_netcdf(tmp_path / "data.nc")
    with pytest.raises(DataError, match=r"variable 'lev' has dims \(level, time, lat, lon\)"):
        source_for(tmp_path, variables=["lev"])


def test_grids_that_differ(tmp_path):
    make_dataset(nt=10).to_netcdf(tmp_path / "a.nc")
    make_dataset(nt=10, start="2000-01-02", nx=9).to_netcdf(tmp_path / "b.nc")
    with pytest.raises(
        DataError, match=r"b.nc: its lon grid \(9 points\) differs from a.nc's \(8 points\)"
    ):
        source_for(tmp_path, files="*.nc")


def test_crop_outside_grid(tiny):
    with pytest.raises(SpecError, match=r"crop\.x: \[0, 20\] exceeds the 8 points"):
        source_for(tiny, crop={"x": [0, 20]})
