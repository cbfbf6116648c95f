"""A run's health report from its scalars, health log and checkpoints (``stgan doctor``).

``diagnose(logdir)`` reads what a run has written so far (it may still be going) and
returns the report as plain data: the run's last step and checkpoints, the health
events the loop acted on (``health.jsonl``), the health now, the trends of the losses,
gradient norms and metrics, the best checkpoint by the selection score, and advice.
``format_report`` turns it into text.

Its ``problems`` are the run's files that would fail the next command: a config.yaml
that is not YAML or does not validate as a pipeline (the loader every command uses),
and a checkpoint that does not load (``weights_only``, as ``--resume`` and ``generate``
load it). ``stgan doctor`` exits 1 when there is any.

The health now is not judged here: the logged scalars are replayed through the
training ``Monitor`` with the run's own ``health:`` settings (from its config.yaml),
so the doctor and the loop share one set of detectors and thresholds.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tensorboard.backend.event_processing import event_accumulator

from stgan.config import build, load_yaml
from stgan.errors import CheckpointError, DataError, SpecError
from stgan.health_names import DETECTORS
from stgan.metrics.tensorboard import SCORE_SCALAR
from stgan.training.checkpoint import list_checkpoints, load_checkpoint
from stgan.training.config import pipeline_from_dict
from stgan.training.health import WATCHED, Event, HealthConfig, Monitor, rank_correlation
from stgan.training.health_log import read_health_log
from stgan.training.state import RUN_CONFIG

TREND_TAGS = ("Loss/G", "Loss/D", "Grad/G_norm", "Grad/D_norm")
# For the words only, never for health: the last half of a series moving less than this
# fraction of the series' scale is described as flat.
FLAT_FRACTION = 0.05
DEFAULT_LOSS = "hinge"  # loss.name's default, for a run without config.yaml


@dataclass(frozen=True)
class Series:
    """One scalar tag: steps ascending, one value per step."""

    steps: np.ndarray
    values: np.ndarray


def diagnose(logdir: str | Path) -> dict[str, Any]:
    """The health report of the run in ``logdir``, as plain data.

    Raises
    ------
    DataError
        If ``logdir`` holds no TensorBoard event files.
    """
    logdir = Path(logdir)
    scalars = read_scalars(logdir)
    health, loss_name, config_problems = run_settings(logdir)
    replayed, now = replay(scalars, health, loss_name)
    tags = [t for t in TREND_TAGS if t in scalars]
    tags += sorted(t for t in scalars if t.startswith("Metrics/"))
    correlation = health.one_way_correlation
    trends = [{"tag": t, **describe_trend(scalars[t], correlation)} for t in tags]
    best, best_error = _best(logdir)
    report = {
        "logdir": str(logdir),
        "last_step": _last_step(scalars, "") or 0,
        "scalar_tags": len(scalars),
        "loss": loss_name,
        "checkpoints": [
            {"name": p.name, "step": step} for step, p in list_checkpoints(logdir / "checkpoints")
        ],
        "best": best,
        "best_error": best_error,
        "last_evaluation": _last_step(scalars, "Metrics/"),
        "monitored": any(f"Health/{d}" in scalars for d in DETECTORS),
        "events": logged_events(read_health_log(logdir), now),
        "health_now": now,
        "active_now": _active_messages(replayed, now),
        "trends": trends,
    }
    report["problems"] = config_problems + checkpoint_problems(logdir)
    report["advice"] = advice(report)
    return report


def checkpoint_problems(logdir: Path) -> list[str]:
    """Why each checkpoint of the run (``ckpt_*.pt`` and ``best.pt``) does not load."""
    directory = logdir / "checkpoints"
    paths = [p for _, p in list_checkpoints(directory)]
    paths += [directory / "best.pt"] if (directory / "best.pt").is_file() else []
    problems = []
    for path in paths:
        try:
            load_checkpoint(path)
        except CheckpointError as err:
            problems.append(str(err))
    return problems


def _last_step(scalars: dict[str, Series], prefix: str) -> int | None:
    """The last step logged under tags starting with ``prefix``, or None."""
    steps = [int(s.steps[-1]) for t, s in scalars.items() if t.startswith(prefix) and len(s.steps)]
    return max(steps, default=None)


def read_scalars(logdir: Path) -> dict[str, Series]:
    """Every scalar tag in ``logdir``'s event files (a later value for a step wins)."""
    if not logdir.is_dir() or not any(logdir.glob("events.out.tfevents.*")):
        raise DataError(
            f"{logdir}: no TensorBoard event files (events.out.tfevents.*); "
            "pass the --logdir of a stgan train run"
        )
    accumulator = event_accumulator.EventAccumulator(
        str(logdir), size_guidance={event_accumulator.SCALARS: 0}
    )
    accumulator.Reload()
    out = {}
    for tag in accumulator.Tags()["scalars"]:
        by_step = {int(e.step): float(e.value) for e in accumulator.Scalars(tag)}
        steps = np.array(sorted(by_step), dtype=np.int64)
        out[tag] = Series(steps, np.array([by_step[s] for s in steps.tolist()]))
    return out


