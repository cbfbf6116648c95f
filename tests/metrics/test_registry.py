"""The metric registry: one owner of names, directions, floors and the selection score."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stgan.errors import SpecError
from stgan.metrics import evaluate_arrays
from stgan.metrics.registry import (
    BY_NAME,
    DEFAULT_CRITERION,
    METRICS,
    SELECTABLE,
    check_criterion,
    headline,
    metric,
    selection_score,
)


def _report(variables, floor=None):
    report = {"variables": variables}
    if floor is not None:
        report["floor"] = floor
    return report


def test_every_headline_number_of_a_real_report_is_registered():
    rng = np.random.default_rng(0)
    real, fake = ({"v": rng.standard_normal((8, 5, 4, 4))} for _ in range(2))
    entry = evaluate_arrays(real, fake)["variables"]["v"]
    values = headline(entry)
    assert set(values) == {m.name for m in METRICS}
    assert all(isinstance(values[m], float) for m in values), values
    assert values["acf_error"] == entry["acf"]["error"]
    assert values["lsd_db"] == entry["psd"]["lsd_db"]


def test_directions_and_selectable_metrics():
    assert metric("coverage").better == "higher" and not metric("coverage").selectable
    assert metric("c2st").better == "lower" and "c2st" in SELECTABLE
    assert set(DEFAULT_CRITERION) == {"acf_error", "lsd_db", "wasserstein1"}
    assert all(BY_NAME[m].selectable for m in DEFAULT_CRITERION)
    with pytest.raises(SpecError, match="unknown metric 'fid'; known metrics: acf_error"):
        metric("fid")


def test_criterion_check_names_the_choices():
    check_criterion(("ks", "c2st"), "eval.criterion")
    with pytest.raises(SpecError, match=r"eval.criterion: .*\['recall'\]; choose from acf_error"):
        check_criterion(("recall",), "eval.criterion")
    with pytest.raises(SpecError, match="eval.criterion"):
        check_criterion((), "eval.criterion")


def test_selection_score_is_the_mean_ratio_to_the_floor():
    variables = {
        "u": {"acf": {"error": 0.3}, "psd": {"lsd_db": 12.0}, "ks": 99.0},
        "v": {"acf": {"error": 0.5}, "psd": {"lsd_db": 2.0}},
    }
    floor = {
        "u": {"acf": {"error": 0.1}, "psd": {"lsd_db": 4.0}},
        "v": {"acf": {"error": 0.25}, "psd": {"lsd_db": 1.0}},
    }
    acf = (0.3 / 0.1 + 0.5 / 0.25) / 2
    lsd = (12.0 / 4.0 + 2.0 / 1.0) / 2
    score = selection_score(_report(variables, floor), ("acf_error", "lsd_db"))
    assert score == pytest.approx((acf + lsd) / 2)


def test_selection_score_edge_cases():
    report = _report({"u": {"ks": 0.2}}, {"u": {"ks": 0.0, "c2st": 0.1}})
    assert selection_score(report, ("ks",)) == pytest.approx(0.2)  # floor 0: raw value
    # c2st defined for the real data but not for the samples: never the best
    assert selection_score(report, ("ks", "c2st")) == math.inf
    # energy undefined on both sides: left out
    assert selection_score(report, ("ks", "energy")) == pytest.approx(0.2)
    assert selection_score(_report({"u": {}}), ("ks",)) == math.inf
    assert selection_score(_report({"u": {"ks": 0.4}}), ("ks",)) == pytest.approx(0.4)  # no floor
