import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, DistributedSampler

from stgan.data import load_spec, prepare
from tests.conftest import make_dataset, write_spec


@pytest.fixture
def masked(tmp_path):
    make_dataset(nt=60, ny=8, nx=12, variables=("tas", "pr"), nan_cells=((1, 2), (3, 3))).to_netcdf(
        tmp_path / "data.nc"
    )
    return tmp_path


def prepared(path, **fields):
    fields.setdefault("variables", ["tas", "pr"])
    return prepare(load_spec(write_spec(path / "spec.yaml", **fields)))


def test_items_are_normalized_windows_with_mask(masked):
    data = prepared(masked)
    ds = data.dataset("train")
    x, mask = ds[1]
    assert x.shape == (4, 2, 8, 12) and x.dtype == torch.float32 and mask.dtype == torch.bool
    assert torch.isfinite(x).all()
    assert not mask[:, :, 1, 2].any() and mask[:, :, 0, 0].all()
    raw = make_dataset(nt=60, ny=8, nx=12, variables=("tas", "pr"), nan_cells=((1, 2), (3, 3)))
    start = int(data.layout.windows["train"][1])
    physical = data.transforms.inverse(x.numpy(), channel_axis=1)
    np.testing.assert_allclose(
        physical[:, 0][mask[:, 0].numpy()],
        raw["tas"].values[start : start + 4][mask[:, 0].numpy()],
        rtol=1e-6,
    )


def test_patches_are_deterministic_per_seed_and_epoch(masked):
    ds = prepared(masked, patch=4).dataset("train")
    a, b = ds[3][0], ds[3][0]
    assert a.shape == (4, 2, 4, 4) and torch.equal(a, b)
    positions = {
        tuple(ds._region(i)[0].indices(100)) + tuple(ds._region(i)[1].indices(100))
        for i in range(len(ds))
    }
    assert len(positions) > 1
    ds.set_epoch(1)
    moved = [
        not torch.equal(ds[i][0], prepared(masked, patch=4).dataset("train")[i][0])
        for i in range(len(ds))
    ]
    assert any(moved)


def test_memory_cache_matches_lazy_reads(masked):
    lazy = prepared(masked).dataset("val")
    cached = prepared(masked, cache="memory").dataset("val")
    for i in range(len(lazy)):
        assert torch.equal(lazy[i][0], cached[i][0]) and torch.equal(lazy[i][1], cached[i][1])


def test_coarsening_matches_xarray(masked):
    data = prepared(masked, coarsen=2)
    x, mask = data.dataset("train")[0]
    assert x.shape == (4, 2, 4, 6)
    raw = make_dataset(nt=60, ny=8, nx=12, variables=("tas", "pr"), nan_cells=((1, 2), (3, 3)))
    expected = raw["tas"][0:4].coarsen(lat=2, lon=2).reduce(np.mean).values
    physical = data.transforms.inverse(x.numpy(), channel_axis=1)[:, 0]
    np.testing.assert_array_equal(~mask[:, 0].numpy(), np.isnan(expected))
    np.testing.assert_allclose(
        physical[mask[:, 0].numpy()], expected[~np.isnan(expected)], rtol=1e-6
    )


def test_workers_yield_the_same_batches(masked):
    ds = prepared(masked, patch=4).dataset("train")
    batches = [
        torch.cat([x for x, _ in DataLoader(ds, batch_size=3, num_workers=n)]) for n in (0, 2)
    ]
    assert torch.equal(batches[0], batches[1])


def test_distributed_sampler_splits_windows(masked):
    ds = prepared(masked).dataset("train")
    seen = []
    for rank in range(2):
        sampler = DistributedSampler(ds, num_replicas=2, rank=rank, shuffle=True, seed=0)
        sampler.set_epoch(3)
        seen.append(list(sampler))
    assert not set(seen[0]) & set(seen[1])
    assert set(seen[0]) | set(seen[1]) == set(range(len(ds)))
    x = torch.stack([ds[i][0] for i in seen[0]])
    assert x.shape[1:] == (4, 2, 8, 12)