def run_settings(logdir: Path) -> tuple[HealthConfig, str, list[str]]:
    """The run's ``health:`` settings and ``loss.name`` from its config.yaml, and what is
    wrong with that file. Defaults without one; defaults for what does not validate."""
    path = logdir / RUN_CONFIG
    if not path.is_file():
        return HealthConfig(), DEFAULT_LOSS, []
    try:
        raw = load_yaml(path)
    except SpecError as exc:
        return HealthConfig(), DEFAULT_LOSS, [f"{exc} (the health below uses the defaults)"]
    problems, health_error = [], None
    try:
        health = build(HealthConfig, raw.get("health"), "health")
    except SpecError as exc:
        health, health_error = HealthConfig(), str(exc)
        problems.append(f"{path}: {exc} (the health below uses the defaults)")
    try:
        pipeline_from_dict(raw, base_dir=logdir)
    except SpecError as exc:
        if str(exc) != health_error:  # a bad health section is listed once
            problems.append(f"{path}: {exc}; the run cannot be resumed or regenerated from it")
    loss = raw.get("loss")
    name = loss.get("name", DEFAULT_LOSS) if isinstance(loss, dict) else DEFAULT_LOSS
    return health, str(name), problems


def replay(
    scalars: dict[str, Series], health: HealthConfig, loss_name: str
) -> tuple[list[Event], dict[str, dict[str, Any]]]:
    """Feed the logged scalars through the training ``Monitor``, step by step as the loop
    did (log step, then evaluation); return the events it raised and the health at the
    last step: ``{detector: {"step", "flag", "value"}}``.

    The monitor judges even where the run had it disabled (``health.enabled: false``).
    A rollback's reset and the real-sample count behind recall are not in the scalars:
    the replay goes on without the reset, and with ``recall_drop`` alone as the bar.
    """
    monitor = Monitor(dataclasses.replace(health, enabled=True), loss_name)
    by_step: dict[int, dict[str, float]] = {}
    for tag, series in scalars.items():
        if tag in WATCHED or tag.startswith("Metrics/"):
            for step, value in zip(series.steps.tolist(), series.values.tolist()):
                by_step.setdefault(step, {})[tag] = value
    events: list[Event] = []
    last = None
    for step in sorted(by_step):
        values = by_step[step]
        if any(tag in WATCHED for tag in values):
            events += monitor.observe(step, values)
            last = step
        if SCORE_SCALAR in values:
            events += monitor.observe_evaluation(step, values, values[SCORE_SCALAR])
            last = step
    if last is None:
        return [], {}
    flags = monitor.scalars()
    now = {
        d: {
            "step": last,
            "flag": flags[f"Health/{d}"] >= 0.5,
            "value": flags.get(f"Health/{d}/value"),
        }
        for d in DETECTORS
    }
    return events, now


