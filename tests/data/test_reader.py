"""The fast read path returns exactly what xarray's lazy indexing returned: values, masks,
coarsened cells, across files, chunk layouts, packed variables and both cache regimes."""

import numpy as np
import pytest
import torch
import xarray as xr
from torch.utils.data import DataLoader

from stgan.data import load_spec, prepare
from stgan.data import reader as reader_module
from stgan.data.coarsen import coarsen_array
from stgan.data.dataset import WindowDataset
from tests.conftest import make_dataset, write_spec

VARIABLES = {"tas": "standardize", "pr": "log1p", "q": "minmax"}
HELD, STREAMED = reader_module.BLOCK_CACHE_BYTES, 20_000  # all blocks fit; a few do


@pytest.fixture
def files(tmp_path):
    """Two files (steps 0-24, 25-59) of a 10x12 grid: NaN cells, 3x4x6 chunks, ``q``
    packed as int16 with scale, offset and fill value, ``pr`` stored as (lon, time, lat)."""
    ds = make_dataset(nt=60, ny=10, nx=12, variables=("tas", "pr", "q"), nan_cells=((1, 2),))
    ds["pr"] = ds["pr"].transpose("lon", "time", "lat")
    ds["q"][7, 3:5, 4] = np.nan
    chunks = {"tas": (3, 4, 6), "pr": (6, 5, 2), "q": (3, 4, 6)}  # in each one's dim order
    encoding = {v: {"chunksizes": c} for v, c in chunks.items()}
    encoding["q"].update(dtype="int16", scale_factor=0.01, add_offset=280.0, _FillValue=-32767)
    for name, part in (("a.nc", slice(0, 25)), ("b.nc", slice(25, 60))):
        ds.isel(time=part).to_netcdf(tmp_path / name, encoding=encoding)
    return tmp_path


def xarray_values(files, variables):
    """The old read of every step: xarray's decoding of each file, float32 (T, C, H, W)."""
    paths = sorted(files.glob("*.nc"))
    full = xr.concat([xr.open_dataset(p)[variables] for p in paths], dim="time")
    parts = [full[v].transpose("time", "lat", "lon").values for v in variables]
    return np.stack(parts, axis=1).astype(np.float32)


def old_forward(transforms, x):
    """The old normalization: a float32 copy per channel, stacked, NaN filled with 0."""
    mask = np.isfinite(x)
    channels = []
    for t, c in zip(transforms.variables.values(), np.moveaxis(x, 1, 0)):
        z = np.array(c, dtype=np.float32)
        if t.kind == "log1p":
            np.log1p(z, out=z)
        z -= np.float32(t.offset)
        z /= np.float32(t.scale)
        channels.append(z)
    z = np.stack(channels, axis=1)
    z[~mask] = 0.0
    return z, mask


def prepared(path, **fields):
    variables = {v: {"transform": kind} for v, kind in VARIABLES.items()}
    spec = write_spec(path / "spec.yaml", files="*.nc", variables=variables, **fields)
    return prepare(load_spec(spec))


def test_source_read_matches_xarray(files):
    src = prepared(files).source
    handles = src.open_handles()
    reads = []
    for start, stop, ys, xs in (
        (0, 60, slice(0, 10), slice(0, 12)),
        (20, 31, slice(3, 9), slice(5, 11)),
    ):
        new = src.read(handles, start, stop, ys, xs)
        old = xarray_values(files, src.variables)[start:stop, :, ys, xs]
        assert new.dtype == np.float32 and new.shape == old.shape
        np.testing.assert_array_equal(new, old)  # NaN where xarray has NaN
        reads.append(new)
    q = reads[0][:, src.variables.index("q")]
    assert np.isnan(q[7, 3:5, 4]).all() and np.isnan(q).sum() == 60 + 2  # fill value, NaN cell


