"""One writer per run directory: a second process is refused, a killed holder's lock is taken."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stgan.errors import StganError
from stgan.run_lock import LOCK_NAME, RunDirectoryBusy, hold_run_directory
from tests.conftest import run_cli, tiny_pipeline

pytest.importorskip("fcntl")

HOLD = "from stgan.run_lock import hold_run_directory as h; import sys, time\n"
HOLD += "with h(sys.argv[1]):\n    print('held', flush=True); time.sleep(600)"


def _holder_named(lock: Path, timeout: float = 120.0) -> None:
    """Wait until a process has written itself into ``lock``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if lock.is_file() and len(lock.read_text().split()) >= 2:
            return
        time.sleep(0.2)
    raise AssertionError(f"no process took {lock} in {timeout} s")


@pytest.fixture
def held(tmp_path):
    """A run directory whose lock a child process holds; yields (directory, child)."""
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(run)], stdout=subprocess.PIPE, text=True, env=env
    )
    try:
        assert child.stdout.readline().strip() == "held"
        yield run, child
    finally:
        child.kill()
        child.wait()


def test_a_second_process_is_refused_with_the_holders_pid_and_host(held):
    run, child = held
    with pytest.raises(RunDirectoryBusy) as refused, hold_run_directory(run):
        pass
    message = str(refused.value)
    assert f"stgan process {child.pid} on host {socket.gethostname()}" in message
    assert "\n" not in message


def test_a_killed_holders_lock_is_taken_over(held):
    run, child = held
    child.send_signal(signal.SIGKILL)
    child.wait()
    with hold_run_directory(run):
        assert (run / LOCK_NAME).read_text().split()[0] == str(os.getpid())


def test_a_lock_file_left_behind_is_taken_over(tmp_path):
    (tmp_path / LOCK_NAME).write_text("999999 gone-host 2000-01-01T00:00:00\n")
    with hold_run_directory(tmp_path):
        pid, host, _ = (tmp_path / LOCK_NAME).read_text().split()
    assert (pid, host) == (str(os.getpid()), socket.gethostname())


def test_the_lock_is_reentrant_within_a_process_and_released_at_the_end(tmp_path):
    run = tmp_path / "new" / "run"
    with hold_run_directory(run):  # creates the directory
        with hold_run_directory(run):  # e.g. `stgan run` → its train stage
            pass
        assert (run / LOCK_NAME).read_text().split()[0] == str(os.getpid())
    # released: another process takes it
    taken = subprocess.run(
        [sys.executable, "-c", HOLD.replace("time.sleep(600)", "pass"), str(run)],
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert taken.stdout.strip() == "held", taken.stderr


def test_a_run_directory_that_is_a_file_is_one_line(tmp_path):
    (tmp_path / "run").write_text("not a directory")
    busy = pytest.raises(StganError, match="cannot create the run directory")
    with busy as failed, hold_run_directory(tmp_path / "run"):
        pass
    assert "\n" not in str(failed.value)


@pytest.mark.parametrize("command", ["train", "run"])
def test_train_and_run_are_refused_while_a_process_holds_the_directory(held, command):
    run, child = held
    pipeline = tiny_pipeline(run.parent)
    refused = run_cli(command, str(pipeline), "--logdir", str(run), "--device", "cpu")
    assert refused.returncode == 2, refused.stderr
    line = refused.stderr.strip()
    assert line.startswith("stgan: error: ") and "\n" not in line
    assert f"in use by stgan process {child.pid} on host" in line
    assert sorted(p.name for p in run.iterdir()) == [LOCK_NAME]  # nothing written


def test_generate_into_a_held_run_directory_is_refused(held, tmp_path):
    run, child = held
    out = run / "synthetic.nc"
    refused = run_cli("generate", str(tmp_path / "ckpt.pt"), "--num", "1", "--out", str(out))
    assert refused.returncode == 2
    assert f"in use by stgan process {child.pid}" in refused.stderr
    assert not out.exists()


@pytest.mark.slow
def test_two_trainings_on_one_logdir_the_second_is_refused(tmp_path):
    pipeline = tiny_pipeline(tmp_path, train={"steps": 100000, "ckpt_every": 100000})
    logdir = tmp_path / "run"
    args = ("train", str(pipeline), "--logdir", str(logdir), "--device", "cpu")
    first = subprocess.Popen([sys.executable, "-m", "stgan", *args], stderr=subprocess.DEVNULL)
    try:
        _holder_named(logdir / LOCK_NAME)
        second = run_cli(*args)
        assert first.poll() is None, "the first training ended early"
    finally:
        first.kill()
        first.wait()
    assert second.returncode == 2, second.stderr
    assert f"in use by stgan process {first.pid} on host" in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1
