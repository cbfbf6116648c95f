import numpy as np
import pytest
import torch
from scipy import stats

from stgan.errors import DataError
from stgan.metrics.distribution import QUANTILE_LEVELS, Marginal, cdf_distances

from .conftest import space_time


def valid(x: np.ndarray) -> np.ndarray:
    return x[~np.isnan(x)].astype(np.float64)


@pytest.fixture
def pair(rng):
    real = space_time(rng, (4, 6, 5, 7), phi=0.7) * 3 + 10
    real[0, :, 1, 1] = np.nan
    synthetic = space_time(rng, (3, 6, 5, 7), phi=0.2) * 2 + 11
    synthetic[1, 2] = np.nan
    return real, synthetic


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_matches_scipy_and_numpy(pair, dtype):
    real, synthetic = (x.astype(dtype) for x in pair)
    metric = Marginal()
    metric.update(real=real, synthetic=torch.as_tensor(synthetic))
    result = metric.compute()
    r, s = valid(real), valid(synthetic)
    assert result["wasserstein1"] == pytest.approx(stats.wasserstein_distance(r, s), rel=1e-12)
    assert result["ks"] == pytest.approx(stats.ks_2samp(r, s).statistic, rel=1e-12)
    assert result["energy"] == pytest.approx(stats.energy_distance(r, s), rel=1e-12)
    q_r, q_s = np.quantile(r, QUANTILE_LEVELS), np.quantile(s, QUANTILE_LEVELS)
    np.testing.assert_allclose(result["quantiles"]["real"], q_r, rtol=1e-12)
    np.testing.assert_allclose(result["quantiles"]["synthetic"], q_s, rtol=1e-12)
    np.testing.assert_allclose(result["quantiles"]["abs_diff"], np.abs(q_r - q_s), rtol=1e-12)
    assert "values_subsample" not in result


def test_batches_and_merge_equal_one_shot(pair):
    real, synthetic = pair
    whole = Marginal()
    whole.update(real=real, synthetic=synthetic)
    first, second = Marginal(), Marginal()
    first.update(real=real[:1], synthetic=synthetic[:2])
    second.update(real=real[1:], synthetic=synthetic[2:])
    first.merge(second)
    assert first.compute() == whole.compute()


def test_large_input_is_subsampled_and_says_so(rng):
    metric = Marginal(scores=("ks",), cap=1000)
    metric.update(real=rng.normal(size=(5, 10, 10, 10)), synthetic=rng.normal(size=(1, 2, 10, 10)))
    result = metric.compute()
    assert result["values_subsample"] == {"real": 1000, "synthetic": 200}
    assert result["ks"] < 0.2


def test_same_generator_scores_near_zero_and_another_does_not(rng):
    data = space_time(rng, (40, 8, 8, 8), phi=0.8, beta=2.0)
    halves, shifted = Marginal(), Marginal()
    halves.update(real=data[:20], synthetic=data[20:])
    shifted.update(real=data[:20], synthetic=data[20:] * 2 + 1)
    assert halves.compute()["ks"] < 0.05
    assert shifted.compute()["ks"] > 0.3


def test_no_valid_value_raises():
    metric = Marginal()
    metric.update(real=np.ones((1, 2, 2, 2)), synthetic=np.full((1, 2, 2, 2), np.nan))
    with pytest.raises(DataError, match="synthetic data has no valid"):
        metric.compute()


def test_below_the_reservoir_float32_batches_score_exactly_as_all_values_in_float64(pair):
    """Kept in float32, given to scipy in float64: the numbers are those of the full pool."""
    real, synthetic = (x.astype(np.float32) for x in pair)
    metric = Marginal()
    for start in range(0, 4, 3):
        metric.update(real=real[start : start + 3])
    metric.update(synthetic=synthetic)
    result = metric.compute()
    r, s = valid(real), valid(synthetic)
    assert metric.real.reservoir.rows().dtype == np.float32
    assert result["wasserstein1"] == stats.wasserstein_distance(r, s)
    assert result["ks"] == stats.ks_2samp(r, s).statistic
    assert result["energy"] == stats.energy_distance(r, s)
    assert result["quantiles"]["real"] == np.quantile(r, QUANTILE_LEVELS).tolist()


def test_above_the_reservoir_the_scores_differ_from_the_full_pool_by_sampling_error(rng):
    """A 20_000-value reservoir against 480_000 values a side, both against the full-pool
    reference: ks within 2 / sqrt(cap), wasserstein1 within 5 std / sqrt(cap), energy
    within 2 std / sqrt(cap) (each about 4 standard deviations of the sampling error,
    measured over 12 seeds). The real samples drift (a trend over the stream), so a
    sample biased to early or late batches would miss."""
    shape = (40, 12, 25, 40)  # 480_000 values
    trend = np.linspace(0, 4, shape[0])[:, None, None, None]
    real = (space_time(rng, shape, phi=0.8) * 3 + 280 + trend).astype(np.float32)
    synthetic = space_time(rng, shape, phi=0.5).astype(np.float32) * 3.3 + 280.5
    cap = 20_000
    sampled, full = Marginal(cap=cap), Marginal(cap=real.size)
    for metric in (sampled, full):
        for start in range(0, len(real), 8):
            metric.update(real=real[start : start + 8], synthetic=synthetic[start : start + 8])
    got, reference = sampled.compute(), full.compute()
    assert got["values_subsample"] == {"real": cap, "synthetic": cap}
    assert "values_subsample" not in reference
    scale = 1 / np.sqrt(cap)  # 0.007
    std = real.std()  # ~3.4
    assert abs(got["ks"] - reference["ks"]) < 2 * scale
    assert abs(got["wasserstein1"] - reference["wasserstein1"]) < 5 * std * scale
    assert abs(got["energy"] - reference["energy"]) < 2 * std * scale
    assert reference["ks"] > 10 * 2 * scale  # the difference is real, not sampling noise


@pytest.mark.parametrize(
    "case", ["ties", "zero_inflated", "one_value_a_side", "different_sizes", "disjoint"]
)
def test_cdf_distances_equal_scipys_three_functions(rng, case):
    real, synthetic = {
        "ties": (rng.integers(0, 5, 300), rng.integers(0, 7, 200)),
        "zero_inflated": (
            np.where(rng.random(500) < 0.7, 0.0, rng.exponential(size=500)),
            np.where(rng.random(400) < 0.4, 0.0, rng.exponential(size=400)),
        ),
        "one_value_a_side": (np.array([1.5]), np.array([-2.0])),
        "different_sizes": (rng.normal(size=7), rng.normal(1, 2, size=1001)),
        "disjoint": (rng.uniform(0, 1, 50), rng.uniform(3, 4, 60)),
    }[case]
    real, synthetic = real.astype(np.float64), synthetic.astype(np.float64)
    got = cdf_distances(real, synthetic)
    assert got["wasserstein1"] == pytest.approx(
        stats.wasserstein_distance(real, synthetic), rel=1e-12, abs=1e-15
    )
    assert got["ks"] == pytest.approx(stats.ks_2samp(real, synthetic).statistic, rel=1e-12)
    assert got["energy"] == pytest.approx(
        stats.energy_distance(real, synthetic), rel=1e-12, abs=1e-15
    )
