import json
import os
import signal
import subprocess
import sys
import time

import optuna
import pytest
from optuna.trial import TrialState

from stgan.cli import main
from tests.conftest import tiny_pipeline
from tests.test_sweep import sweep_pipeline


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--space", "optim.lr_gg=1e-4,2e-4"], "optim.lr_gg: unknown key; did you mean 'lr_g'?"),
        (["--space", "optim.lr_g=1e-4:2e-4:3e-4:4"], "malformed range"),
        (["--space", "optim.lr_g=1e-3:1e-4"], "lo 0.001 must be below hi 0.0001"),
        (["--space", "optim.n_critic=0,1"], "n_critic"),  # a value the validator refuses
        (["--space", "optim.lr_g=1e-4,2e-4", "--trials", "0"], "--trials: 0 must be >= 1"),
        (["--space", "optim.lr_g=1e-4,2e-4", "--steps", "0"], "--steps: 0 must be >= 1"),
        (
            ["--space", "optim.lr_g=1e-4,2e-4", "--sampler", "grid", "--trials", "3"],
            "more than the 2 grid points",
        ),
        (
            ["--space", "optim.lr_g=1e-5:1e-3", "--sampler", "grid"],
            "--sampler grid: optim.lr_g=1e-05:0.001:log is a range",
        ),
        (
            ["--space", "optim.lr_g=1e-4,2e-4", "--storage", "sqlite:////no/such/dir/s.db"],
            "--storage sqlite:////no/such/dir/s.db: cannot open",
        ),
        (
            ["--space", "optim.lr_g=1e-4,2e-4", "--storage", "nosuchdb://user:secret@host/db"],
            "cannot open",
        ),
    ],
)
def test_bad_input_is_one_line(tmp_path, capsys, extra, message):
    pipeline = tiny_pipeline(tmp_path)
    code = main(["sweep", str(pipeline), "--logdir", str(tmp_path / "s"), *extra])
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("stgan: error: ") and err.count("\n") == 1
    assert message in err and "secret" not in err
    assert not list(tmp_path.glob("s/trial_*"))


def sweep_args(pipeline, logdir):
    return [
        "sweep",
        str(pipeline),
        "--logdir",
        str(logdir),
        "--space",
        "optim.lr_g=1e-4,2e-4,3e-4",
        "--sampler",
        "grid",
        "--steps",
        "2",
        "--device",
        "cpu",
        "--heartbeat",
        "1",
    ]


def wait_for(condition, process, timeout=300.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, process.communicate()[1][-2000:]
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.mark.slow
def test_killed_sweep_resumes(tmp_path, capsys):
    pipeline = sweep_pipeline(tmp_path)
    logdir = tmp_path / "s"
    args = sweep_args(pipeline, logdir)
    process = subprocess.Popen(
        [sys.executable, "-m", "stgan", *args],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:  # kill it once trial 1 has a checkpoint: trial 0 has finished by then
        wait_for(lambda: any(logdir.glob("trial_0001/checkpoints/ckpt_*.pt")), process)
    finally:
        os.kill(process.pid, signal.SIGKILL)
        process.communicate()
    storage = f"sqlite:///{logdir}/study.db"
    killed = optuna.load_study(study_name="tiny", storage=storage).trials
    assert [t.state for t in killed[:2]] == [TrialState.COMPLETE, TrialState.RUNNING]

    assert main(args) == 0
    out = capsys.readouterr().out
    trials = optuna.load_study(study_name="tiny", storage=storage).trials
    states = [t.state for t in trials]
    assert sum(s in (TrialState.COMPLETE, TrialState.PRUNED) for s in states) == 3
    assert TrialState.RUNNING not in states and TrialState.WAITING not in states
    assert trials[1].state == TrialState.FAIL  # the killed one, replaced by its retry
    (retry,) = [t for t in trials if t.system_attrs.get("failed_trial") == 1]
    assert retry.params == trials[1].params and retry.number > 1
    assert retry.user_attrs["logdir"] == str(logdir / "trial_0001")
    assert f"trial {retry.number}: optim.lr_g=" in out and f"resumed in {logdir}" in out
    assert sorted(t.params["optim.lr_g"] for t in trials if t.number != 1) == [1e-4, 2e-4, 3e-4]

    saved = json.loads((logdir / "sweep.json").read_text())
    assert len(saved["trials"]) == 3  # the dead trial is not listed beside its retry
    best = saved["best"]
    assert best["value"] == min(t["value"] for t in saved["trials"] if t["state"] == "COMPLETE")
    assert f"best: trial {best['number']}" in out and best["set"] in out
    assert f"tensorboard --logdir {logdir}" in out
