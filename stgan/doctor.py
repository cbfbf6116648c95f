"""A run's health report from its TensorBoard events and checkpoints (``stgan doctor``).

``diagnose(logdir)`` reads what a run has written so far (it may still be going) and
returns the report as plain data: the run's last step and checkpoints, the health
events (``Health/<detector>`` flags going from 0 to 1), the trends of the losses,
gradient norms and metrics, the best checkpoint by the selection score, and advice.
``format_report`` turns it into text.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from tensorboard.backend.event_processing import event_accumulator

from stgan.errors import CheckpointError, DataError
from stgan.training.checkpoint import list_checkpoints, load_checkpoint
from stgan.training.health import DETECTORS, HealthConfig, rank_correlation, remedies

TREND_TAGS = ("Loss/G", "Loss/D", "Grad/G_norm", "Grad/D_norm")
# The last half of a series moving less than this fraction of the series' scale is flat.
FLAT_FRACTION = 0.05
# |rank correlation| with time over the last half from which a series is rising/falling;
# below it, a series that moves is oscillating.
TREND_CORRELATION = 0.6
# A gradient norm rising this many times above its minimum over the last half is exploding
# (the monitor's factor: an order of magnitude).
GROWTH_FACTOR = HealthConfig.gradient_factor


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
    loss_name = _loss_name(logdir)
    events = health_events(scalars)
    tags = [t for t in TREND_TAGS if t in scalars]
    tags += sorted(t for t in scalars if t.startswith("Metrics/"))
    trends = [{"tag": t, **describe_trend(scalars[t])} for t in tags]
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
        "events": events,
        "health_now": health_now(scalars),
        "trends": trends,
    }
    report["advice"] = advice(report)
    return report


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


def health_events(scalars: dict[str, Series]) -> list[dict[str, Any]]:
    """Each ``Health/<detector>`` flag going from 0 (or the start) to 1, by step."""
    events = []
    for detector in DETECTORS:
        flags = scalars.get(f"Health/{detector}")
        if flags is None:
            continue
        on = flags.values >= 0.5
        starts = np.flatnonzero(on & ~np.r_[False, on[:-1]])
        values = scalars.get(f"Health/{detector}/value")
        lookup = (
            dict(zip(values.steps.tolist(), values.values.tolist())) if values is not None else {}
        )
        for i in starts:
            step = int(flags.steps[i])
            active = bool(on[-1] and i == starts[-1])
            value = lookup.get(step)  # None where no value was logged
            events.append({"step": step, "detector": detector, "value": value, "active": active})
    return sorted(events, key=lambda e: (e["step"], DETECTORS.index(e["detector"])))


def health_now(scalars: dict[str, Series]) -> dict[str, dict[str, Any]]:
    """Each monitored detector's flag and value at its last logged step."""
    now = {}
    for detector in DETECTORS:
        flags = scalars.get(f"Health/{detector}")
        if flags is None or not len(flags.steps):
            continue
        values = scalars.get(f"Health/{detector}/value")
        value = float(values.values[-1]) if values is not None and len(values.steps) else None
        now[detector] = {
            "step": int(flags.steps[-1]),
            "flag": bool(flags.values[-1] >= 0.5),
            "value": value,
        }
    return now


