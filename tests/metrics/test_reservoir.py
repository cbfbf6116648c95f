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


def test_same_seed_same_rows_other_seed_other_rows():
    rows = np.arange(50_000.0)
    first = fill(Reservoir(cap=1000, seed=5), rows, chunks=13)
    again = fill(Reservoir(cap=1000, seed=5), rows, chunks=13)
    other = fill(Reservoir(cap=1000, seed=6), rows, chunks=13)
    np.testing.assert_array_equal(first.rows(), again.rows())
    assert len(np.intersect1d(first.rows(), other.rows())) < 100  # ~ 1000 * 1000 / 50_000


def test_subsample_is_uniform_over_the_whole_stream():
    """Kept rows spread evenly over the stream (chi-square over 20 equal stretches), early
    and late batches alike, though later batches are filtered by the threshold."""
    from scipy import stats

    n, cap = 200_000, 4000
    reservoir = fill(Reservoir(cap=cap, seed=0), np.arange(float(n)), chunks=100)
    counts = np.bincount((reservoir.rows() * 20 / n).astype(int), minlength=20)
    assert counts.sum() == cap
    assert stats.chisquare(counts).pvalue > 1e-3
    assert reservoir.threshold < 3 * cap / n  # the threshold tracks the cap-th smallest key


def test_a_full_reservoir_builds_only_the_rows_that_may_enter():
    reservoir = Reservoir(cap=1000, seed=0)
    built = []

    def rows_at(positions):
        rows = np.arange(10_000.0) if positions is None else positions.astype(float)
        built.append(len(rows))
        return rows

    for _ in range(20):
        reservoir.add_from(10_000, rows_at)
    assert built[0] == 10_000  # not yet full: every row
    # full: the rows below the threshold, which falls at each prune (held > 2 cap) towards
    # cap / seen: a few percent of the 190_000 rows offered, not all of them
    assert sum(built[1:]) < 0.04 * 190_000
    assert built[-1] < 0.04 * 10_000
    assert reservoir.seen == 200_000 and len(reservoir.rows()) == 1000
