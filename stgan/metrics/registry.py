"""The one table of metrics: each metric's name, where its number sits in a report, its
direction, whether it has a floor, and its weight in the selection score.

Every list of metric names in stgan reads this table: the report's headline numbers, the
TensorBoard tags and layout, the comparison table of ``stgan run``, the criterion a
pipeline may choose, and :func:`selection_score`, the one score that picks ``best.pt``,
ranks ``stgan sweep`` trials and heads ``stgan run``'s report. Definitions: docs/metrics.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from stgan.errors import SpecError


@dataclass(frozen=True)
class MetricInfo:
    """One headline number of a variable's report entry.

    ``keys`` is the path into the entry (``("acf", "error")``); ``better`` says which way
    is better; ``floor`` whether a real-vs-real value is reported beside it; ``weight`` its
    weight in the default selection score (0: not in it); ``selectable`` whether a pipeline
    may put it in ``eval.criterion`` (lower is better and it has a floor to divide by);
    ``shown`` whether the run's comparison table and the TensorBoard layout show it;
    ``collapse`` whether it falls when the generator collapses (read beside precision by
    the health monitor, and shown in HParams).
    """

    name: str
    keys: tuple[str, ...]
    better: Literal["lower", "higher"] = "lower"
    floor: bool = True
    weight: float = 0.0
    shown: bool = False
    collapse: bool = False

    @property
    def selectable(self) -> bool:
        return self.better == "lower" and self.floor


METRICS: tuple[MetricInfo, ...] = (
    MetricInfo("acf_error", ("acf", "error"), weight=1.0, shown=True),
    MetricInfo("lsd_db", ("psd", "lsd_db"), weight=1.0, shown=True),
    MetricInfo("wasserstein1", ("wasserstein1",), weight=1.0, shown=True),
    MetricInfo("ks", ("ks",), shown=True),
    MetricInfo("increment_w1", ("increments", "wasserstein1"), shown=True),
    MetricInfo("energy", ("energy",)),
    MetricInfo("mmd2", ("mmd2",)),
    MetricInfo("c2st", ("c2st",), shown=True),
    MetricInfo("precision", ("precision",), better="higher"),
    MetricInfo("recall", ("recall",), better="higher", shown=True, collapse=True),
    MetricInfo("density", ("density",), better="higher"),
    MetricInfo("coverage", ("coverage",), better="higher", shown=True, collapse=True),
)
BY_NAME: dict[str, MetricInfo] = {m.name: m for m in METRICS}
# The tag of the one number across variables (the mean absolute difference of the
# correlation matrices); it has no floor and is not per variable.
CROSS_CORRELATION_TAG = "cross_correlation/error"
SCORE_TAG = "score"  # Metrics/score: the selection score of an evaluation
# Samples (and real windows) a comparison needs at least: c2st's 5 folds, the k = 5
# neighbours of precision/recall.
MIN_SAMPLES = 6
DEFAULT_CRITERION: tuple[str, ...] = tuple(m.name for m in METRICS if m.weight > 0)
SELECTABLE: tuple[str, ...] = tuple(m.name for m in METRICS if m.selectable)
SHOWN: tuple[str, ...] = tuple(m.name for m in METRICS if m.shown)
COLLAPSE_WATCH: tuple[str, ...] = tuple(m.name for m in METRICS if m.collapse)


def metric(name: str) -> MetricInfo:
    """The entry called ``name``; ``SpecError`` naming the known ones otherwise."""
    if name not in BY_NAME:
        raise SpecError(f"unknown metric {name!r}; known metrics: {', '.join(BY_NAME)}")
    return BY_NAME[name]


def check_criterion(criterion: Sequence[str], where: str) -> None:
    """``SpecError`` unless ``criterion`` is a non-empty list of selectable metrics."""
    unknown = [m for m in criterion if m not in SELECTABLE]
    if unknown or not criterion:
        raise SpecError(
            f"{where}: unknown or unselectable metric(s) {unknown}; choose from "
            f"{', '.join(SELECTABLE)}"
        )


def headline(entry: Mapping[str, Any]) -> dict[str, Any]:
    """Each metric's number in one variable's report entry, ``None`` where absent."""
    found = {}
    for info in METRICS:
        value: Any = entry
        for key in info.keys:
            value = value.get(key) if isinstance(value, Mapping) else None
        found[info.name] = value
    return found


def selection_score(
    report: Mapping[str, Any], criterion: Sequence[str] = DEFAULT_CRITERION
) -> float:
    """Weighted mean over ``criterion`` metrics of (mean over variables of metric / floor),
    each metric weighted by its ``weight`` (1 where it has none).

    Lower is better; 1.0 is the real-vs-real level. A metric whose floor is missing or 0
    counts by its raw value; one the generator left undefined (missing while its floor
    exists) makes the score infinite, so such a generator is never the best.
    """
    variables = report["variables"]
    floors = report.get("floor") or {}
    means, weights = [], []
    for name in criterion:
        ratios = []
        for variable, entry in variables.items():
            value = _number(headline(entry)[name])
            floor = _number(headline(floors.get(variable, {}))[name])
            if not math.isfinite(value):
                if math.isfinite(floor):
                    return math.inf
                continue  # undefined for the real data too: not a criterion here
            ratios.append(value / floor if math.isfinite(floor) and floor > 0 else value)
        if ratios:
            means.append(sum(ratios) / len(ratios))
            weights.append(BY_NAME[name].weight or 1.0)
    if not means:
        return math.inf
    return sum(w * m for w, m in zip(weights, means)) / sum(weights)


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else math.nan
