"""Generation for a calendar time: a run trained with calendar features, then
``stgan generate --start TIME`` (and ``stgan.generate(start=...)``) on its checkpoint."""

from __future__ import annotations

import cftime
import numpy as np
import pandas as pd
import pytest
import torch
import xarray as xr

from stgan.cli import main
from stgan.data.calendar import features
from stgan.data.cf import write_netcdf
from stgan.sampling import draw_latents, generate, load_trained, sample_seed
from stgan.training.config import load_pipeline
from stgan.training.loop import train
from tests.conftest import make_dataset, run_cli, tiny_pipeline


def trained_run(directory, calendar: str):
    """A tiny run on the calendar trained 2 steps on 10 days of 6-hourly data on ``calendar``."""
    path = tiny_pipeline(directory)
    data = make_dataset(nt=40, ny=8, nx=8, variables=("tas", "pr"), freq="6h", calendar=calendar)
    data.to_netcdf(directory / "data.nc")
    config = load_pipeline(path, ("model.generator.calendar=true",))
    train(config, directory / "run", device="cpu", max_steps=2)
    return directory / "run"


@pytest.fixture(scope="module")
def standard_run(tmp_path_factory):
    return trained_run(tmp_path_factory.mktemp("standard"), "standard")


@pytest.fixture(scope="module")
def run_360_day(tmp_path_factory):
    return trained_run(tmp_path_factory.mktemp("d360"), "360_day")


def generate_cli(capsys, *args):
    code = main(["generate", *map(str, args), "--no-progress", "--device", "cpu"])
    out, err = capsys.readouterr()
    return code, out, err


def expected(run, times, num: int, seed: int = 0) -> np.ndarray:
    """What the EMA generator makes for ``times``' calendar features, from the public
    pieces: (N, T, C, H, W) in physical units, static mask left as made."""
    trained = load_trained(run, torch.device("cpu"))
    g = trained.generator
    z, noise = draw_latents(g, len(times), [sample_seed(seed, i) for i in range(num)])
    days = torch.from_numpy(features(times, trained.cycles)).expand(num, -1, -1)
    with torch.no_grad():
        x = g(z, noise, None, days)
    return trained.transforms.inverse(x, channel_axis=2).numpy()


def test_training_records_the_data_cycles_and_conditions_g_on_them(standard_run):
    trained = load_trained(standard_run, torch.device("cpu"))
    # 6-hourly, a 7-day train split on the standard calendar: daily and weekly cycles
    assert trained.grid["time"]["cycles"] == ["day", "week"]
    assert trained.cycles == ("day", "week")
    assert trained.generator.calendar_features == 4


def test_generate_start_writes_the_times_and_samples_for_them(standard_run, tmp_path, capsys):
    out = tmp_path / "syn.nc"
    code, _, err = generate_cli(
        capsys, standard_run, "--num", 2, "--start", "2001-07-04T18:00", "--out", out
    )
    assert code == 0, err
    ds = xr.open_dataset(out)
    times = ds.indexes["time"]
    assert times[0] == pd.Timestamp("2001-07-04 18:00") and (times[1] - times[0]) == pd.Timedelta(
        "6h"
    )
    assert "from 2001-07-04T18:00:00 (the start asked for)" in ds.attrs["comment"]
    assert ds.attrs["stgan_calendar_cycles"] == "day week" and "labels" not in err
    assert "--start 2001-07-04T18:00" in ds.attrs["history"]
    made = np.stack([ds.tas.values, ds.pr.values], axis=2)  # (N, T, C, H, W)
    want = expected(standard_run, times, 2)
    valid = np.isfinite(made)
    np.testing.assert_allclose(made[valid], want[valid], rtol=1e-5, atol=1e-4)
    # another time of day, another sample from the same latents
    other = expected(standard_run, times + pd.Timedelta("12h"), 2)
    assert not np.allclose(made[valid], other[valid], atol=1e-4)


def test_start_on_a_generator_without_calendar_only_labels_the_times(tmp_path, capsys):
    """The default model (model.generator.calendar: false): --start sets the time
    coordinate, the samples are the same as for any other start, and a note says so."""
    path = tiny_pipeline(tmp_path)
    data = make_dataset(nt=40, ny=8, nx=8, variables=("tas", "pr"), freq="6h")
    data.to_netcdf(tmp_path / "data.nc")
    train(load_pipeline(path), tmp_path / "run", device="cpu", max_steps=2)
    runs = []
    for start in ("2001-07-04T18:00", "2001-07-05T06:00"):
        out = tmp_path / f"{start[-5:-3]}.nc"
        code, _, err = generate_cli(
            capsys, tmp_path / "run", "--num", 2, "--start", start, "--out", out
        )
        assert code == 0, err
        assert "--start only labels the time coordinate" in err
        runs.append(xr.open_dataset(out))
    assert runs[0].attrs["stgan_calendar_cycles"] == "none"
    assert "not for those dates" in runs[0].attrs["comment"]
    assert runs[0].indexes["time"][0] == pd.Timestamp("2001-07-04 18:00")
    np.testing.assert_array_equal(runs[0].tas.values, runs[1].tas.values)


