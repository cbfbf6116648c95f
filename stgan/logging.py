"""The one TensorBoard writer of a run: scalars, histograms, figures, layout, hparams."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from pathlib import Path

from torch import nn
from torch.utils.tensorboard import SummaryWriter
from torch.utils.tensorboard.summary import hparams

from stgan import __version__
from stgan.health_names import (
    DETECTORS,
    DIVERSITY_SCALARS,
    LOSS_AND_D_SCALARS,
    WEIGHT_SCALARS,
)
from stgan.metrics.registry import SHOWN
from stgan.metrics.tensorboard import SCORE_SCALAR

# The text each session of a run writes first: the stgan version that writes its events
# (TensorBoard's Text tab; scripts/screenshots.py refuses a run older than the code).
VERSION_TAG = "Run/stgan_version"
# The subdirectory (TensorBoard run) of the quick evaluations' scalars: under the same tags
# as the full evaluations, so TensorBoard draws both in each metric's chart, one colour a run.
QUICK_RUN = "quick"


class RunLogger:
    """Writes a run's events under ``logdir``; only rank 0 makes one. Each one (each
    training session, a resumed one too) first records the stgan version writing it."""

    def __init__(self, logdir: Path, purge_step: int | None = None) -> None:
        self.logdir, self.purge_step = Path(logdir), purge_step
        self.writer = self._open(self.logdir)
        self.quick_writer: SummaryWriter | None = None  # opened by the first quick_scalars

    def _open(self, log_dir: Path) -> SummaryWriter:
        """A writer of one TensorBoard run, its first event the stgan version writing it."""
        writer = SummaryWriter(log_dir=str(log_dir), purge_step=self.purge_step)
        writer.add_text(VERSION_TAG, __version__, 0)
        return writer

    def scalars(self, values: Mapping[str, float], step: int) -> None:
        for tag, value in values.items():
            self.writer.add_scalar(tag, value, step)

    def quick_scalars(self, values: Mapping[str, float], step: int) -> None:
        """A quick evaluation's scalars, in the run ``QUICK_RUN`` (``<logdir>/quick``)."""
        if self.quick_writer is None:
            self.quick_writer = self._open(self.logdir / QUICK_RUN)
        for tag, value in values.items():
            self.quick_writer.add_scalar(tag, value, step)
        self.quick_writer.flush()

    def figures(self, figures: Mapping, step: int) -> None:
        """Matplotlib figures as images, ``Figures/<key>``; each figure is closed."""
        for key, figure in figures.items():
            self.writer.add_figure(f"Figures/{key}", figure, step, close=True)

    def text(self, tag: str, text: str, step: int) -> None:
        self.writer.add_text(tag, text, step)

    def histograms(self, models: dict[str, nn.Module], step: int) -> None:
        """Weight and gradient histograms, e.g. ``Weights/G/stem.weight``."""
        for prefix, model in models.items():
            for name, p in model.named_parameters():
                self.writer.add_histogram(
                    f"Weights/{prefix}/{name}", p.detach().float().cpu(), step
                )
                if p.grad is not None:
                    self.writer.add_histogram(
                        f"Grads/{prefix}/{name}", p.grad.detach().float().cpu(), step
                    )

    def layout(self, variables: Iterable[str]) -> None:
        """The custom-scalars dashboard, one series per chart (TensorBoard colours a chart's
        series by run, so two tags in one chart differ only by marker, and its default
        outlier clipping cuts the one with the larger scale): losses, D, gradients, LR,
        the score, one 0/1 chart per health detector, and each metric over its floor
        (``Relative/``: 1 is the floor, model and floor on one scale whatever the units;
        the quick evaluations' run ``QUICK_RUN`` adds its points to these charts)."""
        charts = {
            "Training": _charts(TRAINING_TAGS),
            "Selection": {"score (best.pt minimizes; 1 = floor)": _only(SCORE_SCALAR)},
            "Health (1 = firing)": {d: _only(f"Health/{d}") for d in DETECTORS},
        }
        for v in variables:
            charts[f"Metrics {v} (÷ floor, 1 = real data)"] = {
                m: _only(f"Relative/{v}/{m}") for m in SHOWN
            }
        self.writer.add_custom_scalars(charts)

    def hparams_start(self, values: Mapping[str, object], metrics: Iterable[str]) -> None:
        """The HParams session of this run: its settings, and the metric tags to show beside them."""
        clean = {k: _hparam(v) for k, v in values.items()}
        experiment, start, _ = hparams(clean, {m: 0.0 for m in metrics})
        self.writer.file_writer.add_summary(experiment)
        self.writer.file_writer.add_summary(start)

    def hparams_end(self, values: Mapping[str, object], metrics: Iterable[str]) -> None:
        clean = {k: _hparam(v) for k, v in values.items()}
        _, _, end = hparams(clean, {m: 0.0 for m in metrics})
        self.writer.file_writer.add_summary(end)

    def flush(self) -> None:
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
        if self.quick_writer is not None:
            self.quick_writer.close()


# the training scalars of the custom-scalars dashboard, each its own chart
TRAINING_TAGS = (*LOSS_AND_D_SCALARS, *WEIGHT_SCALARS, "LR/G", "LR/D", *DIVERSITY_SCALARS)


def _only(tag: str) -> list:
    """A custom-scalars chart of ``tag`` alone (its tags are regular expressions:
    ``Health/collapse`` would also match ``Health/collapse/value``)."""
    return ["Multiline", [f"^{re.escape(tag)}$"]]


def _charts(tags: Iterable[str]) -> dict[str, list]:
    return {tag: _only(tag) for tag in tags}


def _hparam(value: object) -> object:
    """HParams take bool, int, float or str."""
    if isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    return str(value)
