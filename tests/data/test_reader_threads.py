"""FileReader's netCDF4 calls never run beside dask's threads reading through xarray.

HDF5 is not thread-safe: xarray serializes its netCDF4 reads with one lock, and a file
that netCDF4 closes itself when the garbage collector frees it calls HDF5 from whatever
thread the collector ran in, outside that lock (CI crashed with a segmentation fault in
the test suite so). A reader freed while the lock is held is closed by the next call.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

from stgan.data import reader as reader_module
from stgan.data.reader import FileReader
from tests.conftest import make_dataset

ORDER = ("time", "lat", "lon")

# Readers in reference cycles, freed by the cyclic collector (often in a dask thread)
# while dask's threads read another file through xarray. Unlocked, this crashed within
# about 30 rounds of 60 on every try.
FREED_BESIDE_DASK = textwrap.dedent(
    """
    import gc, sys
    import xarray as xr
    from stgan.data.reader import FileReader

    class Cycle:
        def __init__(self, path):
            self.reader = FileReader(path, ["tas"], ("time", "lat", "lon"))
            self.reader.read(slice(0, 20), slice(0, 32), slice(0, 32))
            self.me = self

    gc.set_threshold(50, 2, 2)
    raw, lazy = sys.argv[1:3]
    for _ in range(60):
        cycles = [Cycle(raw) for _ in range(5)]
        del cycles
        ds = xr.open_dataset(lazy, chunks={"time": 4}, engine="netcdf4", cache=False)
        float((ds.tas * 2).mean().compute())
        ds.close()
    """
)


def _write(path, nt=200, side=32):
    encoding = {"tas": {"chunksizes": (4, side, side), "zlib": True}}
    make_dataset(nt=nt, ny=side, nx=side).to_netcdf(path, engine="netcdf4", encoding=encoding)
    return path


def test_readers_freed_beside_dask_threads_do_not_crash(tmp_path):
    raw, lazy = _write(tmp_path / "raw.nc"), _write(tmp_path / "lazy.nc")
    done = subprocess.run(
        [sys.executable, "-c", FREED_BESIDE_DASK, str(raw), str(lazy)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]


def test_a_reader_freed_under_the_lock_is_closed_by_the_next_call(tmp_path):
    path = _write(tmp_path / "a.nc", nt=8, side=4)
    reader = FileReader(path, ["tas"], ORDER)
    dataset = reader.dataset
    with reader_module.HDF5_CALLS:
        del reader  # freed while a read (here: this block) holds the lock
        assert dataset.isopen() and reader_module._DEFERRED[-1] is dataset
    other = FileReader(path, ["tas"], ORDER)
    assert not dataset.isopen() and reader_module._DEFERRED == []
    del other


def test_a_reader_freed_unlocked_closes_its_file_at_once(tmp_path):
    reader = FileReader(_write(tmp_path / "a.nc", nt=8, side=4), ["tas"], ORDER)
    dataset = reader.dataset
    del reader
    assert not dataset.isopen() and reader_module._DEFERRED == []


def test_close_twice_and_free_after_close(tmp_path):
    reader = FileReader(_write(tmp_path / "a.nc", nt=8, side=4), ["tas"], ORDER)
    reader.close()
    reader.close()
    assert not reader.dataset.isopen()
    del reader
    assert reader_module._DEFERRED == []
