import numpy as np
import pytest
from scipy import stats

from stgan.errors import StganError
from stgan.metrics.registry import METRICS, get_metric

NAMES = [
    "acf", "psd", "wasserstein1", "ks", "energy", "quantiles", "mmd2", "c2st",
    "precision", "recall", "density", "coverage", "cross_correlation",
]  # fmt: skip


def test_every_metric_of_the_definitions_is_registered():
    assert sorted(METRICS) == sorted(NAMES)


@pytest.mark.parametrize("name", [n for n in NAMES if n != "cross_correlation"])
def test_each_metric_reports_under_its_name(rng, name):
    metric = get_metric(name)
    metric.update(real=rng.normal(size=(8, 4, 3, 3)), synthetic=rng.normal(size=(8, 4, 3, 3)))
    assert name in metric.compute()


def test_options_reach_the_metric(rng):
    real, synthetic = rng.normal(size=(2, 9, 3, 3)), rng.normal(size=(2, 9, 3, 3))
    acf = get_metric("acf", lags=3)
    acf.update(real=real, synthetic=synthetic)
    assert acf.compute()["acf"]["lags"] == [0, 1, 2, 3]
    ks = get_metric("ks")
    ks.update(real=real, synthetic=synthetic)
    assert ks.compute() == {"ks": stats.ks_2samp(real.ravel(), synthetic.ravel()).statistic}


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(StganError, match="unknown metric 'fid'.*acf, psd") as error:
        get_metric("fid")
    assert "cross_correlation" in str(error.value)


def test_metrics_are_fresh_each_time():
    assert get_metric("psd") is not get_metric("psd")
    assert np.all([callable(factory) for factory in METRICS.values()])
