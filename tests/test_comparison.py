"""One comparison for every stage: the windows, the floor, the sampling, the score."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import xarray as xr

from stgan.comparison import Comparison, Crop, Cut, RealWindows, real_windows, split_comparison
from stgan.data.io import open_source
from stgan.data.windows import build_layout
from stgan.metrics.registry import selection_score
from stgan.pipeline import run_pipeline
from stgan.training.config import load_pipeline
from stgan.training.loop import train
from tests.conftest import run_cli, tiny_pipeline, write_spec

WHOLE = Crop(slice(0, 2), slice(0, 3))  # the ramp's whole 2 x 3 grid


def _ramp_source(tmp_path, nt=40):
    """A (time, lat, lon) field whose value is its time position."""
    steps = np.arange(nt, dtype=np.float32)
    ds = xr.Dataset(
        {"tas": (("time", "lat", "lon"), np.broadcast_to(steps[:, None, None], (nt, 2, 3)).copy())},
        coords={
            "time": xr.date_range("2000-01-01", periods=nt, freq="h"),
            "lat": [50.0, 51.0],
            "lon": [0.0, 1.0, 2.0],
        },
    )
    ds.to_netcdf(tmp_path / "data.nc")
    spec_path = write_spec(
        tmp_path / "spec.yaml",
        window={"length": 6, "stride": 2},
        split={"fractions": [0.5, 0.5, 0.0]},
    )
    from stgan.data.spec import load_spec

    spec = load_spec(spec_path)
    source = open_source(spec)
    return source, build_layout(source.time, spec.split, spec.window)


def test_real_windows_are_the_training_windows_spread_evenly(tmp_path):
    source, layout = _ramp_source(tmp_path)
    starts = layout.windows["val"]  # steps 20..39: 8 windows of 6 at stride 2
    assert list(starts) == list(range(20, 35, 2))
    cut = Cut(count=5, frames=4, context_frames=2, crop=Crop(slice(0, 2), slice(1, 3)))
    windows = real_windows(source, layout, "val", cut)
    picked = starts[[0, 2, 4, 5, 7]]  # five of eight, first to last
    np.testing.assert_array_equal(
        windows.arrays["tas"][:, :, 1, 1], picked[:, None] + 2 + np.arange(4)
    )
    np.testing.assert_array_equal(windows.context[:, :, 0, 0, 0], picked[:, None] + np.arange(2))
    assert windows.arrays["tas"].shape == (5, 4, 2, 2)
    assert real_windows(source, layout, "val", Cut(100, 6, 0, WHOLE)).count == 8


def test_too_few_windows_is_one_line(tmp_path):
    source, layout = _ramp_source(tmp_path)
    with pytest.raises(Exception, match="split 'test' is not defined; defined: train, val"):
        real_windows(source, layout, "test", Cut(5, 6, 0, WHOLE))


def test_synthetic_values_are_masked_where_the_paired_real_window_is_missing():
    real = np.zeros((2, 3, 1, 2), np.float32)
    real[1, 0, 0, 1] = np.nan
    comparison = Comparison(RealWindows({"v": real}, None, {"v": ""}, False), None)
    masked = comparison.masked({"v": np.ones((4, 3, 1, 2), np.float32)})["v"]
    assert np.isnan(masked[[1, 3], 0, 0, 1]).all()  # samples 1 and 3 pair with window 1
    assert np.isfinite(masked[[0, 2]]).all() and np.isfinite(masked).sum() == 4 * 6 - 2


def test_nonfinite_synthetic_values_are_counted_and_missing_where_the_real_has_a_value():
    real = np.zeros((2, 3, 1, 2), np.float32)
    real[1, 0, 0, 1] = np.nan
    comparison = Comparison(RealWindows({"v": real}, None, {"v": ""}, False), None)
    synthetic = np.ones((4, 3, 1, 2), np.float32)
    synthetic[0, 0, 0, 0] = np.inf
    synthetic[2, 1, 0, 1] = np.nan
    synthetic[1, 0, 0, 1] = -np.inf  # where real window 1 is missing: not a finding
    assert comparison.nonfinite({"v": synthetic}) == {"v": 2}
    masked = comparison.masked({"v": synthetic})["v"]
    assert not np.isinf(masked).any() and np.isnan(masked).sum() == 2 + 2


def test_a_report_with_nonfinite_samples_counts_them_and_is_never_best(tmp_path):
    source, layout = _ramp_source(tmp_path)
    comparison = split_comparison(source, layout, "val", Cut(6, 6, 0, WHOLE))
    synthetic = comparison.real.arrays["tas"] + 1.0
    clean = comparison.report({"tas": synthetic})
    assert clean["nonfinite"] == {"tas": 0} and np.isfinite(clean["score"])
    synthetic[0, 0, 0, 0], synthetic[3, 2, 1, 1] = np.inf, np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        report = comparison.report({"tas": synthetic})
    assert report["nonfinite"] == {"tas": 2} and report["score"] == np.inf
    assert np.isfinite(report["variables"]["tas"]["wasserstein1"])  # the finite rest still scored
    figures = comparison.figures(report, {"tas": synthetic})
    assert "tas/distribution" in figures


def test_floor_is_measured_once_and_reported(tmp_path):
    source, layout = _ramp_source(tmp_path)
    comparison = split_comparison(source, layout, "val", Cut(6, 6, 0, WHOLE))
    synthetic = {"tas": comparison.real.arrays["tas"] + 1.0}
    first, second = comparison.report(synthetic), comparison.report(synthetic)
    assert first["floor"] is second["floor"]
    assert first["score"] == pytest.approx(selection_score(first))


def _scores(report):
    from stgan.metrics.tensorboard import report_scalars

    return report_scalars(report)


@pytest.mark.slow
def test_training_run_and_evaluate_give_the_same_numbers(tmp_path):
    """The done-when of issue [G]: one checkpoint, one split, three stages, one measurement."""
    path = tiny_pipeline(
        tmp_path,
        train={"steps": 4, "ckpt_every": 4},
        eval={"every": 4, "samples": 8, "split": "val"},
        report={"samples": 8, "split": "val", "baselines": []},
    )
    config = load_pipeline(path)
    logdir = tmp_path / "run"
    seen = []
    train(config, logdir, device="cpu", on_evaluation=lambda run, e: seen.append(e))
    in_training = seen[-1]
    report = run_pipeline(config, logdir, device="cpu", echo=lambda line: None)
    out = tmp_path / "evaluate.json"
    result = run_cli(
        "evaluate", "--real", str(path), "--synthetic", str(logdir / "synthetic.nc"),
        "--out", str(out), "--device", "cpu",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    evaluated = json.loads(out.read_text())
    reference = in_training.scalars
    for other in (_scores(report), _scores(evaluated)):
        assert set(other) == set(reference)
        for tag, value in reference.items():
            assert other[tag] == pytest.approx(value, rel=1e-4, abs=1e-6), tag
    assert report["score"] == pytest.approx(in_training.score, rel=1e-4)
    assert evaluated["score"] == pytest.approx(in_training.score, rel=1e-4)
