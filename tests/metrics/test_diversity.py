import numpy as np
import pytest
from scipy.spatial.distance import cdist, pdist

from stgan.errors import DataError
from stgan.metrics.diversity import Sequences, c2st, mmd2

from .conftest import space_time


def brute_force_mmd2(x: np.ndarray, y: np.ndarray) -> float:
    """Unbiased MMD^2 with a Gaussian kernel, bandwidth the median pooled distance."""
    sigma = np.median(pdist(np.concatenate([x, y])))

    def k(a, b):
        return np.exp(-cdist(a, b, "sqeuclidean") / (2 * sigma**2))

    m, n = len(x), len(y)
    k_xx, k_yy = k(x, x), k(y, y)
    within_x = (k_xx.sum() - np.trace(k_xx)) / (m * (m - 1))
    within_y = (k_yy.sum() - np.trace(k_yy)) / (n * (n - 1))
    return within_x + within_y - 2 * k(x, y).mean()


def scores(real, synthetic, **options) -> dict:
    metric = Sequences(**options)
    metric.update(real=real, synthetic=synthetic)
    return metric.compute()


def test_mmd2_matches_brute_force(rng):
    x, y = rng.normal(size=(12, 5)), rng.normal(size=(9, 5)) + 0.3
    assert mmd2(x, y) == pytest.approx(brute_force_mmd2(x, y), rel=1e-9, abs=1e-12)


def test_mmd2_is_near_zero_for_one_distribution_and_grows_with_a_shift(rng):
    x, y = rng.normal(size=(50, 8)), rng.normal(size=(50, 8))
    assert abs(mmd2(x, y)) < 0.02
    shifted = [mmd2(x, y + shift) for shift in (0.2, 0.5, 1.0)]
    assert abs(mmd2(x, y)) < shifted[0] < shifted[1] < shifted[2] and shifted[2] > 0.1


def test_samples_are_standardized_with_real_moments_and_nan_set_to_zero(rng):
    real, synthetic = space_time(rng, (10, 4, 3, 3)) * 5 + 280, space_time(rng, (8, 4, 3, 3)) + 280
    real[0, 1, 2, 2] = np.nan
    mean, std = np.nanmean(real), np.nanstd(real)
    x, y = (np.nan_to_num((s.reshape(len(s), -1) - mean) / std) for s in (real, synthetic))
    result = scores(real, synthetic, scores=("mmd2",))
    assert result["mmd2"] == pytest.approx(brute_force_mmd2(x, y), rel=1e-9)


def test_c2st_is_near_zero_for_one_distribution_and_half_for_separable(rng):
    x, y = rng.normal(size=(60, 10)), rng.normal(size=(60, 10))
    assert c2st(x, y) < 0.15
    assert c2st(x, y + 3) > 0.45
    assert c2st(x, y) == c2st(x, y)  # seeded


def test_c2st_with_more_features_than_points_equals_plain_sklearn(rng):
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    x, y = rng.normal(size=(30, 400)), rng.normal(loc=0.15, size=(30, 400))
    points, labels = np.concatenate([x, y]), np.repeat([0, 1], 30)
    # c2st permutes each side first (seeded), which a CV score over the same folds ignores
    # only up to fold membership; so compare on the permutation c2st uses
    perm = np.random.default_rng(0)
    points = np.concatenate([perm.permutation(x), perm.permutation(y)])
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    plain = cross_val_score(LogisticRegression(max_iter=1000), points, labels, cv=folds)
    assert c2st(x, y) == pytest.approx(abs(plain.mean() - 0.5), abs=1e-12)


def test_batches_and_merge_equal_one_shot(rng):
    real, synthetic = space_time(rng, (12, 4, 3, 3)), space_time(rng, (10, 4, 3, 3), phi=0.1)
    whole = Sequences()
    whole.update(real=real, synthetic=synthetic)
    first, second = Sequences(), Sequences()
    first.update(real=real[:5], synthetic=synthetic[:4])
    second.update(real=real[5:], synthetic=synthetic[4:])
    first.merge(second)
    for key, value in whole.compute().items():
        assert first.compute()[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def test_subsample_is_reported(rng):
    result = scores(space_time(rng, (30, 3, 2, 2)), space_time(rng, (8, 3, 2, 2)), cap=20)
    assert result["samples_subsample"] == {"real": 20, "synthetic": 8}


def test_repeated_sequence_has_low_recall_and_coverage(rng):
    real = space_time(rng, (200, 4, 3, 3), phi=0.8, beta=2.0)
    collapsed = np.repeat(space_time(rng, (1, 4, 3, 3), phi=0.8, beta=2.0), 100, axis=0)
    result = scores(real, collapsed, scores=("precision", "recall", "coverage"))
    assert result["recall"] < 0.05 and result["coverage"] < 0.1
    assert set(result) == {"precision", "recall", "coverage"}


def test_too_few_samples_and_mismatched_lengths_raise(rng):
    with pytest.raises(DataError, match="c2st needs at least 5"):
        scores(rng.normal(size=(3, 2, 2, 2)), rng.normal(size=(9, 2, 2, 2)), scores=("c2st",))
    with pytest.raises(DataError, match="same sequence length"):
        scores(rng.normal(size=(9, 2, 2, 2)), rng.normal(size=(9, 3, 2, 2)), scores=("mmd2",))