@pytest.mark.parametrize(
    "coarsen, patch, budget",
    [(1, None, HELD), (1, 5, STREAMED), (2, None, STREAMED), (2, 2, HELD)],
)
def test_items_match_the_old_path(files, monkeypatch, coarsen, patch, budget):
    monkeypatch.setattr(reader_module, "MIN_BLOCK_CELLS", 1)  # several blocks per file
    data = prepared(files, coarsen=coarsen, patch=patch, window={"length": 4, "stride": 1})
    base = data.dataset("train")
    ds = WindowDataset(
        data.source, base.starts, data.transforms, 4, patch, base.seed, False, budget
    )
    values = xarray_values(files, data.source.variables)
    order = np.random.default_rng(0).permutation(len(ds)).tolist()
    batches = list(DataLoader(ds, batch_size=5, sampler=order))  # through __getitems__
    assert ds._blocks.held == (budget == HELD)
    for i, (x, mask) in zip(order, (item for b in batches for item in zip(*b))):
        start = int(ds.starts[i])
        ys, xs = ds._region(i)
        raw = values[start : start + 4, :, ys, xs]
        z, valid = old_forward(data.transforms, coarsen_array(raw, coarsen))
        assert torch.equal(x, torch.from_numpy(z)) and torch.equal(mask, torch.from_numpy(valid))
        assert torch.equal(ds[i][0], x) and torch.equal(ds[i][1], mask)
    assert any(not mask.all() for _, mask in batches)  # NaN cells are masked


def test_data_over_the_budget_are_streamed_and_not_kept(files):
    data = prepared(files, window={"length": 4, "stride": 1})
    base = data.dataset("train")
    held = WindowDataset(data.source, base.starts, data.transforms, 4)
    streamed = WindowDataset(data.source, base.starts, data.transforms, 4, block_bytes=20_000)
    for i in range(len(base)):
        assert torch.equal(held[i][0], streamed[i][0])
    assert held._blocks.held and held._blocks.nbytes > 20_000
    assert not streamed._blocks.held and streamed._blocks.nbytes == 0


def test_only_the_blocks_of_the_split_count_against_the_budget(files, monkeypatch):
    monkeypatch.setattr(reader_module, "MIN_BLOCK_CELLS", 1)
    monkeypatch.setattr(reader_module, "HELD_BLOCK_WINDOWS", 1)  # blocks of 4 + 3 steps
    data = prepared(files, window={"length": 4, "stride": 1})
    src = data.source
    whole = src.block_cache(src.open_handles(), 4, lambda x: (x,))._prepared_bytes((0, 60))
    first = src.block_cache(src.open_handles(), 4, lambda x: (x,))._prepared_bytes((0, 12))
    assert 0 < first < whole / 3
    train = data.dataset("train")  # steps 0-29 of 60
    split = WindowDataset(src, train.starts, data.transforms, 4, block_bytes=whole * 2 // 3)
    split[0]
    everything = np.arange(57)
    other = WindowDataset(src, everything, data.transforms, 4, block_bytes=whole * 2 // 3)
    other[0]
    assert split._blocks.held and not other._blocks.held


def test_netcdf3_files_are_read(tmp_path):
    make_dataset(nt=30, ny=6, nx=8, nan_cells=((2, 3),)).to_netcdf(
        tmp_path / "data.nc", format="NETCDF3_64BIT"
    )
    spec = write_spec(tmp_path / "spec.yaml", window={"length": 4, "stride": 1})
    src = prepare(load_spec(spec)).source
    new = src.read(src.open_handles(), 3, 11, src.ys, src.xs)
    np.testing.assert_array_equal(new, xarray_values(tmp_path, ["tas"])[3:11])


def test_views_of_blocks_are_not_changed_by_batches(files):
    data = prepared(files, window={"length": 4, "stride": 1})
    ds = data.dataset("train")
    first = ds[0][0].clone()
    for x, _ in DataLoader(ds, batch_size=4):
        x.mul_(0)  # a batch is the collate's copy, not the cache
    assert torch.equal(ds[0][0], first)


def test_calendar_windows_batches_take_the_block_path_and_match_items(files, monkeypatch):
    from stgan.training.batches import CalendarWindows

    data = prepared(files, window={"length": 4, "stride": 1})
    ds = data.dataset("train")
    table = np.arange(60 * 2, dtype=np.float32).reshape(60, 2)  # (N_time, F): step, step
    windows = CalendarWindows(ds, table)
    calls = []
    monkeypatch.setattr(ds, "__getitems__", lambda idx: calls.append(idx) or [ds[i] for i in idx])
    order = [5, 0, 9, 3]
    ((x, mask, calendar),) = list(DataLoader(windows, batch_size=4, sampler=order))
    assert calls == [order]
    for row, i in enumerate(order):
        assert torch.equal(x[row], ds[i][0]) and torch.equal(mask[row], ds[i][1])
        start = int(ds.starts[i])
        assert torch.equal(calendar[row], torch.from_numpy(table[start : start + 4]))
