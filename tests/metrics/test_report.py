import json

import numpy as np
import pytest
import torch
import xarray as xr

from stgan.errors import DataError
from stgan.metrics.registry import selection_score
from stgan.metrics.report import evaluate, evaluate_arrays

from .conftest import space_time

VARIABLE_KEYS = {
    "acf", "psd", "wasserstein1", "ks", "energy", "quantiles", "increments", "mmd2", "c2st",
    "precision", "recall", "density", "coverage",
}  # fmt: skip


def leaves(tree: object) -> list[float]:
    """Every number of a nested report, in a fixed order (names and None left out)."""
    if isinstance(tree, dict):
        return [leaf for key in sorted(tree) for leaf in leaves(tree[key])]
    if isinstance(tree, list):
        return [leaf for item in tree for leaf in leaves(item)]
    return [] if tree is None or isinstance(tree, str) else [float(tree)]


def test_report_has_the_documented_shape_and_is_strict_json(rng):
    real = {"u": space_time(rng, (12, 6, 5, 4)), "v": space_time(rng, (12, 6, 5, 4), phi=0.3)}
    synthetic = {
        name: torch.as_tensor(x[:8] * 1.1, dtype=torch.float32) for name, x in real.items()
    }
    floor = {name: space_time(rng, (9, 6, 5, 4)) for name in real}
    report = evaluate_arrays(real, synthetic, floor_real=floor, batch_size=5)
    json.dumps(report, allow_nan=False)
    assert set(report) == {
        "variables", "cross_correlation", "n_real", "n_synthetic", "floor", "score"
    }  # fmt: skip
    assert report["score"] == selection_score(report) and report["score"] > 0
    assert (report["n_real"], report["n_synthetic"]) == (12, 8)
    for entries in (report["variables"], report["floor"]):
        assert set(entries) == {"u", "v"}
        assert all(set(entry) == VARIABLE_KEYS for entry in entries.values())
    assert report["variables"]["u"]["acf"]["lags"] == [0, 1, 2, 3, 4, 5]
    assert set(report["variables"]["u"]["psd"]) == {"real", "synthetic", "lsd_db"}
    assert report["cross_correlation"]["variables"] == ["u", "v"]
    assert len(report["cross_correlation"]["real"]) == 2


def test_streaming_in_batches_does_not_change_the_numbers(rng):
    real, synthetic = {"u": space_time(rng, (10, 5, 4, 4))}, {"u": space_time(rng, (7, 5, 4, 4))}
    one_batch = evaluate_arrays(real, synthetic, lags=3, batch_size=100)
    many_batches = evaluate_arrays(real, synthetic, lags=3, batch_size=3)
    assert one_batch.keys() == many_batches.keys()
    np.testing.assert_allclose(leaves(many_batches), leaves(one_batch), rtol=1e-12, atol=1e-15)


def test_same_generator_scores_near_zero_and_other_generators_clearly_bad(rng):
    data = space_time(rng, (120, 12, 8, 8), phi=0.8, beta=2.5)
    white_noise = space_time(rng, (60, 12, 8, 8), phi=0.0, beta=0.0)
    collapsed = np.repeat(data[119:], 60, axis=0)
    halves = evaluate_arrays({"v": data[:60]}, {"v": data[60:]})["variables"]["v"]
    noise = evaluate_arrays({"v": data[:60]}, {"v": white_noise})["variables"]["v"]
    repeated = evaluate_arrays({"v": data[:60]}, {"v": collapsed})["variables"]["v"]
    assert halves["acf"]["error"] < 0.02 and halves["psd"]["lsd_db"] < 0.5
    assert halves["ks"] < 0.03 and halves["c2st"] < 0.15
    assert noise["acf"]["error"] > max(0.1, 5 * halves["acf"]["error"])
    assert noise["psd"]["lsd_db"] > 3
    assert repeated["recall"] < 0.05 and repeated["c2st"] > 0.4


def test_evaluate_reads_datasets(rng):
    values = space_time(rng, (24, 4, 3, 5))
    coords = {"lat": np.arange(3.0), "lon": np.arange(5.0)}
    real = xr.Dataset({"t2m": (("time", "lat", "lon"), values[:, 0], {"units": "K"})}, coords)
    synthetic = xr.Dataset(
        {"t2m": (("ensemble", "time", "lat", "lon"), values[:6], {"units": "K"})}, coords
    )
    report = evaluate(real, synthetic, lags=2)
    assert (report["n_real"], report["n_synthetic"]) == (6, 6)
    assert report["variables"]["t2m"]["acf"]["lags"] == [0, 1, 2]
    with pytest.raises(DataError, match="too short for 4 lags"):
        evaluate(real, synthetic, lags=4)
    with pytest.raises(DataError, match="real units 'K', synthetic 'degC'"):
        evaluate(real, synthetic.assign(t2m=synthetic.t2m.assign_attrs(units="degC")))
