"""Tests for stgan doctor (stgan/doctor.py and stgan/commands/doctor.py) on hand-written runs."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from torch.utils.tensorboard import SummaryWriter

from stgan.cli import main
from stgan.doctor import Series, describe_trend, diagnose, logged_events, trend_word
from stgan.training.config import load_pipeline, resolved_dict
from stgan.training.health import Event, HealthConfig, remedies
from stgan.training.health_log import HealthLog
from tests.conftest import tiny_pipeline

STEPS = np.arange(10, 410, 10)  # 40 log steps
RNG = np.random.default_rng(0)

# The run's story: D pulls ahead (Loss/D falls, Loss/G rises), G's gradient norm is
# steady, D's oscillates; D's accuracies sit at 0.99 twice, the second time to the end;
# recall falls while precision holds.
OVERPOWERING = (STEPS >= 150) & (STEPS < 230) | (STEPS >= 330)
SERIES = {
    "Loss/D": 1.5 - 0.003 * STEPS + 0.02 * RNG.standard_normal(len(STEPS)),
    "Loss/G": 0.2 + 0.004 * STEPS + 0.02 * RNG.standard_normal(len(STEPS)),
    "Grad/G_norm": 2.0 + 0.01 * RNG.standard_normal(len(STEPS)),
    "Grad/D_norm": 5.0 + 2.0 * np.sin(STEPS / 15.0),
    "D/real_acc": np.where(OVERPOWERING, 0.99, 0.7),
    "D/fake_acc": np.where(OVERPOWERING, 0.995, 0.6),
    "Health/overpowering": OVERPOWERING.astype(float),  # as the loop logs them
    "Health/divergence": np.zeros(len(STEPS)),
}
EVAL_STEPS = np.array([100, 200, 300, 400])
METRICS = {
    "Metrics/tas/recall": np.array([0.8, 0.7, 0.5, 0.3]),
    "Metrics/tas/precision": np.array([0.9, 0.9, 0.9, 0.9]),
    "Metrics/score": np.array([1.0, 0.7, 0.8, 0.9]),
}
BEST = {"step": 200, "score": 0.7, "metrics": {"Metrics/tas/recall": 0.7, "Metrics/score": 0.7}}
# The run's own health settings: short spans, so that 40 log steps can show failures.
HEALTH = {"warmup": 5, "observations": 5, "one_way_observations": 10, "rearm_after": 2}
LOGGED = [  # health.jsonl as the loop wrote it: overpowering starting twice
    Event("overpowering", int(s), 0.99, "warn", f"D overpowering G (at {s}); try x")
    for s in (150, 330)
]


def write_events(logdir: Path, series: dict, steps: np.ndarray) -> SummaryWriter:
    writer = SummaryWriter(log_dir=str(logdir))
    for i, step in enumerate(steps.tolist()):
        for tag, values in series.items():
            writer.add_scalar(tag, float(values[i]), step)
    writer.flush()
    return writer


def write_run(logdir: Path, best: dict | None = BEST, health: dict | None = HEALTH) -> Path:
    """A run directory as stgan train leaves it: events, health.jsonl, checkpoints, best.pt,
    config.yaml."""
    write_events(logdir, SERIES, STEPS).close()
    write_events(logdir, METRICS, EVAL_STEPS).close()
    write_config(logdir, health)
    HealthLog(logdir).append(LOGGED)
    checkpoints = logdir / "checkpoints"
    checkpoints.mkdir()
    for step in (300, 400):
        torch.save({"step": step}, checkpoints / f"ckpt_{step:08d}.pt")
    if best is not None:
        torch.save({"step": best["step"], "evaluation": best}, checkpoints / "best.pt")
    return logdir


def write_config(logdir: Path, health: dict | None) -> None:
    """A resolved config.yaml as stgan train writes it (a bce run), with ``health:`` as
    given (the defaults for None)."""
    config = resolved_dict(load_pipeline(tiny_pipeline(logdir, loss={"name": "bce"})))
    config.pop("health")
    (logdir / "config.yaml").write_text(
        yaml.safe_dump({**config, **({"health": health} if health is not None else {})})
    )


def trend_line(out: str, tag: str) -> str:
    trends = out.split("\ntrends")[1].split("\n\n")[0]
    (line,) = [x for x in trends.splitlines() if x.strip().startswith(tag + " ")]
    return line


def test_report_events_health_now_trends_best_and_advice(tmp_path, capsys):
    write_run(tmp_path)
    assert main(["doctor", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert f"last step {STEPS[-1]}" in out and "loss bce" in out
    assert "ckpt_00000300.pt, ckpt_00000400.pt (newest step 400)" in out
    events = out.split("health events")[1].split("\n\n")[0]
    assert [int(line.split()[0]) for line in events.splitlines()[2:]] == [150, 330]
    assert "overpowering" in events and "divergence" not in events
    assert events.splitlines()[-1].endswith("warn  (active)")  # the replay: still failing
    now = out.split("health at the last step")[1].split("\n\n")[0]
    active = {line.split()[0] for line in now.splitlines()[1:] if "ACTIVE" in line}
    assert active == {"overpowering", "one_way", "collapse"}
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
    # the logged events, with the replayed monitor's message for the failure now
    assert (
        "overpowering: 2 event(s), first at step 150, still active; now: D overpowering" in advice
    )
    assert "over steps 330-370: D accuracy 0.99 real, 0.995 fake" in advice
    assert ", ".join(remedies("overpowering", "bce")) in advice  # bce: label smoothing alone
    assert "loss.name=bce" not in advice
    # failures the loop did not log, found by the monitor replaying the scalars
    assert "collapse active at step 400 (replayed): mode collapse (Metrics/tas/recall" in advice
    assert "one_way active at step 400 (replayed): one-way losses (Loss/D falling" in advice
    assert f"best.pt (step {BEST['step']}) beat every later evaluation" in advice


def test_the_replay_uses_the_runs_own_health_settings(tmp_path):
    (tmp_path / "a").mkdir(), (tmp_path / "b").mkdir(), (tmp_path / "c").mkdir()
    defaults = diagnose(write_run(tmp_path / "a", health=None))  # the default spans
    assert HealthConfig().observations > len(STEPS)  # not enough D accuracies for them
    assert defaults["health_now"]["overpowering"]["flag"] is False
    assert defaults["events"][-1]["active"] is False  # the loop's event, not failing now
    strict = diagnose(write_run(tmp_path / "b", health={**HEALTH, "accuracy_threshold": 0.999}))
    assert strict["health_now"]["overpowering"]["flag"] is False  # 0.99 is below its bar
    assert diagnose(write_run(tmp_path / "c"))["health_now"]["overpowering"]["flag"] is True


def test_a_health_section_that_does_not_validate_is_a_problem_and_exit_1(tmp_path, capsys):
    write_run(tmp_path, health={"window": 50})  # the old name of health.observations
    problems = diagnose(tmp_path)["problems"]
    assert any("config.yaml: health.window: unknown key" in p for p in problems)
    assert sum("health.window" in p for p in problems) == 1  # listed once, not per check
    assert main(["doctor", str(tmp_path)]) == 1
    out, err = capsys.readouterr()
    assert err == "" and "health.window: unknown key" in out.split("\nproblems")[1]


def test_json_report(tmp_path, capsys):
    write_run(tmp_path, best=None)
    assert main(["doctor", str(tmp_path), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert [(e["detector"], e["step"], e["value"], e["action"]) for e in report["events"]] == [
        ("overpowering", 150, 0.99, "warn"),
        ("overpowering", 330, 0.99, "warn"),
    ]
    assert report["events"][0]["message"] == LOGGED[0].message
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
    assert report["monitored"] is False and report["events"] == []
    assert any("without the health monitor" in line for line in report["advice"])


def test_diverged_run_is_advised_as_such(tmp_path):
    values = {"Loss/D": np.r_[np.ones(6), math.nan], "Loss/G": np.ones(7)}
    write_events(tmp_path, values, STEPS[:7]).close()
    report = diagnose(tmp_path)
    trend = {t["tag"]: t for t in report["trends"]}["Loss/D"]
    assert trend["trend"] == "non-finite" and trend["non_finite"] == 1 and trend["last"] == 1.0
    assert report["health_now"]["divergence"]["flag"] is True
    assert any(
        line.startswith("divergence active at step 70 (replayed): divergence (NaN/Inf in Loss/D)")
        for line in report["advice"]
    )


@pytest.mark.parametrize("make", [lambda p: p / "absent", lambda p: p])
def test_logdir_without_event_files_is_a_one_line_error(tmp_path, make, capsys):
    (tmp_path / "config.yaml").write_text("name: run\n")
    assert main(["doctor", str(make(tmp_path))]) == 2
    out, err = capsys.readouterr()
    assert out == "" and err.count("\n") == 1
    assert err.startswith("stgan: error: ") and "no TensorBoard event files" in err


def test_logged_events_mark_the_last_of_a_detector_failing_now():
    logged = [
        {"step": 5, "detector": "collapse", "value": 0.3},
        {"step": 1, "detector": "collapse", "value": 0.1},
        {"step": 2, "detector": "divergence", "value": 1.0},
    ]
    now = {"collapse": {"flag": True}, "divergence": {"flag": False}}
    events = logged_events(logged, now)
    assert [(e["detector"], e["step"], e["active"]) for e in events] == [
        ("collapse", 1, False),
        ("divergence", 2, False),
        ("collapse", 5, True),
    ]
    assert not any(e["active"] for e in logged_events(logged, {}))  # nothing replayed


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


def test_rising_takes_the_monitors_one_way_correlation():
    steps = np.arange(20) * 10
    values = 0.5 * np.arange(20) + 3.0 * (np.arange(20) % 2)  # a zigzag drifting up
    # its last half's rank correlation with time is 0.71: below the monitor's bar
    assert HealthConfig.one_way_correlation > 0.71
    assert trend_word(steps, values) == "oscillating"
    assert trend_word(steps, values, correlation=0.7) == "rising"


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
