"""Tests for stgan/training/health_log.py: health.jsonl written and read back."""

from __future__ import annotations

import math

from stgan.training.health import Event
from stgan.training.health_log import FILENAME, HealthLog, read_health_log


def test_events_round_trip_in_order(tmp_path):
    log = HealthLog(tmp_path)
    log.append([Event("divergence", 3, 2.0, "rollback", "divergence (NaN/Inf in Loss/G); try x")])
    log.append([])  # nothing to write: no empty line
    log.append(
        [
            Event("collapse", 7, 0.3, "warn", "mode collapse"),
            Event("one_way", 7, -0.95, "stop", "one-way"),
        ]
    )
    assert read_health_log(tmp_path) == [
        {
            "step": 3,
            "detector": "divergence",
            "value": 2.0,
            "action": "rollback",
            "message": "divergence (NaN/Inf in Loss/G); try x",
        },
        {
            "step": 7,
            "detector": "collapse",
            "value": 0.3,
            "action": "warn",
            "message": "mode collapse",
        },
        {"step": 7, "detector": "one_way", "value": -0.95, "action": "stop", "message": "one-way"},
    ]
    assert len((tmp_path / FILENAME).read_text().splitlines()) == 3


def test_a_non_finite_value_is_null(tmp_path):
    HealthLog(tmp_path).append([Event("divergence", 1, math.nan, "warn", "m")])
    assert "NaN" not in (tmp_path / FILENAME).read_text()
    assert read_health_log(tmp_path)[0]["value"] is None


def test_no_log_and_a_line_cut_short(tmp_path):
    assert read_health_log(tmp_path) == []
    HealthLog(tmp_path).append([Event("collapse", 5, 0.1, "warn", "m")])
    with (tmp_path / FILENAME).open("a") as file:
        file.write('{"step": 9, "detec')  # killed mid-write
    assert [e["step"] for e in read_health_log(tmp_path)] == [5]


def test_a_resumed_run_forgets_the_events_after_its_checkpoint(tmp_path):
    log = HealthLog(tmp_path)
    log.append([Event("collapse", step, 0.1, "warn", f"m{step}") for step in (4, 8, 9, 12)])
    log.drop_after(8)  # resumed from the step-8 checkpoint: steps 9.. are run again
    assert [e["step"] for e in read_health_log(tmp_path)] == [4, 8]
    log.append([Event("collapse", 9, 0.1, "warn", "m9")])
    assert [e["message"] for e in read_health_log(tmp_path)] == ["m4", "m8", "m9"]
    HealthLog(tmp_path / "none").drop_after(3)  # no log yet: nothing to do
    assert not (tmp_path / "none").exists()