def test_without_start_the_samples_are_for_the_training_data_first_time(standard_run):
    ds = generate(standard_run, 2, device="cpu", progress=False)
    times = ds.indexes["time"]
    assert times[0] == pd.Timestamp("2000-01-01")
    assert "by default the first time of the training data" in ds.attrs["comment"]
    made = np.stack([ds.tas.values, ds.pr.values], axis=2)
    valid = np.isfinite(made)
    np.testing.assert_allclose(made[valid], expected(standard_run, times, 2)[valid], atol=1e-4)


def test_one_start_per_sample_gives_each_its_own_times(standard_run, tmp_path):
    starts = ["2001-01-01T00:00", "2001-01-03T12:00"]
    both = generate(standard_run, 2, device="cpu", progress=False, start=starts)
    alone = generate(standard_run, 2, device="cpu", progress=False, start=starts[1])
    written = xr.open_dataset(write_netcdf(both, tmp_path / "s.nc"))
    assert list(pd.DatetimeIndex(written.start_time.values)) == [pd.Timestamp(s) for s in starts]
    np.testing.assert_array_equal(both.tas.values[1], alone.tas.values[1])  # sample 1: seed (0, 1)
    assert "start_time[i]" in both.attrs["comment"]


def test_start_on_a_360_day_calendar(run_360_day, tmp_path, capsys):
    out = tmp_path / "syn.nc"
    # 30 February exists on the 360_day calendar
    code, _, err = generate_cli(
        capsys, run_360_day, "--num", 2, "--start", "2003-02-30T06:00", "--out", out
    )
    assert code == 0, err
    ds = xr.open_dataset(out, decode_times=xr.coders.CFDatetimeCoder(use_cftime=True))
    times = ds.indexes["time"]
    assert times[0] == cftime.Datetime360Day(2003, 2, 30, 6)
    assert times[1] == cftime.Datetime360Day(2003, 2, 30, 12)
    assert load_trained(run_360_day, torch.device("cpu")).cycles == ("day",)  # no weekdays
    made = np.stack([ds.tas.values, ds.pr.values], axis=2)
    valid = np.isfinite(made)
    np.testing.assert_allclose(made[valid], expected(run_360_day, times, 2)[valid], atol=1e-4)


def test_bad_start_is_one_line_exit_2_without_traceback(standard_run, tmp_path):
    out = tmp_path / "s.nc"
    result = run_cli("generate", str(standard_run), "--num", "1", "--start", "x", "--out", str(out))
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("stgan: error: --start 'x': not a time on the data's ")
    assert result.stderr.count("\n") == 1 and not out.exists()


@pytest.mark.parametrize("start", ["garbage", "2001-02-30"])
def test_start_not_on_the_standard_calendar_exit_2(standard_run, tmp_path, capsys, start):
    code, _, err = generate_cli(
        capsys, standard_run, "--num", 1, "--start", start, "--out", tmp_path / "s.nc"
    )
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"stgan: error: --start '{start}': not a time on the data's ")
    assert not (tmp_path / "s.nc").exists()


def test_start_not_on_the_360_day_calendar_exit_2(run_360_day, tmp_path, capsys):
    code, _, err = generate_cli(
        capsys, run_360_day, "--num", 1, "--start", "2001-02-31", "--out", tmp_path / "s.nc"
    )
    assert code == 2 and err.count("\n") == 1
    assert err.startswith("stgan: error: --start '2001-02-31': not a time on the data's 360_day")


def test_start_with_a_conditional_generator_is_refused(tmp_path, capsys):
    from tests.test_generate import make_checkpoint

    checkpoint = make_checkpoint(
        tmp_path / "c", generator={"conditional": True, "context_frames": 2}
    )
    code, _, err = generate_cli(
        capsys, checkpoint, "--num", 1, "--start", "2001-01-01", "--out", tmp_path / "s.nc"
    )
    assert code == 2
    assert err.startswith("stgan: error: --start: ") and "drop --start" in err
    assert err.count("\n") == 1