def logged_events(
    logged: list[dict[str, Any]], now: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    """The events of ``health.jsonl`` by step; ``active`` on each detector's last one when
    the replay finds that detector still failing."""
    events = sorted(logged, key=lambda e: (e["step"], DETECTORS.index(e["detector"])))
    last = {e["detector"]: i for i, e in enumerate(events)}
    return [
        {**e, "active": last[e["detector"]] == i and now.get(e["detector"], {}).get("flag", False)}
        for i, e in enumerate(events)
    ]


def _active_messages(events: list[Event], now: dict[str, dict[str, Any]]) -> dict[str, str]:
    """For each detector failing at the last step, the replay's message from when it began."""
    started = {e.detector: e.message for e in events}  # the latest start of each
    return {d: started[d] for d, state in now.items() if state["flag"] and d in started}


def describe_trend(
    series: Series, correlation: float = HealthConfig.one_way_correlation
) -> dict[str, Any]:
    """First, last and min value, the slope per step over the last half, and a word.

    The word is ``rising``, ``falling``, ``flat`` or ``oscillating`` for the last half of
    the finite values (see :func:`trend_word`), or ``non-finite`` when the last value is
    NaN or Inf.
    """
    finite = np.isfinite(series.values)
    steps, values = series.steps[finite], series.values[finite]
    out: dict[str, Any] = {"points": len(series.values), "non_finite": int((~finite).sum())}
    if not len(values):
        empty = dict.fromkeys(("first", "last", "min", "slope"))
        return {**out, **empty, "trend": "non-finite"}
    half = slice((len(values) - 1) // 2, None)
    hs, hv = steps[half].astype(float), values[half]
    slope = float(np.polyfit(hs, hv, 1)[0]) if len(hv) > 1 and np.ptp(hs) > 0 else 0.0
    word = trend_word(steps, values, correlation) if finite[-1] else "non-finite"
    return {
        **out,
        "first": float(values[0]),
        "last": float(values[-1]),
        "min": float(values.min()),
        "slope": slope,
        "trend": word,
    }


def trend_word(
    steps: np.ndarray, values: np.ndarray, correlation: float = HealthConfig.one_way_correlation
) -> str:
    """``flat``, ``rising``, ``falling`` or ``oscillating``: how the last half moves.

    Rising or falling takes the monitor's bar for a one-way loss: an |rank correlation|
    with time of at least ``correlation`` (``health.one_way_correlation``).
    """
    half = slice((len(values) - 1) // 2, None)
    hs, hv = steps[half], values[half]
    scale = max(abs(float(values.mean())), float(values.std()), 1e-12)
    moved = max(float(hv.std()), abs(float(hv[-1] - hv[0])))
    if moved <= FLAT_FRACTION * scale:
        return "flat"
    rho = rank_correlation(hs.tolist(), hv.tolist())
    if abs(rho) >= correlation:
        return "rising" if rho > 0 else "falling"
    return "oscillating"


def advice(report: dict[str, Any]) -> list[str]:
    """What to do, from the logged events, the replayed health now and the trends."""
    lines = []
    active = dict(report["active_now"])
    for detector in DETECTORS:
        found = [e for e in report["events"] if e["detector"] == detector]
        if found:
            still = ", still active" if found[-1]["active"] else ""
            message = active.pop(detector, None) or found[-1]["message"]
            lines.append(
                f"{detector}: {len(found)} event(s), first at step {found[0]['step']}{still}; "
                f"{'now' if still else 'last'}: {message}"
            )
    for detector, message in active.items():  # failing now, though the loop logged nothing
        step = report["health_now"][detector]["step"]
        lines.append(f"{detector} active at step {step} (replayed): {message}")
    trends = {t["tag"]: t["trend"] for t in report["trends"]}
    if trends.get(SCORE_SCALAR) == "falling":
        lines.append(
            "Metrics/score still falling (improving) at the end: more train.steps may help"
        )
    lines += _best_advice(report)
    if not report["monitored"]:
        lines.append(
            "no Health/* scalars: this run was trained without the health monitor "
            "(the health now is the doctor's replay of its scalars)"
        )
    if report.get("problems"):
        lines.append(
            f"{len(report['problems'])} file problem(s), listed below: fix or remove those files"
        )
    return lines or ["no health events and no worrying trends"]


def _best_advice(report: dict[str, Any]) -> list[str]:
    """best.pt older than the last evaluation: later training did not beat it."""
    best, last = report["best"], report["last_evaluation"]
    if best is None or last is None or best["step"] >= last:
        return []
    return [
        f"best.pt (step {best['step']}) beat every later evaluation up to step {last}: "
        "generate from best.pt, not the last checkpoint"
    ]


def _best(logdir: Path) -> tuple[dict[str, Any] | None, str | None]:
    """best.pt's evaluation ``{"step", "score", "metrics"}``, or why there is none."""
    path = logdir / "checkpoints" / "best.pt"
    if not path.is_file():
        return None, "no best.pt (evaluation off or not reached: eval.every)"
    try:
        evaluation = load_checkpoint(path).get("evaluation")
    except CheckpointError as err:
        return None, str(err)
    if not isinstance(evaluation, dict):
        return None, f"{path} holds no evaluation"
    metrics = {str(k): float(v) for k, v in evaluation.get("metrics", {}).items()}
    return {
        "step": int(evaluation["step"]),
        "score": float(evaluation["score"]),
        "metrics": metrics,
    }, None


def format_report(report: dict[str, Any]) -> str:
    """The report as text: run, checkpoints, health events, trends, best, advice."""
    lines = [
        f"run          {report['logdir']}  last step {report['last_step']}  "
        f"({report['scalar_tags']} scalar tags, loss {report['loss']})",
        f"checkpoints  {_checkpoint_line(report)}",
        "",
        "health events",
    ]
    if report["events"]:
        lines.append(f"  {'step':>8}  {'detector':<20}  {'value':>10}  action")
        for e in report["events"]:
            active = "  (active)" if e["active"] else ""
            lines.append(
                f"  {e['step']:>8}  {e['detector']:<20}  {_number(e['value']):>10}  "
                f"{e['action']}{active}"
            )
    else:
        lines.append("  none" if report["monitored"] else "  none recorded (no Health/* scalars)")
    if report["health_now"]:
        lines += ["", "health at the last step, replayed with the run's settings (flag, value)"]
        for detector, now in report["health_now"].items():
            flag = "ACTIVE" if now["flag"] else "ok"
            lines.append(f"  {detector:<20}  {flag:<6}  {_number(now['value'])}")
    lines += ["", "trends (slope per step over the last half)"]
    width = max([len(t["tag"]) for t in report["trends"]] + [3])
    lines.append(
        f"  {'tag':<{width}}  {'points':>6}  {'first':>10}  {'last':>10}  {'min':>10}  {'slope':>10}  trend"
    )
    for t in report["trends"]:
        numbers = "  ".join(f"{_number(t[k]):>10}" for k in ("first", "last", "min", "slope"))
        lines.append(f"  {t['tag']:<{width}}  {t['points']:>6}  {numbers}  {t['trend']}")
    lines += ["", "best checkpoint"]
    best = report["best"]
    if best:
        lines.append(f"  best.pt  step {best['step']}  score {best['score']:.4g}")
        shown = sorted((k, v) for k, v in best["metrics"].items() if k.startswith("Metrics/"))
        lines += [f"    {k}  {v:.4g}" for k, v in shown]
    else:
        lines.append(f"  {report['best_error']}")
    lines += ["", "advice", *[f"  - {line}" for line in report["advice"]]]
    if report["problems"]:
        lines += ["", "problems (the run's files that the next command would refuse)"]
        lines += [f"  - {problem}" for problem in report["problems"]]
    return "\n".join(lines)


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _checkpoint_line(report: dict[str, Any]) -> str:
    ckpts = report["checkpoints"]
    if not ckpts:
        return "none yet"
    names = ", ".join(c["name"] for c in ckpts)
    return f"{names} (newest step {ckpts[-1]['step']})"
