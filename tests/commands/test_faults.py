"""Faults a demanding user meets, each one line on stderr, exit 2, no traceback, nothing
half-written, and found before the work: non-finite or mismatched data for ``stgan
evaluate``, output paths that cannot be written (every command), a disk that fills while
a checkpoint is written, and a run whose files are broken (``stgan doctor``)."""

from __future__ import annotations

import errno
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import xarray as xr
from torch.utils.tensorboard import SummaryWriter

import stgan.output_paths as output_paths
from stgan.atomic import atomic_path
from stgan.cli import main
from stgan.data.spec import load_spec
from stgan.errors import DataError, SpecError, StganError
from stgan.metrics.inputs import check_time_steps
from tests.commands.test_evaluate import argv, synthetic_dataset
from tests.conftest import make_dataset, tiny_pipeline, write_spec

NOT_NETCDF = "this is not NetCDF\n"


def one_line_error(capsys) -> str:
    """The single ``stgan: error:`` line on stderr, with nothing on stdout."""
    out, err = capsys.readouterr()
    assert out == "" and err.startswith("stgan: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


@pytest.fixture
def files(tmp_path: Path) -> Path:
    """real.nc (100 hourly steps) and synthetic.nc (10 samples of 8 steps, no time coord)."""
    make_dataset(nt=100, variables=("tas", "pr")).to_netcdf(tmp_path / "real.nc")
    synthetic_dataset().to_netcdf(tmp_path / "synthetic.nc")
    (tmp_path / "garbage.nc").write_text(NOT_NETCDF)
    (tmp_path / "a_file").write_text("not a directory\n")
    return tmp_path


# --- stgan evaluate: non-finite and mismatched data ----------------------------------


@pytest.mark.filterwarnings("error")  # no RuntimeWarning may reach the user either
@pytest.mark.parametrize("side", ["real", "synthetic"])
def test_an_infinite_value_in_either_file_is_refused(files, capsys, side):
    ds = xr.load_dataset(files / f"{side}.nc")
    ds["pr"].values.flat[7] = np.inf
    ds.to_netcdf(files / "changed.nc")
    assert main(argv(files, **{side: "changed.nc"}, logdir=None, figures=None)) == 2
    err = one_line_error(capsys)
    assert f"'pr' has 1 infinite value(s) in the {side} data; set them to NaN" in err
    assert not (files / "report.json").exists()


def test_different_time_steps_are_refused(files, capsys):
    half_hourly = xr.date_range("2000-01-01", periods=8, freq="30min")
    xr.load_dataset(files / "synthetic.nc").assign_coords(time=half_hourly).to_netcdf(
        files / "changed.nc"
    )
    assert main(argv(files, synthetic="changed.nc", logdir=None, figures=None)) == 2
    err = one_line_error(capsys)
    assert "time steps differ: real every 1:00:00, synthetic every 0:30:00; resample" in err


def test_time_steps_compare_the_most_common_step_and_skip_what_has_none():
    hourly = xr.date_range("2000-01-01", periods=6, freq="h")
    check_time_steps(hourly, hourly[:3])  # same step
    check_time_steps(hourly.delete(2), hourly)  # a gap: the most common step is still 1 h
    check_time_steps(hourly, None)  # no time coordinate: nothing to compare
    noleap = xr.date_range("2000-01-01", periods=4, freq="D", calendar="noleap")
    with pytest.raises(DataError, match=r"real every 1 day, 0:00:00, synthetic every 1:00:00"):
        check_time_steps(noleap, hourly)


def split_synthetic(tiny: Path, freq: str = "h") -> xr.Dataset:
    """Four sequences of 4 steps on the grid of the ``tiny`` fixture, with a time coord."""
    grid = xr.open_dataset(tiny / "data.nc")
    values = 280 + np.random.default_rng(0).standard_normal((4, 4, *grid.tas.shape[1:]))
    return xr.Dataset(
        {"tas": (("sample", "time", "lat", "lon"), values.astype("f4"), grid.tas.attrs)},
        coords={
            "time": xr.date_range("2000-01-01", periods=4, freq=freq),
            "lat": grid.lat,
            "lon": grid.lon,
        },
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda ds: ds.assign(tas=ds.tas.where(ds.tas > 279, np.inf)), "infinite value(s)"),
        (lambda ds: split_synthetic_30min(ds), "time steps differ: real every 1:00:00"),
    ],
    ids=["infinite", "30 min"],
)
def test_against_a_data_spec_the_same_checks(tiny, capsys, change, message):
    write_spec(tiny / "spec.yaml", split={"fractions": [0.4, 0.2, 0.4]})  # 8 test windows
    change(split_synthetic(tiny)).to_netcdf(tiny / "syn.nc")
    args = ["evaluate", "--real", str(tiny / "spec.yaml"), "--synthetic", str(tiny / "syn.nc")]
    assert main([*args, "--out", str(tiny / "r.json"), "--device", "cpu"]) == 2
    assert message in one_line_error(capsys) and not (tiny / "r.json").exists()


