import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from stgan.cli import main
from stgan.training.config import load_pipeline
from stgan.training.loop import train
from tests.conftest import run_cli, tiny_pipeline
from tests.test_generate import make_checkpoint

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    return make_checkpoint(tmp_path_factory.mktemp("cli"))


def generate_cli(capsys, *args):
    code = main(["generate", *map(str, args), "--no-progress"])
    out, err = capsys.readouterr()
    return code, out, err


def test_writes_the_file_and_a_summary(checkpoint, tmp_path, capsys):
    out_file = tmp_path / "syn.nc"
    code, out, err = generate_cli(
        capsys, checkpoint, "--num", 3, "--length", 5, "--seed", 2, "--out", out_file
    )
    assert code == 0, err
    ds = xr.open_dataset(out_file)
    assert dict(ds.sizes) == {"sample": 3, "time": 5, "lat": 8, "lon": 8}
    assert ds.attrs["history"].endswith(
        f"stgan generate {checkpoint} --num 3 --length 5 --seed 2 --device auto "
        f"--batch-size 16 --out {out_file}"
    )
    lines = out.splitlines()
    assert lines[0] == f"wrote {out_file}"
    assert lines[1].startswith("3 samples x 5 steps of tas, pr on 8x8 lat/lon, 2000-01-01")
    assert len(lines) == 2


@pytest.mark.slow
def test_generates_from_a_trained_run_directory(tmp_path, capsys):
    run = tmp_path / "run"
    train(load_pipeline(tiny_pipeline(tmp_path)), run, device="cpu", max_steps=1)
    capsys.readouterr()
    code, _, err = generate_cli(
        capsys, run, "--num", 2, "--device", "cpu", "--out", tmp_path / "s.nc"
    )
    assert code == 0, err
    ds = xr.open_dataset(tmp_path / "s.nc")
    assert ds.attrs["stgan_checkpoint"].endswith("ckpt_00000001.pt")
    assert ds.tas.isnull().all(("sample", "time")).values[0, 0]  # the static NaN cell
    assert np.isfinite(ds.tas.values[:, :, 1:]).all()


def test_num_must_be_positive_exit_2(checkpoint, tmp_path):
    result = run_cli("generate", str(checkpoint), "--num", "0", "--out", str(tmp_path / "s.nc"))
    assert result.returncode == 2
    assert result.stderr == "stgan: error: --num 0: must be >= 1\n"
    assert not (tmp_path / "s.nc").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--num", "1", "--out", "{ckpt}/s.nc"], "--out {ckpt}/s.nc: {ckpt} is a file"),
        (["--num", "1", "--out", "{tmp}"], "is a directory"),
        (["--num", "1", "--length", "0", "--out", "{tmp}/s.nc"], "--length 0: must be >= 1"),
        (["--num", "1", "--device", "tpu", "--out", "{tmp}/s.nc"], "--device tpu: unknown device"),
        (["--num", "1", "--context", "{tmp}/c.nc", "--out", "{tmp}/s.nc"], "takes no context"),
    ],
)
def test_bad_arguments_are_one_line(checkpoint, tmp_path, capsys, args, message):
    args = [a.format(tmp=tmp_path, ckpt=checkpoint) for a in args]
    code, out, err = generate_cli(capsys, checkpoint, *args)
    assert code == 2
    assert err.startswith("stgan: error: ") and err.count("\n") == 1
    assert message.format(tmp=tmp_path, ckpt=checkpoint) in err
    assert not (tmp_path / "s.nc").exists()


def test_incompatible_checkpoint_is_one_line(tmp_path, capsys):
    path = make_checkpoint(tmp_path, state_changes={"version": "7.1.0"})
    code, _, err = generate_cli(capsys, path, "--num", "1", "--out", tmp_path / "s.nc")
    assert code == 2 and err.count("\n") == 1
    assert "written by stgan 7.1.0, which is incompatible" in err


def test_context_on_another_grid_names_both_grids(tmp_path, capsys):
    path = make_checkpoint(tmp_path, generator={"conditional": True, "context_frames": 2})
    data = xr.open_dataset(tmp_path / "data.nc")
    data.isel(lat=slice(2, None)).to_netcdf(tmp_path / "context.nc")
    code, _, err = generate_cli(
        capsys, path, "--num", 1, "--context", tmp_path / "context.nc", "--out", tmp_path / "s.nc"
    )
    assert code == 2 and err.count("\n") == 1
    assert "its grid (lat 6 points" in err and "training grid (lat 8 points" in err
    code, out, err = generate_cli(
        capsys, path, "--num", 1, "--context", tmp_path / "data.nc", "--out", tmp_path / "s.nc"
    )
    assert code == 0, err
    times = xr.open_dataset(tmp_path / "s.nc").time.values
    np.testing.assert_array_equal(
        times, data.time.values[-1] + np.array([1, 2]) * np.timedelta64(1, "h")
    )


def run_until_writing(checkpoint, out_file, marker):
    """Start `stgan generate` in a child that stops once the whole temporary file is written."""
    script = textwrap.dedent(
        f"""
        import pathlib, sys, time
        import xarray as xr
        real = xr.Dataset.to_netcdf
        def write_then_hang(self, path, *args, **kwargs):
            real(self, path, *args, **kwargs)
            pathlib.Path({str(marker)!r}).write_text(str(path))
            time.sleep(120)
        xr.Dataset.to_netcdf = write_then_hang
        from stgan.cli import main
        sys.exit(main(["generate", {str(checkpoint)!r}, "--num", "4", "--no-progress",
                       "--out", {str(out_file)!r}]))
        """
    )
    child = subprocess.Popen([sys.executable, "-c", script], cwd=REPO, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    while not marker.exists():
        assert child.poll() is None, child.stderr.read().decode()
        assert time.monotonic() < deadline, "the child never started writing"
        time.sleep(0.1)
    temporary = Path(marker.read_text())
    assert temporary.parent == out_file.parent and temporary.stat().st_size > 0
    return child, temporary


@pytest.mark.slow
def test_terminated_while_writing_leaves_nothing(checkpoint, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    child, temporary = run_until_writing(checkpoint, out_dir / "syn.nc", tmp_path / "marker")
    child.send_signal(signal.SIGTERM)
    assert child.wait(timeout=60) == 130
    assert list(out_dir.iterdir()) == []  # neither syn.nc nor the temporary file


@pytest.mark.slow
def test_killed_while_writing_leaves_no_file_at_out(checkpoint, tmp_path):
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    child, temporary = run_until_writing(checkpoint, out_dir / "syn.nc", tmp_path / "marker")
    child.kill()  # SIGKILL: no clean-up can run
    child.wait(timeout=60)
    assert not (out_dir / "syn.nc").exists()
    # Only the hidden temporary name can remain, never a partial file at --out.
    assert all(p.name.startswith(".syn.nc.") for p in out_dir.iterdir())


def test_writer_failing_midway_leaves_nothing(checkpoint, tmp_path, capsys, monkeypatch):
    real = xr.Dataset.to_netcdf

    def write_then_fail(self, path, *args, **kwargs):
        real(self, path, *args, **kwargs)
        raise KeyboardInterrupt

    monkeypatch.setattr(xr.Dataset, "to_netcdf", write_then_fail)
    code, _, err = generate_cli(capsys, checkpoint, "--num", 2, "--out", tmp_path / "s.nc")
    assert code == 130 and "interrupted" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == []
