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
from tests.conftest import tiny_pipeline

QUICK = {"steps": 12, "log_every": 1, "hist_every": 100, "ckpt_every": 4}
CONSTANT_LR = {"warmup_steps": 0, "schedule": "constant"}


def _scalars(logdir, tag):
    events = EventAccumulator(str(logdir), size_guidance={"scalars": 0})
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


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


def test_a_constant_generator_is_flagged_as_collapse(tmp_path, monkeypatch, capsys):
    real_generate = loop.generate
    monkeypatch.setattr(loop, "generate", lambda *a: real_generate(*a) * 0.0)
    config = load_pipeline(
        tiny_pipeline(tmp_path, train=QUICK, health={"warmup": 2, "observations": 3})
    )
    train(config, tmp_path / "run", device="cpu")
    assert "collapse" in capsys.readouterr().err
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


@pytest.mark.slow
def test_a_healthy_demo_run_raises_no_alarm(tmp_path, capsys):
    """The demo pipeline as users run it, default health settings, its full length (a few
    CPU minutes); only the in-training evaluation is off, to save time (the evaluation
    detectors have their own tests)."""
    config = load_pipeline("pipelines/demo.yaml", ("eval.every=0",))
    train(config, tmp_path / "run", device="cpu")
    assert "stgan: warning" not in capsys.readouterr().err
    for detector in DETECTORS[:-1]:  # all but stagnation, which needs evaluations
        flags = _scalars(tmp_path / "run", f"Health/{detector}")
        assert flags and all(v == 0.0 for _, v in flags), detector