def split_synthetic_30min(ds: xr.Dataset) -> xr.Dataset:
    return ds.assign_coords(time=xr.date_range("2000-01-01", periods=4, freq="30min"))


# --- output paths, checked before any data is read ----------------------------------


@pytest.fixture
def broken_pipeline(tmp_path: Path) -> Path:
    """A pipeline whose data file is not NetCDF: an output check that comes after reading
    the data would report the data instead."""
    path = tiny_pipeline(tmp_path)
    (tmp_path / "data.nc").write_text(NOT_NETCDF)
    (tmp_path / "a_file").write_text("not a directory\n")
    return path


def evaluate_garbage(directory: Path, **overrides: str) -> list[str]:
    """``stgan evaluate`` of a real file that is not NetCDF, with output options."""
    return argv(directory, real="garbage.nc", **overrides)


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["train", "{pipeline}", "--logdir", "{d}/a_file"], "--logdir {d}/a_file: is a file"),
        # a directory under a regular file: what a read-only place does to root (NotADirectory)
        (
            ["train", "{pipeline}", "--logdir", "{d}/a_file/run"],
            "--logdir {d}/a_file/run: {d}/a_file is a file, not a directory",
        ),
        (["run", "{pipeline}", "--logdir", "{d}/a_file"], "--logdir {d}/a_file: is a file"),
        (["run", "{pipeline}", "--figures", "{d}/a_file"], "--figures {d}/a_file: is a file"),
        (
            ["sweep", "{pipeline}", "--space", "optim.lr_g=1e-4:1e-3", "--logdir", "{d}/a_file"],
            "--logdir {d}/a_file: is a file",
        ),
        (
            ["generate", "{d}/absent.pt", "--num", "1", "--out", "{d}/a_file/syn.nc"],
            "--out {d}/a_file/syn.nc: {d}/a_file is a file",
        ),
        (["generate", "{d}/absent.pt", "--num", "1", "--out", "{d}"], "is a directory; give a"),
    ],
    ids=["train file", "train under a file", "run file", "run figures", "sweep", "gen", "gen dir"],
)
def test_every_command_checks_its_outputs_before_the_data(
    broken_pipeline, capsys, command, message
):
    d = broken_pipeline.parent
    fill = {"pipeline": str(broken_pipeline), "d": str(d)}
    assert main([part.format(**fill) for part in command]) == 2
    assert message.format(**fill) in one_line_error(capsys)
    assert sorted(p.name for p in d.iterdir()) == ["a_file", "data.nc", "pipeline.yaml"]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"figures": "a_file"}, "--figures {d}/a_file: is a file"),
        ({"logdir": "a_file/tb"}, "--logdir {d}/a_file/tb: {d}/a_file is a file"),
        ({"out": "a_file/r.json"}, "--out {d}/a_file/r.json: {d}/a_file is a file"),
        ({"out": "."}, "is a directory; give a file name"),
    ],
    ids=["figures", "logdir", "out", "out dir"],
)
def test_evaluate_checks_its_outputs_before_the_data(files, capsys, overrides, message):
    assert main(evaluate_garbage(files, **overrides)) == 2
    assert message.format(d=files) in one_line_error(capsys)


def test_a_directory_that_is_not_writable_is_refused(broken_pipeline, capsys, monkeypatch):
    # root writes anywhere, so the read-only directory is simulated: os.access says no
    monkeypatch.setattr(output_paths.os, "access", lambda path, mode: False)
    d = broken_pipeline.parent
    assert main(["train", str(broken_pipeline), "--logdir", str(d / "run")]) == 2
    err = one_line_error(capsys)
    assert f"--logdir {d / 'run'}: directory {d} is not writable (read-only" in err


def test_the_directory_of_out_is_made(files, capsys):
    assert main(argv(files, out="new/dir/report.json", logdir=None, figures=None)) == 0
    assert (files / "new" / "dir" / "report.json").is_file()
    assert f"wrote the report to {files / 'new/dir/report.json'}" in capsys.readouterr().out


# --- write failures during the work -------------------------------------------------


