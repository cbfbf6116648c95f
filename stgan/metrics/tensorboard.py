"""An evaluation report as TensorBoard scalars (``Metrics/<var>/<metric>``) and figures."""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stgan.metrics.registry import CROSS_CORRELATION_TAG, SCORE_TAG, headline

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from torch.utils.tensorboard import SummaryWriter

FLOOR_PREFIX = "Floor"


def report_scalars(report: Mapping[str, Any], prefix: str = "Metrics") -> dict[str, float]:
    """The report's headline numbers as flat TensorBoard tags.

    ``<prefix>/<var>/<metric>`` for each metric of the registry (``acf_error``,
    ``lsd_db``, ``wasserstein1``, ``ks``, ...), ``<prefix>/cross_correlation/error`` (the
    mean absolute difference of the correlation matrices), ``<prefix>/score`` (the
    selection score) when the report has one and, when the report has a floor,
    ``Floor/<var>/<metric>``. Missing, ``None`` and non-finite values are left out.
    """
    tags = {
        f"{group}/{variable}/{name}": value
        for group, entries in ((prefix, report["variables"]), (FLOOR_PREFIX, report.get("floor")))
        for variable, entry in (entries or {}).items()
        for name, value in headline(entry).items()
    }
    tags[f"{prefix}/{CROSS_CORRELATION_TAG}"] = report["cross_correlation"].get("mean_abs_diff")
    if "score" in report:
        tags[f"{prefix}/{SCORE_TAG}"] = report["score"]
    return {
        tag: float(value)
        for tag, value in tags.items()
        if isinstance(value, int | float) and math.isfinite(value)
    }


def log_report(
    writer: SummaryWriter,
    report: Mapping[str, Any],
    step: int,
    figures: Mapping[str, Figure] | None = None,
) -> None:
    """Write ``report_scalars(report)`` and each figure as ``Figures/<key>`` at ``step``.

    The figures are closed once written (``SummaryWriter.add_figure``'s default).
    """
    for tag, value in report_scalars(report).items():
        writer.add_scalar(tag, value, step)
    for key, figure in (figures or {}).items():
        writer.add_figure(f"Figures/{key}", figure, step)
    writer.flush()


def write_report_events(
    logdir: str | Path, report: Mapping[str, Any], figures: Mapping[str, Figure] | None = None
) -> None:
    """A TensorBoard run in ``logdir`` holding ``report`` (and its figures) at step 0."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(logdir))
    try:
        log_report(writer, report, step=0, figures=figures)
    finally:
        writer.close()
