"""`stgan run`: train → generate → evaluate → report, finished stages skipped."""

from __future__ import annotations

import json

import pytest
import xarray as xr

from stgan.output_paths import tensorboard_command
from tests.conftest import make_dataset, run_cli, tiny_pipeline


@pytest.fixture
def pipeline_with_test_split(tmp_path):
    path = tiny_pipeline(
        tmp_path,
        train={"steps": 2, "log_every": 1, "ckpt_every": 2},
        report={"samples": 8, "split": "test", "baselines": ["untrained", "ar1"]},
    )
    raw = path.read_text().replace("- 0.7\n    - 0.3\n    - 0.0", "- 0.5\n    - 0.2\n    - 0.3")
    path.write_text(raw)
    make_dataset(nt=120, ny=8, nx=8, variables=("tas", "pr"), nan_cells=((0, 0),)).to_netcdf(
        tmp_path / "data.nc"
    )
    return path


@pytest.mark.slow
def test_run_goes_to_a_report_and_skips_finished_stages(pipeline_with_test_split, tmp_path):
    logdir = tmp_path / "run"
    figures = tmp_path / "pngs"
    args = ("--logdir", str(logdir), "--device", "cpu", "--figures", str(figures))
    first = run_cli("run", str(pipeline_with_test_split), *args)
    assert first.returncode == 0, first.stderr
    report = json.loads((logdir / "report.json").read_text())
    assert set(report["variables"]) == {"tas", "pr"}
    assert set(report["floor"]) == {"tas", "pr"}
    assert set(report["baselines"]) == {"untrained", "ar1"}
    for entry in report["baselines"].values():
        assert {"acf", "psd", "wasserstein1", "c2st", "coverage"} <= set(entry["variables"]["tas"])
    # the 30 % test split (36 steps) has more windows at the spec's stride than 8 samples
    assert report["n_synthetic"] == 8 and report["n_real"] == 8
    synthetic = xr.open_dataset(logdir / "synthetic.nc")
    assert synthetic["tas"].dims == ("sample", "time", "lat", "lon")
    assert synthetic["tas"].attrs["units"] == "K"
    assert sorted(p.name for p in figures.glob("tas_*.png")) == [
        f"tas_{k}.png" for k in ("acf", "distribution", "frames", "hovmoller", "psd")
    ]
    viewer = f"TensorBoard: {tensorboard_command(logdir)}"  # the venv's path off PATH
    for line in ("report:", viewer, "floor (real vs real)", "ar1"):
        assert line in first.stdout

    again = run_cli(
        "run", str(pipeline_with_test_split), "--logdir", str(logdir), "--device", "cpu"
    )
    assert again.returncode == 0, again.stderr
    assert again.stdout.count("skipped") == 3
    assert json.loads((logdir / "report.json").read_text()) == report


def test_run_reports_a_bad_config_in_one_line(pipeline_with_test_split, tmp_path):
    result = run_cli("run", str(pipeline_with_test_split), "--set", "report.samples=1")
    assert result.returncode == 2
    assert result.stderr.startswith("stgan: error:") and len(result.stderr.splitlines()) == 1