def test_a_full_disk_is_one_line_and_leaves_the_old_file(tmp_path):
    target = tmp_path / "report.json"
    target.write_text("old\n")
    full = pytest.raises(StganError, match=r"writing .*report.json failed: no space left")
    with full, atomic_path(target) as tmp:
        tmp.write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")
    assert target.read_text() == "old\n" and sorted(tmp_path.iterdir()) == [target]


def test_a_read_only_file_system_is_one_line(tmp_path):
    read_only = pytest.raises(StganError, match=r"Read-only file system .*give a writable")
    with read_only, atomic_path(tmp_path / "x.json"):
        raise OSError(errno.EROFS, "Read-only file system")
    assert list(tmp_path.iterdir()) == []


def test_a_disk_full_during_a_checkpoint_stops_training_with_one_line(
    pipeline, capsys, monkeypatch
):
    def full_disk(obj, f, *args, **kwargs):  # what torch.save's zip writer says on ENOSPC
        Path(f).write_bytes(b"PK\x03\x04 half a checkpoint")
        raise RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 64 vs 0")

    monkeypatch.setattr(torch, "save", full_disk)
    logdir = pipeline.parent / "run"
    assert main(["train", str(pipeline), "--logdir", str(logdir), "--device", "cpu"]) == 2
    out, err = capsys.readouterr()
    last = err.split("\n")[-2].split("\r")[-1]  # after the progress bar, one line
    assert err.endswith("\n") and last.startswith("stgan: error: ") and "Traceback" not in err
    err = last
    assert "ckpt_00000003.pt failed: no space left on the device" in err
    assert "free disk space or write elsewhere" in err
    assert list((logdir / "checkpoints").iterdir()) == []  # no checkpoint, no temporary


# --- what the commands print ---------------------------------------------------------


def test_the_tensorboard_hint_works_outside_the_venv(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    command = output_paths.tensorboard_command("runs/demo")
    program = command.split(" --logdir ")[0]
    assert command.endswith(" --logdir runs/demo")
    assert program in (
        str(Path(sys.executable).parent / "tensorboard"),
        f"{sys.executable} -m tensorboard.main",
    )
    monkeypatch.setattr(shutil, "which", lambda name: "/usr/bin/tensorboard")
    assert output_paths.tensorboard_command("runs/demo") == "tensorboard --logdir runs/demo"


def test_a_spec_error_lists_only_the_keys_a_user_may_give(tiny):
    write_spec(tiny / "spec.yaml", windw=3)
    with pytest.raises(SpecError, match="did you mean 'window'") as raised:
        load_spec(tiny / "spec.yaml")
    assert "valid keys: cache, coarsen" in str(raised.value)
    assert "base_dir" not in str(raised.value)


# --- stgan doctor: the run's files ---------------------------------------------------


class RunsCode:  # a checkpoint that would call os.system when unpickled
    def __reduce__(self):
        import os

        return os.system, ("true",)


def test_doctor_reports_a_bad_config_and_broken_checkpoints(tmp_path, capsys):
    writer = SummaryWriter(log_dir=str(tmp_path))
    for step in range(1, 6):
        writer.add_scalar("Loss/D", 1.0, step), writer.add_scalar("Loss/G", 1.0, step)
    writer.close()
    (tmp_path / "config.yaml").write_text("name: run\ntrain: {steps: 10}\n")  # no data:
    checkpoints = tmp_path / "checkpoints"
    checkpoints.mkdir()
    torch.save({"step": 3}, checkpoints / "ckpt_00000003.pt")  # a sound one
    (checkpoints / "ckpt_00000005.pt").write_bytes(b"\x00garbage" * 10)
    torch.save({"step": 4, "evaluation": RunsCode()}, checkpoints / "best.pt")
    assert main(["doctor", str(tmp_path)]) == 1
    problems = capsys.readouterr().out.split("\nproblems")[1].splitlines()[1:]
    assert len(problems) == 3, problems
    assert "config.yaml: data: required key is missing" in problems[0]
    assert "ckpt_00000005.pt is corrupt or truncated" in problems[1]
    assert "best.pt holds pickled Python objects" in problems[2] and "for safety" in problems[2]


def test_doctor_reports_a_config_that_is_not_yaml(tmp_path, capsys):
    SummaryWriter(log_dir=str(tmp_path)).add_scalar("Loss/D", 1.0, 1)
    (tmp_path / "config.yaml").write_bytes(b"\xff\xfe\x00binary")
    assert main(["doctor", str(tmp_path), "--json"]) == 1
    out = capsys.readouterr().out
    assert "config.yaml: not a text file" in out and '"problems"' in out
