"""An evaluation report as TensorBoard scalars (``Metrics/<var>/<metric>``) and figures."""

from __future__ import annotations

import io
import math
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from stgan.metrics.registry import CROSS_CORRELATION_TAG, SCORE_TAG, headline

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from torch.utils.tensorboard import SummaryWriter

METRICS_PREFIX = "Metrics"
FLOOR_PREFIX = "Floor"
SCORE_SCALAR = f"{METRICS_PREFIX}/{SCORE_TAG}"  # the selection score of an evaluation
RELATIVE_PREFIX = "Relative"  # metric / floor: 1 is the real-data level


def report_scalars(report: Mapping[str, Any], prefix: str = METRICS_PREFIX) -> dict[str, float]:
    """The report's headline numbers as flat TensorBoard tags.

    ``<prefix>/<var>/<metric>`` for each metric of the registry (``acf_error``,
    ``lsd_db``, ``wasserstein1``, ``ks``, ...), ``<prefix>/cross_correlation/error`` (the
    mean absolute difference of the correlation matrices), ``<prefix>/score`` (the
    selection score) when the report has one and, when the report has a floor,
    ``Floor/<var>/<metric>`` and ``Relative/<var>/<metric>`` (the metric over its floor,
    where the floor is above 0: model and floor on one scale, 1 being real-data level).
    Missing, ``None`` and non-finite values are left out.
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
    tags |= _relative(report)
    return {
        tag: float(value)
        for tag, value in tags.items()
        if isinstance(value, int | float) and math.isfinite(value)
    }


def _relative(report: Mapping[str, Any]) -> dict[str, float]:
    relative = {}
    for variable, floor_entry in (report.get("floor") or {}).items():
        values = headline(report["variables"].get(variable, {}))
        for name, floor in headline(floor_entry).items():
            value = values[name]
            if isinstance(value, int | float) and isinstance(floor, int | float) and floor > 0:
                relative[f"{RELATIVE_PREFIX}/{variable}/{name}"] = value / floor
    return relative


def log_report(
    writer: SummaryWriter,
    report: Mapping[str, Any],
    step: int,
    figures: Mapping[str, Figure | bytes] | None = None,
) -> None:
    """Write ``report_scalars(report)`` and each figure as ``Figures/<key>`` at ``step``.

    A figure is a matplotlib figure (closed once written, ``SummaryWriter.add_figure``'s
    default) or its PNG bytes (``stgan.figures.rendered``), logged as that image.
    """
    for tag, value in report_scalars(report).items():
        writer.add_scalar(tag, value, step)
    for key, figure in (figures or {}).items():
        if isinstance(figure, bytes):
            writer.add_image(f"Figures/{key}", png_pixels(figure), step, dataformats="HWC")
        else:
            writer.add_figure(f"Figures/{key}", figure, step)
    writer.flush()


def png_pixels(png: bytes) -> np.ndarray:
    """(H, W, 4) uint8 RGBA pixels of PNG bytes."""
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGBA"))


def write_report_events(
    logdir: str | Path,
    report: Mapping[str, Any],
    figures: Mapping[str, Figure | bytes] | None = None,
    step: int = 0,
) -> None:
    """A TensorBoard run in ``logdir`` holding ``report`` (and its figures) at ``step``
    (``stgan run``: the last training step, so the test result sits at the end of the
    training curves)."""
    from torch.utils.tensorboard import SummaryWriter

    writer = SummaryWriter(log_dir=str(logdir))
    try:
        log_report(writer, report, step=step, figures=figures)
    finally:
        writer.close()
