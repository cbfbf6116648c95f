"""An evaluation report as a fixed-width table for people, with notes on what to watch."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from stgan.metrics.registry import METRICS, headline

# column header -> metric name
COLUMNS = {"acf.error" if m.name == "acf_error" else m.name: m.name for m in METRICS}


def format_report(report: Mapping[str, Any], nan_notes: Mapping[str, int] | None = None) -> str:
    """A table with one row per variable (and its floor row, when present) and notes.

    Parameters
    ----------
    report : mapping
        As ``stgan.metrics.evaluate`` returns it.
    nan_notes : mapping of str to int, optional
        Per variable, synthetic NaN cells at grid points where the real data has none
        (``stgan.metrics.inputs.nan_census``); non-zero counts become notes.

    Returns
    -------
    str
        Lines joined by newlines, no trailing newline.
    """
    rows = [["variable", *COLUMNS]]
    floor = report.get("floor", {})
    for variable, entry in report["variables"].items():
        rows.append([variable, *_cells(entry)])
        if variable in floor:
            rows.append(["  floor", *_cells(floor[variable])])
    lines = _aligned(rows)
    lines.append(f"cross-correlation error  {_number(_cross_error(report))}")
    lines.append(f"samples  real {report['n_real']}  synthetic {report['n_synthetic']}")
    if "score" in report:
        lines.append(
            f"score  {_number(report['score'])}  (selection score: 1 is the floor, lower is better)"
        )
    lines += [f"note: {note}" for note in notes(report, nan_notes)]
    return "\n".join(lines)


def notes(report: Mapping[str, Any], nan_notes: Mapping[str, int] | None = None) -> list[str]:
    """Sentences on NaN only in the synthetic data and on subsampled scores."""
    found = [
        f"synthetic {name!r} has NaN in {count} cells where real has none"
        for name, count in (nan_notes or {}).items()
        if count
    ]
    for name, entry in report["variables"].items():
        for key, scores in (("values_subsample", "marginal"), ("samples_subsample", "sequence")):
            if key in entry:
                used = entry[key]
                found.append(
                    f"{name!r}: {scores} scores on a random subsample of {used['real']} real "
                    f"and {used['synthetic']} synthetic {key.split('_')[0]}"
                )
    return found


def _cells(entry: Mapping[str, Any]) -> list[str]:
    values = headline(entry)
    return [_number(values[name]) for name in COLUMNS.values()]


def _cross_error(report: Mapping[str, Any]) -> float | None:
    return report.get("cross_correlation", {}).get("mean_abs_diff")


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if math.isfinite(value) else str(value)


def _aligned(rows: list[list[str]]) -> list[str]:
    """Left-aligned first column, right-aligned numbers, two spaces between columns."""
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return [
        "  ".join(
            cell.ljust(width) if i == 0 else cell.rjust(width)
            for i, (cell, width) in enumerate(zip(row, widths))
        ).rstrip()
        for row in rows
    ]
