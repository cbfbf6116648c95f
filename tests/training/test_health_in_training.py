"""Failure modes provoked on purpose in real training: each detector fires and its action happens."""

from __future__ import annotations

import math

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from stgan.errors import TrainingStopped
from stgan.training import loop
from stgan.training.checkpoint import load_checkpoint
from stgan.training.config import load_pipeline
from stgan.training.health import DETECTORS
from stgan.training.health_log import read_health_log
from stgan.training.loop import train
from tests.conftest import run_cli, tiny_pipeline

QUICK = {"steps": 12, "log_every": 1, "hist_every": 100, "ckpt_every": 4}
CONSTANT_LR = {"warmup_steps": 0, "schedule": "constant"}


def _scalars(logdir, tag):
    events = EventAccumulator(str(logdir), size_guidance={"scalars": 0})
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


def _alarms(logdir, err: str) -> set[str]:
    """The detectors whose ``Health/<detector>`` flag was ever 1 in the run's events, and
    "warning" if training printed one: what a healthy run must leave empty."""
    fired = {d for d in DETECTORS if any(v != 0.0 for _, v in _scalars(logdir, f"Health/{d}"))}
    return fired | ({"warning"} if "stgan: warning" in err else set())


def test_divergence_rolls_back_with_lower_rates_and_training_goes_on(tmp_path, capsys):
    config = load_pipeline(
        tiny_pipeline(
            tmp_path,
            optim={"lr_g": 1e20, "lr_d": 1e20, **CONSTANT_LR},
            train=QUICK,
            health={"lr_factor": 1e-22},  # one rollback takes the rates to 0.01
        )
    )
    logdir = tmp_path / "run"
    last = train(config, logdir, device="cpu")
    err = capsys.readouterr().err
    assert "divergence (NaN/Inf" in err and "rolled back to step 0" in err
    assert math.isfinite(last["Loss/G"]) and math.isfinite(last["Loss/D"])
    final = load_checkpoint(logdir / "checkpoints" / "ckpt_00000012.pt")
    assert final["health"]["rollbacks"] == 1
    assert all(torch.isfinite(t).all() for t in final["G"].values())
    assert _scalars(logdir, "LR/G")[-1][1] == pytest.approx(0.01)
    assert 1.0 in [v for _, v in _scalars(logdir, "Health/divergence")]
    logged = read_health_log(logdir)  # health.jsonl: the event as the loop acted on it
    assert [(e["detector"], e["action"]) for e in logged][:1] == [("divergence", "rollback")]
    assert logged[0]["message"] in err


def test_divergence_that_persists_stops_with_a_summary(tmp_path):
    config = load_pipeline(
        tiny_pipeline(
            tmp_path,
            optim={"lr_g": 1e20, "lr_d": 1e20, **CONSTANT_LR},
            train=QUICK,
            health={"max_rollbacks": 1},
        )
    )
    with pytest.raises(TrainingStopped, match="diverged again after 1 rollbacks"):
        train(config, tmp_path / "run", device="cpu")


def _blow_up(tmp_path, **sections):
    """The tiny pipeline at learning rates of 1000: its losses explode, finitely, at once."""
    optim = {"lr_g": 1000.0, "lr_d": 1000.0, **CONSTANT_LR}
    return load_pipeline(tiny_pipeline(tmp_path, optim=optim, train=QUICK, **sections))


@pytest.mark.slow
def test_a_finite_blow_up_is_flagged_rolled_back_and_refused_by_generate(tmp_path, capsys):
    """The done-when of issue [K] item 2."""
    rolled = tmp_path / "rolled"
    rolled.mkdir()
    config = _blow_up(rolled, health={"lr_factor": 1e-5})  # one rollback: rates to 0.01
    train(config, rolled / "run", device="cpu")
    err = capsys.readouterr().err
    logged = read_health_log(rolled / "run")
    assert (logged[0]["detector"], logged[0]["action"]) == ("divergence", "rollback")
    assert "finite blow-up" in logged[0]["message"] and "NaN/Inf" not in logged[0]["message"]
    assert "rolled back to step 0" in err
    final = load_checkpoint(rolled / "run" / "checkpoints" / "ckpt_00000012.pt")
    assert final["health"]["rollbacks"] >= 1

    # the same run with divergence only warned about goes on blown up to its last checkpoint;
    # its evaluations of samples far outside the data's range finish, non-finite ones counted
    warned = tmp_path / "warned"
    warned.mkdir()
    config = _blow_up(
        warned, health={"divergence": "warn"}, eval={"every": 6, "samples": 8, "split": "val"}
    )
    evaluations = []
    train(config, warned / "run", device="cpu", on_evaluation=lambda r, e: evaluations.append(e))
    assert [e["detector"] for e in read_health_log(warned / "run")][:1] == ["divergence"]
    assert [e.step for e in evaluations] == [6, 12]
    assert all(set(e.report["nonfinite"]) == {"tas", "pr"} for e in evaluations)
    doctor = run_cli("doctor", str(warned / "run"))
    assert doctor.returncode == 0 and "finite blow-up" in doctor.stdout
    out = tmp_path / "samples.nc"
    result = run_cli(
        "generate", str(warned / "run"), "--num", "2", "--no-progress", "--out", str(out)
    )
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("stgan: error: ") and result.stderr.count("\n") == 1
    assert "training diverged" in result.stderr and not out.exists()


