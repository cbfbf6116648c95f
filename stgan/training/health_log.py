"""``health.jsonl``: a run's health events, one JSON object a line, beside its events.

The loop appends every event the monitor returns (rank 0 only), flushed at once, so a
run still going, or killed, has its events on disk. ``stgan doctor`` and ``stgan sweep``
read them back with :func:`read_health_log` instead of parsing TensorBoard text.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from stgan.atomic import atomic_path
from stgan.training.health import Event

FILENAME = "health.jsonl"


class HealthLog:
    """Appends health events to ``<run_dir>/health.jsonl``."""

    def __init__(self, run_dir: str | Path) -> None:
        self.path = Path(run_dir) / FILENAME

    def drop_after(self, step: int) -> None:
        """Forget the events logged after ``step``: a resumed run logs them again.

        The killed run went on past its last checkpoint; the resumed one repeats those
        steps, so without this ``stgan doctor`` would list their events twice.
        """
        if not self.path.is_file():
            return
        kept = [event for event in read_health_log(self.path.parent) if event["step"] <= step]
        with atomic_path(self.path) as tmp:
            tmp.write_text("".join(json.dumps(event) + "\n" for event in kept))

    def append(self, events: Iterable[Event]) -> None:
        """One line per event: ``step``, ``detector``, ``value``, ``action``, ``message``."""
        lines = [json.dumps(_record(event), allow_nan=False) + "\n" for event in events]
        if not lines:
            return
        with self.path.open("a") as file:
            file.writelines(lines)
            file.flush()


def _record(event: Event) -> dict[str, Any]:
    value = float(event.value)
    return {
        "step": int(event.step),
        "detector": event.detector,
        "value": value if math.isfinite(value) else None,
        "action": event.action,
        "message": event.message,
    }


def read_health_log(run_dir: str | Path) -> list[dict[str, Any]]:
    """The events in ``<run_dir>/health.jsonl`` in the order written; ``[]`` without one.

    A line cut short (a run killed mid-write) is skipped.
    """
    path = Path(run_dir) / FILENAME
    if not path.is_file():
        return []
    events = []
    for line in path.read_text().splitlines():
        try:
            events.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return events
