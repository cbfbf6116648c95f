"""Tests for stgan doctor (stgan/doctor.py and stgan/commands/doctor.py) on hand-written runs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.tensorboard import SummaryWriter

from stgan.cli import main
from stgan.doctor import Series, describe_trend, diagnose, health_events, trend_word
from stgan.training.health import DETECTORS, remedies

STEPS = np.arange(10, 410, 10)  # 40 log steps
RNG = np.random.default_rng(0)

# The run's story: D pulls ahead (Loss/D falls, Loss/G rises), G's gradient norm is
# steady, D's oscillates; overpowering starts twice; recall falls while precision holds.
OVERPOWERING = (STEPS >= 150) & (STEPS < 230) | (STEPS >= 330)
SERIES = {
    "Loss/D": 1.5 - 0.003 * STEPS + 0.02 * RNG.standard_normal(len(STEPS)),
    "Loss/G": 0.2 + 0.004 * STEPS + 0.02 * RNG.standard_normal(len(STEPS)),
    "Grad/G_norm": 2.0 + 0.01 * RNG.standard_normal(len(STEPS)),
    "Grad/D_norm": 5.0 + 2.0 * np.sin(STEPS / 15.0),
    "Health/overpowering": OVERPOWERING.astype(float),
    "Health/overpowering/value": np.where(OVERPOWERING, 0.99, 0.8),
    "Health/divergence": np.zeros(len(STEPS)),
    "Health/divergence/value": np.zeros(len(STEPS)),
}
EVAL_STEPS = np.array([100, 200, 300, 400])
METRICS = {
    "Metrics/tas/recall": np.array([0.8, 0.7, 0.5, 0.3]),
    "Metrics/tas/precision": np.array([0.9, 0.9, 0.9, 0.9]),
    "Metrics/score": np.array([1.0, 0.7, 0.8, 0.9]),
}
BEST = {"step": 200, "score": 0.7, "metrics": {"Metrics/tas/recall": 0.7, "Metrics/score": 0.7}}


def write_events(logdir: Path, series: dict, steps: np.ndarray) -> SummaryWriter:
    writer = SummaryWriter(log_dir=str(logdir))
    for i, step in enumerate(steps.tolist()):
        for tag, values in series.items():
            writer.add_scalar(tag, float(values[i]), step)
    writer.flush()
    return writer


def write_run(logdir: Path, best: dict | None = BEST) -> Path:
    """A run directory as stgan train leaves it: events, checkpoints, best.pt, config.yaml."""
    write_events(logdir, SERIES, STEPS).close()
    write_events(logdir, METRICS, EVAL_STEPS).close()
    (logdir / "config.yaml").write_text("loss: {name: bce}\n")
    checkpoints = logdir / "checkpoints"
    checkpoints.mkdir()
    for step in (300, 400):
        torch.save({"step": step}, checkpoints / f"ckpt_{step:08d}.pt")
    if best is not None:
        torch.save({"step": best["step"], "evaluation": best}, checkpoints / "best.pt")
    return logdir


def starts(flags: np.ndarray) -> list[int]:
    """Steps where a flag goes 0 -> 1, computed independently of the code under test."""
    return [int(s) for i, s in enumerate(STEPS) if flags[i] and (i == 0 or not flags[i - 1])]


def trend_line(out: str, tag: str) -> str:
    trends = out.split("\ntrends")[1].split("\n\n")[0]
    (line,) = [x for x in trends.splitlines() if x.strip().startswith(tag + " ")]
    return line


def test_report_events_trends_best_and_advice(tmp_path, capsys):
    write_run(tmp_path)
    assert main(["doctor", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"last step {STEPS[-1]}" in out and "loss bce" in out
    assert "ckpt_00000300.pt, ckpt_00000400.pt (newest step 400)" in out
    events = out.split("health events")[1].split("\n\n")[0]
    expected = starts(SERIES["Health/overpowering"].astype(bool))
    assert len(expected) == 2
    assert [int(line.split()[0]) for line in events.splitlines()[2:]] == expected
    assert "overpowering" in events and "divergence" not in events
    assert events.splitlines()[-1].endswith("(active)")  # the second one lasts to the end
    words = {
        "Loss/D": "falling",
        "Loss/G": "rising",
        "Grad/G_norm": "flat",
        "Grad/D_norm": "oscillating",
        "Metrics/tas/recall": "falling",
        "Metrics/tas/precision": "flat",
    }
    for tag, word in words.items():
        assert trend_line(out, tag).endswith(word), trend_line(out, tag)
    first, last = SERIES["Loss/D"][0], SERIES["Loss/D"][-1]
    assert f"{first:.4g}" in trend_line(out, "Loss/D") and f"{last:.4g}" in trend_line(
        out, "Loss/D"
    )
    assert f"best.pt  step {BEST['step']}  score {BEST['score']:.4g}" in out
    advice = out.split("\nadvice\n")[1]
    assert "overpowering: 2 event(s), first at step 150, still active" in advice
    assert ", ".join(remedies("overpowering", "bce")) in advice  # bce: label smoothing alone
    assert "loss.name=bce" not in advice
    assert "Metrics/tas/recall falling while precision is flat: mode collapse" in advice
    assert "Loss/D falling while Loss/G rises" in advice
    assert f"best.pt (step {BEST['step']}) beat every later evaluation" in advice


def test_json_report(tmp_path, capsys):
    write_run(tmp_path, best=None)
    assert main(["doctor", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [(e["detector"], e["step"], e["value"]) for e in report["events"]] == [
        ("overpowering", s, pytest.approx(0.99))
        for s in starts(SERIES["Health/overpowering"].astype(bool))
    ]
    assert report["best"] is None and "no best.pt" in report["best_error"]
    now = report["health_now"]["overpowering"]
    assert now == {"step": STEPS[-1], "flag": True, "value": pytest.approx(0.99)}
    slope = {t["tag"]: t["slope"] for t in report["trends"]}["Loss/D"]
    assert slope == pytest.approx(-0.003, rel=0.15)


def test_a_run_still_writing_is_read(tmp_path):
    writer = write_events(tmp_path, {"Loss/D": np.ones(5), "Loss/G": np.arange(5.0)}, STEPS[:5])
    try:  # flushed, not closed: as a run in progress leaves it
        report = diagnose(tmp_path)
    finally:
        writer.close()
    assert report["last_step"] == STEPS[4] and report["checkpoints"] == []
    assert report["monitored"] is False
    assert any("without the health monitor" in line for line in report["advice"])


def test_diverged_run_is_advised_as_such(tmp_path):
    values = {"Loss/D": np.r_[np.ones(6), math.nan], "Loss/G": np.ones(7)}
    write_events(tmp_path, values, STEPS[:7]).close()
    report = diagnose(tmp_path)
    trend = {t["tag"]: t for t in report["trends"]}["Loss/D"]
    assert trend["trend"] == "non-finite" and trend["non_finite"] == 1 and trend["last"] == 1.0
    assert any("Loss/D ended NaN/Inf" in line for line in report["advice"])


@pytest.mark.parametrize("make", [lambda p: p / "absent", lambda p: p])
def test_logdir_without_event_files_is_a_one_line_error(tmp_path, make, capsys):
    (tmp_path / "config.yaml").write_text("name: run\n")
    assert main(["doctor", str(make(tmp_path))]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith("stgan: error: ") and "no TensorBoard event files" in err


def test_health_events_from_flags():
    steps = np.array([1, 2, 3, 4, 5, 6])
    flags = np.array([1.0, 1.0, 0.0, 0.0, 1.0, 0.0])
    scalars = {
        "Health/collapse": Series(steps, flags),
        "Health/collapse/value": Series(steps[:5], np.array([0.1, 0.2, 0.9, 0.9, 0.3])),
        "Health/divergence": Series(steps, np.zeros(6)),
    }
    events = health_events(scalars)
    assert [(e["detector"], e["step"], e["value"], e["active"]) for e in events] == [
        ("collapse", 1, 0.1, False),
        ("collapse", 5, 0.3, False),
    ]
    assert "collapse" in DETECTORS


@pytest.mark.parametrize(
    ("values", "word"),
    [
        (np.linspace(2.0, 1.0, 30) + 0.01 * np.sin(np.arange(30)), "falling"),
        (np.linspace(1.0, 5.0, 30), "rising"),
        (1.0 + 0.001 * np.sin(np.arange(30)), "flat"),
        (1.0 + 0.3 * np.sin(np.arange(30) * 2.0), "oscillating"),
        (np.r_[np.linspace(3.0, 1.0, 15), np.ones(15)], "flat"),  # settled after a fall
    ],
)
def test_trend_words(values, word):
    steps = np.arange(len(values)) * 10
    assert trend_word(steps, values) == word


def test_describe_trend_numbers():
    steps = np.arange(0, 100, 10)
    values = 3.0 - 0.5 * steps / 10
    trend = describe_trend(Series(steps, values))
    assert trend["first"] == 3.0 and trend["last"] == values[-1] and trend["min"] == values[-1]
    assert trend["slope"] == pytest.approx(-0.05) and trend["points"] == 10


def test_best_at_the_last_evaluation_needs_no_advice(tmp_path):
    last = int(EVAL_STEPS[-1])
    report = diagnose(write_run(tmp_path, best={**BEST, "step": last}))
    assert report["best"]["step"] == report["last_evaluation"] == last
    assert not any("best.pt" in line for line in report["advice"])
