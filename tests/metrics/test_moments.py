import numpy as np

from stgan.metrics.moments import CoMoments


def with_gaps(rng: np.random.Generator) -> np.ndarray:
    x = rng.normal(size=(3, 500)) + np.array([[280.0], [1000.0], [0.0]])
    x[1] += 0.5 * x[0]
    x[0, :60] = np.nan
    x[2, 40:150] = np.nan
    return x


def test_pairwise_correlation_matches_numpy(rng):
    x = with_gaps(rng)
    moments = CoMoments(3)
    for chunk in np.array_split(x, 9, axis=1):
        moments.update(chunk)
    for a in range(3):
        for b in range(3):
            both = ~np.isnan(x[a]) & ~np.isnan(x[b])
            expected = np.corrcoef(x[a, both], x[b, both])[0, 1]
            assert abs(moments.correlation()[a, b] - expected) < 1e-12


def test_mean_and_std_match_numpy_despite_a_large_mean(rng):
    x = with_gaps(rng) + 1e6
    moments = CoMoments(3)
    moments.update(x[:, :250])
    other = CoMoments(3)
    other.update(x[:, 250:])
    moments.merge(other)
    np.testing.assert_allclose(moments.mean.diagonal(), np.nanmean(x, axis=1), rtol=1e-14)
    np.testing.assert_allclose(moments.std(), np.nanstd(x, axis=1), rtol=1e-9)


def test_merging_an_empty_state_changes_nothing(rng):
    moments = CoMoments(3)
    moments.update(with_gaps(rng))
    before = moments.correlation().copy()
    moments.merge(CoMoments(3))
    np.testing.assert_array_equal(moments.correlation(), before)
