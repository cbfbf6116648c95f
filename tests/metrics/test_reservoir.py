import numpy as np

from stgan.metrics.reservoir import Reservoir


def fill(reservoir: Reservoir, rows: np.ndarray, chunks: int) -> Reservoir:
    for chunk in np.array_split(rows, chunks):
        reservoir.add(chunk)
    return reservoir


def test_keeps_everything_in_order_up_to_cap():
    rows = np.arange(100.0)
    reservoir = fill(Reservoir(cap=100), rows, chunks=7)
    np.testing.assert_array_equal(reservoir.rows(), rows)
    assert not reservoir.subsampled


def test_subsample_has_cap_distinct_rows_independent_of_batching():
    rows = np.arange(10_000.0)
    one = fill(Reservoir(cap=500, seed=3), rows, chunks=1)
    many = fill(Reservoir(cap=500, seed=3), rows, chunks=37)
    assert one.subsampled and len(one.rows()) == 500
    assert len(np.unique(one.rows())) == 500
    np.testing.assert_array_equal(one.rows(), many.rows())
    assert abs(one.rows().mean() - rows.mean()) < 0.1 * rows.mean()  # uniform, not a prefix


def test_merge_keeps_cap_rows_from_both_sides():
    first = fill(Reservoir(cap=300, seed=1), np.arange(1000.0), chunks=3)
    second = fill(Reservoir(cap=300, seed=2), np.arange(1000.0, 2000.0), chunks=5)
    first.merge(second)
    kept = first.rows()
    assert first.seen == 2000 and len(kept) == 300
    assert 100 < (kept >= 1000).sum() < 200  # both halves equally likely


def test_rows_can_be_vectors():
    reservoir = fill(Reservoir(cap=4, seed=0), np.arange(30.0).reshape(10, 3), chunks=2)
    assert reservoir.rows().shape == (4, 3)