def describe_trend(series: Series) -> dict[str, Any]:
    """First, last and min value, the slope per step over the last half, and a word.

    The word is ``rising``, ``falling``, ``flat`` or ``oscillating`` for the last half of
    the finite values, or ``non-finite`` when the last value is NaN or Inf.
    """
    finite = np.isfinite(series.values)
    steps, values = series.steps[finite], series.values[finite]
    out: dict[str, Any] = {"points": len(series.values), "non_finite": int((~finite).sum())}
    if not len(values):
        empty = dict.fromkeys(("first", "last", "min", "half_min", "slope"))
        return {**out, **empty, "trend": "non-finite"}
    half = slice((len(values) - 1) // 2, None)
    hs, hv = steps[half].astype(float), values[half]
    slope = float(np.polyfit(hs, hv, 1)[0]) if len(hv) > 1 and np.ptp(hs) > 0 else 0.0
    word = trend_word(steps, values) if finite[-1] else "non-finite"
    first, last, low = float(values[0]), float(values[-1]), float(values.min())
    return {
        **out,
        "first": first,
        "last": last,
        "min": low,
        "half_min": float(hv.min()),  # the last half's minimum, for growth within it
        "slope": slope,
        "trend": word,
    }


def trend_word(steps: np.ndarray, values: np.ndarray) -> str:
    """``flat``, ``rising``, ``falling`` or ``oscillating``: how the last half moves."""
    half = slice((len(values) - 1) // 2, None)
    hs, hv = steps[half], values[half]
    scale = max(abs(float(values.mean())), float(values.std()), 1e-12)
    moved = max(float(hv.std()), abs(float(hv[-1] - hv[0])))
    if moved <= FLAT_FRACTION * scale:
        return "flat"
    rho = rank_correlation(hs.tolist(), hv.tolist())
    if abs(rho) >= TREND_CORRELATION:
        return "rising" if rho > 0 else "falling"
    return "oscillating"


def advice(report: dict[str, Any]) -> list[str]:
    """What to do, from the report's events and trends; one line each."""
    loss = report["loss"]
    trends = {t["tag"]: t for t in report["trends"]}
    word = {tag: t["trend"] for tag, t in trends.items()}
    d_winning = not (word.get("Loss/D") == "rising" or word.get("Loss/G") == "falling")
    lines = []
    for detector in DETECTORS:
        found = [e for e in report["events"] if e["detector"] == detector]
        if found:
            still = ", still active" if found[-1]["active"] else ""
            fixes = ", ".join(remedies(detector, loss, d_winning))
            lines.append(
                f"{detector}: {len(found)} event(s), first at step {found[0]['step']}{still}; try {fixes}"
            )
    if word.get("Loss/D") == "falling" and word.get("Loss/G") == "rising":
        fixes = ", ".join(remedies("overpowering", loss))
        lines.append(f"Loss/D falling while Loss/G rises: D is pulling ahead; try {fixes}")
    for tag in ("Grad/G_norm", "Grad/D_norm"):
        t = trends.get(tag)
        if t and t["trend"] == "rising" and t["last"] > GROWTH_FACTOR * max(t["half_min"], 1e-12):
            fixes = ", ".join(remedies("exploding_gradients", loss))
            lines.append(
                f"{tag} rising to {t['last']:.3g} from {t['half_min']:.3g} over the last half; "
                f"try {fixes}"
            )
    if any(t["trend"] == "non-finite" for t in report["trends"]):
        bad = ", ".join(t["tag"] for t in report["trends"] if t["trend"] == "non-finite")
        lines.append(
            f"{bad} ended NaN/Inf: the run diverged; try {', '.join(remedies('divergence', loss))}"
        )
    lines += _metric_advice(word, loss)
    lines += _best_advice(report)
    if not report["monitored"]:
        lines.append("no Health/* scalars: this run was trained without the health monitor")
    return lines or ["no health events and no worrying trends"]


def _metric_advice(word: dict[str, str], loss: str) -> list[str]:
    """Collapse: a variable's recall or coverage falling while its precision does not."""
    lines = []
    for tag in sorted(word):
        prefix, _, name = tag.rpartition("/")
        precision = word.get(f"{prefix}/precision")
        if (
            name in ("recall", "coverage")
            and word[tag] == "falling"
            and precision not in (None, "falling")
        ):
            fixes = ", ".join(remedies("collapse", loss))
            lines.append(
                f"{tag} falling while precision is {precision}: mode collapse; try {fixes}"
            )
    if word.get("Metrics/score") == "falling":
        lines.append(
            "Metrics/score still falling (improving) at the end: more train.steps may help"
        )
    return lines


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


def _loss_name(logdir: Path) -> str:
    """``loss.name`` from the run's config.yaml (for the remedies), else the default."""
    try:
        config = yaml.safe_load((logdir / "config.yaml").read_text())
        return str(config["loss"]["name"])
    except (OSError, yaml.YAMLError, KeyError, TypeError):
        return "hinge"


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
        lines.append(f"  {'step':>8}  {'detector':<20}  value")
        for e in report["events"]:
            active = "  (active)" if e["active"] else ""
            lines.append(f"  {e['step']:>8}  {e['detector']:<20}  {_number(e['value'])}{active}")
    else:
        lines.append("  none" if report["monitored"] else "  none recorded (no Health/* scalars)")
    if report["health_now"]:
        lines += ["", "health at the last step (flag, value)"]
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
    return "\n".join(lines)


def _number(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.4g}"


def _checkpoint_line(report: dict[str, Any]) -> str:
    ckpts = report["checkpoints"]
    if not ckpts:
        return "none yet"
    names = ", ".join(c["name"] for c in ckpts)
    return f"{names} (newest step {ckpts[-1]['step']})"