def test_a_constant_generator_is_flagged_as_collapse(tmp_path, monkeypatch, capsys):
    real_generate = loop.generate
    monkeypatch.setattr(loop, "generate", lambda *a: real_generate(*a) * 0.0)
    config = load_pipeline(
        tiny_pipeline(tmp_path, train=QUICK, health={"warmup": 2, "observations": 3})
    )
    train(config, tmp_path / "run", device="cpu")
    err = capsys.readouterr().err
    assert "collapse" in err
    assert {"collapse", "warning"} <= _alarms(tmp_path / "run", err)  # what a healthy run lacks
    flags = _scalars(tmp_path / "run", "Health/collapse")
    assert flags[-1][1] == 1.0
    diversity = _scalars(tmp_path / "run", "Health/fake_diversity")
    assert all(v == 0.0 for _, v in diversity)


def test_overpowering_d_is_flagged_and_can_stop_training(tmp_path, capsys):
    config = load_pipeline(
        tiny_pipeline(
            tmp_path,
            optim={"lr_g": 1e-6, "lr_d": 1e-2, **CONSTANT_LR},
            train={**QUICK, "steps": 30},
            health={"warmup": 2, "observations": 5, "overpowering": "stop"},
        )
    )
    with pytest.raises(TrainingStopped, match="D overpowering G"):
        train(config, tmp_path / "run", device="cpu")
    acc = _scalars(tmp_path / "run", "D/real_acc")
    assert acc[-1][1] > 0.98


# The demo pipeline at a quarter of its pixels (16 x 16) and half its batch, 200 steps
# instead of 500 at log_every=5 instead of 10: the same networks, losses, optimiser and
# default health thresholds (accuracy, diversity ratio, gradient factor, blow-up factor),
# the default warmup of 20 observations (100 steps: past the first ~50, where D learns to
# tell an untrained G and G's gradient norm grows 500-fold, as the demo's 200 are) and
# the overpowering and collapse windows at 20 observations, so they fill 20 before the
# end (the demo's 50 fill only at its last; one_way's 100 fill in neither). No
# in-training evaluation (the evaluation detectors have their own tests). About 50 CPU
# seconds instead of the demo's 7 minutes; at log_every=1 and 60 steps the gradient
# median still held the start-up and exploding_gradients fired.
SMALL_DEMO = (
    "data.coarsen=4",
    "train.batch_size=4",
    "train.steps=200",
    "train.log_every=5",
    "train.ckpt_every=200",
    "train.hist_every=200",
    "health.observations=20",
    "eval.every=0",
)


@pytest.mark.slow
def test_a_healthy_demo_run_raises_no_alarm(tmp_path, capsys):
    """A small copy of the demo as users run it, default health thresholds: no detector
    fires and nothing is warned about, with the thresholds in play (past the warmup,
    windows full; the collapse test shows the same check catching an alarm)."""
    config = load_pipeline("pipelines/demo.yaml", SMALL_DEMO)
    health, observations = config.health, config.train.steps // config.train.log_every
    train(config, tmp_path / "run", device="cpu")
    assert _alarms(tmp_path / "run", capsys.readouterr().err) == set()
    for detector in DETECTORS[:-1]:  # all but stagnation, which needs evaluations
        flags = _scalars(tmp_path / "run", f"Health/{detector}")
        assert len(flags) == observations, detector  # one per observation
    assert observations - health.observations >= health.warmup  # windows full past warmup
