"""Domain metrics during training: EMA samples against a real split, in physical units.

Every ``eval.every`` steps rank 0 scores the EMA generator through the one comparison
of ``stgan.comparison``: ``eval.samples`` sequences drawn with ``report.seed`` (the seed
``stgan run`` generates with), sample ``i`` for the calendar of real window ``i``, against
as many windows of ``eval.split``, with the training
split as the floor. Its score is ``stgan.metrics.registry.selection_score`` of the report
(1.0 is the floor, lower is better), the number that keeps ``best.pt``.

Between the full evaluations (``PipelineConfig.quick_eval_steps``) a quick one draws
``eval.quick_samples`` sequences the same way and computes only the streaming metrics
(no c2st, mmd2 or precision/recall/density/coverage), against a floor of as many training
windows. It only informs: no score, no ``best.pt``, no health check, no state.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch

from stgan.comparison import (
    Comparison,
    Crop,
    Cut,
    as_variables,
    comparison_options,
    split_comparison,
)
from stgan.data import calendar
from stgan.data.cf import describe_grid
from stgan.data.prepared import PreparedData
from stgan.data.transforms import Transforms
from stgan.sampling import sample_sequences
from stgan.training.config import PipelineConfig


@dataclass
class Evaluation:
    """The outcome of one evaluation."""

    step: int
    score: float
    scalars: dict[str, float]  # Metrics/<var>/<metric>, Floor/..., Metrics/score
    report: dict[str, Any]
    figures: dict[str, Any] = field(default_factory=dict)
    is_best: bool = False


class Evaluator:
    """Scores the EMA generator; keeps the best score and the step it came from."""

    def __init__(
        self,
        config: PipelineConfig,
        data: PreparedData,
        device: torch.device,
        grid: Mapping[str, Any] | None = None,
    ) -> None:
        self.config = config
        self.transforms = data.transforms
        self.variables = list(data.spec.variable_names)
        grid = grid or training_grid(config, data)
        self.cycles = calendar.model_cycles(grid, config.model.generator.calendar)
        self.comparison = comparison_for_training(config, data, device, grid)
        self.quick_comparison = (
            comparison_for_training(config, data, device, grid, quick=True)
            if config.quick_eval_steps
            else None
        )
        self.best = math.inf
        self.best_step = -1  # the step of ``best`` (the one best.pt holds); -1 before any

    def __call__(self, g: torch.nn.Module, step: int, figures: bool = True) -> Evaluation:
        synthetic = self.sample(g)
        report = self.comparison.report(synthetic)
        scalars = _scalars(report)
        score = float(report["score"])
        evaluation = Evaluation(step, score, scalars, report, is_best=score < self.best)
        if evaluation.is_best:
            self.best, self.best_step = score, step
        if figures and self.config.eval.figures:
            evaluation.figures = self.comparison.figures(report, synthetic)
        return evaluation

    def quick(self, g: torch.nn.Module) -> dict[str, float]:
        """The streaming metrics of ``eval.quick_samples`` sequences, as TensorBoard
        scalars (``Metrics/``, ``Floor/``, ``Relative/``; no score); changes no state."""
        if self.quick_comparison is None:
            raise ValueError("no quick evaluations in this config (eval.quick_every)")
        report = self.quick_comparison.report(self.sample(g, quick=True))
        del report["score"]  # the score is the full evaluation's (it keeps best.pt)
        return _scalars(report)

    def sample(self, g: torch.nn.Module, quick: bool = False) -> dict[str, Any]:
        """``eval.samples`` (``quick``: ``eval.quick_samples``) sequences in physical units,
        as ``stgan run`` generates them."""
        comparison = self.quick_comparison if quick else self.comparison
        count = self.config.eval.quick_samples if quick else self.config.eval.samples
        was_training = g.training
        g.eval()
        try:
            values = sample_sequences(
                g,
                self.transforms,
                count,
                self.config.output_frames,
                self.config.report.seed,
                context=_normalized(comparison, self.transforms),
                calendar=comparison.real.calendar(self.cycles),
            )
        finally:
            g.train(was_training)
        return as_variables(values, self.variables)

    def state_dict(self) -> dict:
        """What the next evaluation compares against, as plain numbers (for checkpoints)."""
        return {"best": self.best, "best_step": self.best_step}

    def load_state_dict(self, state: Mapping) -> None:
        """Restore :meth:`state_dict` (``best_step`` is absent from stgan <= 0.5 checkpoints)."""
        self.best = float(state.get("best", math.inf))
        self.best_step = int(state.get("best_step", -1))


def training_grid(config: PipelineConfig, data: PreparedData) -> dict[str, Any]:
    """The grid description a training run records in its checkpoints (one pass over the
    data for the static mask), with the cycles of its train split."""
    return describe_grid(data.source, config.spec.patch, calendar.training_cycles(data))


def comparison_for_training(
    config: PipelineConfig,
    data: PreparedData,
    device: torch.device,
    grid: Mapping[str, Any] | None = None,
    quick: bool = False,
) -> Comparison:
    """The comparison in-training evaluation uses: ``eval.split`` on the trained grid;
    ``quick``: ``eval.quick_samples`` windows and the streaming metrics only."""
    grid = grid or training_grid(config, data)
    count = config.eval.quick_samples if quick else config.eval.samples
    return split_comparison(
        data.source,
        data.layout,
        config.eval.split,
        Cut(count, config.output_frames, config.context_frames, Crop.of_grid(grid)),
        **comparison_options(config),
        whole_sequence=not quick,
    )


def _normalized(comparison: Comparison, transforms: Transforms) -> torch.Tensor | None:
    """The real windows' past, normalized ``(N, T_in, C, H, W)``, or ``None``."""
    context = comparison.real.context
    if context is None:
        return None
    z, _ = transforms.forward(context, channel_axis=2)  # missing cells filled
    return torch.from_numpy(z)


def _scalars(report: dict) -> dict[str, float]:
    from stgan.metrics.tensorboard import report_scalars

    return report_scalars(report)
