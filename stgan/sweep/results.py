"""A sweep's results: trials summarized, ranked, written to sweep.json and shown as text."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import FrozenTrial

from stgan.atomic import write_text_atomic
from stgan.metrics.report import to_json
from stgan.sweep.settings import SweepSettings
from stgan.sweep.space import format_value, set_line
from stgan.sweep.storage import counts_as_done, hide_password, storage_url
from stgan.training.config import PipelineConfig


@dataclass
class TrialSummary:
    """One trial as the ranking shows it."""

    number: int
    state: str
    value: float | None
    params: dict[str, Any]
    steps: int | None
    logdir: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    health: list[str] = field(default_factory=list)  # "step N: ..." events
    error: str | None = None  # why it failed
    stopped: str | None = None  # why a health check stopped it


@dataclass
class SweepResult:
    """A study's trials, ranked, with where the study is kept."""

    study: str
    storage: str
    trials: list[TrialSummary]  # ranked: completed by value, then pruned, failed, unfinished
    criterion: tuple[str, ...]

    @property
    def best(self) -> TrialSummary | None:
        done = [t for t in self.trials if t.state == "COMPLETE"]
        return done[0] if done else None

    def to_dict(self) -> dict:
        best = self.best
        return {
            "study": self.study,
            "storage": self.storage,
            "selection": "each trial's best evaluation score (Metrics/score; lower is better)",
            "criterion": list(self.criterion),
            "best": None if best is None else {**asdict(best), "set": set_line(best.params)},
            "trials": [asdict(t) for t in self.trials],
        }


_STATE_ORDER = {"COMPLETE": 0, "PRUNED": 1, "FAIL": 2, "RUNNING": 3, "WAITING": 4}


def summarize(trial: FrozenTrial) -> TrialSummary:
    """A stored trial as the ranking shows it."""
    attrs = trial.user_attrs
    steps = attrs.get("steps", trial.last_step)
    return TrialSummary(
        number=trial.number,
        state=trial.state.name,
        value=trial.value,
        params=dict(trial.params),
        steps=None if steps is None else int(steps),
        logdir=attrs.get("logdir"),
        metrics=dict(attrs.get("metrics", {})),
        health=list(attrs.get("health", [])),
        error=attrs.get("error"),
        stopped=attrs.get("stopped"),
    )


def rank(trials: Iterable[TrialSummary]) -> list[TrialSummary]:
    """Completed by value, then pruned (by their last value), failed, unfinished."""

    def key(t: TrialSummary) -> tuple:
        value = t.value if t.value is not None and math.isfinite(t.value) else math.inf
        return (_STATE_ORDER.get(t.state, 5), value, t.number)

    return sorted(trials, key=key)


def results(study: optuna.Study, settings: SweepSettings, base: PipelineConfig) -> SweepResult:
    """The study's trials ranked; a dead trial that a retry replaced is left out."""
    trials = study.get_trials(deepcopy=False)
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", ())}
    trials = [t for t in trials if t.number not in retried or counts_as_done(t)]
    return SweepResult(
        study=study.study_name,
        storage=hide_password(storage_url(settings)),
        trials=rank(summarize(t) for t in trials),
        criterion=tuple(base.eval.criterion),
    )


def write_results(logdir: Path, result: SweepResult) -> None:
    """``<logdir>/sweep.json``, written atomically (NaN and infinities as null)."""
    write_text_atomic(Path(logdir) / "sweep.json", to_json(result.to_dict()))


def format_table(result: SweepResult) -> str:
    """The ranked trials as a text table."""
    header = f"{'rank':>4}  {'trial':>5}  {'state':<8}  {'value':>9}  {'steps':>6}  params"
    lines = [header]
    for i, t in enumerate(result.trials, 1):
        value = "-" if t.value is None else f"{t.value:.4g}"
        steps = "-" if t.steps is None else str(t.steps)
        params = " ".join(f"{k}={_short(v)}" for k, v in t.params.items())
        note = f"  ({t.error or t.stopped})" if t.error or t.stopped else ""
        lines.append(f"{i:>4}  {t.number:>5}  {t.state:<8}  {value:>9}  {steps:>6}  {params}{note}")
    return "\n".join(lines)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else format_value(value)


def format_trial(t: TrialSummary) -> str:
    """One line for a finished trial."""
    value = "" if t.value is None else f" value {t.value:.4g}"
    steps = "" if t.steps is None else f" at step {t.steps}"
    health = "".join(f"\n  health: {event.split('; try ')[0]}" for event in t.health)
    error = f": {t.error or t.stopped}" if t.error or t.stopped else ""
    return f"trial {t.number} {t.state}{value}{steps}{error}{health}"
