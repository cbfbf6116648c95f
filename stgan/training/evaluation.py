"""Domain metrics during training: EMA samples against a real split, in physical units.

Every ``eval.every`` steps rank 0 draws ``eval.samples`` sequences from the EMA
generator (a fixed seed, so evaluations differ only by the weights), inverts the
transforms, puts NaN where the compared real windows are missing, and scores them
with ``stgan.metrics.evaluate_arrays`` against windows of ``eval.split``. The
floor (the training split against the same windows) is measured once. The
selection score is the mean of the ``eval.criterion`` metrics, each divided by
its value at the first evaluation: 1.0 at the start, lower is better.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from stgan.data.dataset import WindowDataset
from stgan.data.prepared import PreparedData
from stgan.data.transforms import Transforms
from stgan.data.windows import spread_evenly
from stgan.errors import SpecError
from stgan.figures import evaluation_figures, y_descends
from stgan.metrics import evaluate_arrays
from stgan.training.config import MIN_EVAL_SAMPLES, PipelineConfig

SAMPLE_SEED = 20_240_601  # the latent draws of every evaluation


@dataclass
class Evaluation:
    """The outcome of one evaluation."""

    step: int
    score: float
    scalars: dict[str, float]  # Metrics/<var>/<metric>, Floor/..., Metrics/score
    report: dict[str, Any]
    figures: dict[str, Any] = field(default_factory=dict)
    is_best: bool = False


@dataclass
class Reference:
    """Real windows in physical units, ``{variable: (N, T, y, x)}`` with NaN where missing."""

    arrays: dict[str, np.ndarray]
    context: torch.Tensor | None  # normalized (N, T_in, C, H, W) for conditional generators
    valid: np.ndarray  # (N, T, C, H, W) bool, applied to the synthetic samples


class Evaluator:
    """Scores the EMA generator; keeps the baseline, the best score and their steps."""

    def __init__(self, config: PipelineConfig, data: PreparedData, device: torch.device) -> None:
        self.config = config
        self.device = device
        self.transforms = data.transforms
        self.variables = list(data.spec.variable_names)
        self.units = {v: str(data.source.attrs.get(v, {}).get("units", "")) for v in self.variables}
        self.north_up = y_descends(data.source.coords["y"].values)
        split = config.eval.split
        self.reference = load_reference(
            _dataset(data, split), self.transforms, self.variables, config
        )
        self.floor_reference = load_reference(
            _dataset(data, "train"), self.transforms, self.variables, config
        )
        self.baseline: dict[str, float] | None = None
        self.best = math.inf
        self.best_step = -1
        self.floor: dict[str, Any] | None = None

    def __call__(self, g: torch.nn.Module, step: int, figures: bool = True) -> Evaluation:
        cfg = self.config.eval
        synthetic = self.sample(g)
        report = evaluate_arrays(self.reference.arrays, synthetic, lags=cfg.lags, seed=step)
        if self.floor is None:
            self.floor = evaluate_arrays(
                self.reference.arrays, self.floor_reference.arrays, lags=cfg.lags
            )["variables"]
        report["floor"] = self.floor
        scalars = _scalars(report)
        score = self.score(scalars)
        scalars["Metrics/score"] = score
        evaluation = Evaluation(step, score, scalars, report, is_best=score < self.best)
        if evaluation.is_best:
            self.best, self.best_step = score, step
        if figures and cfg.figures:
            evaluation.figures = _figures(
                report, self.reference.arrays, synthetic, self.units, self.north_up
            )
        return evaluation

    @torch.no_grad()
    def sample(self, g: torch.nn.Module) -> dict[str, np.ndarray]:
        """``eval.samples`` EMA sequences in physical units, NaN where the reference is missing."""
        n = self.config.eval.samples
        generator = torch.Generator(self.device).manual_seed(SAMPLE_SEED)
        valid = self.reference.valid
        batches = []
        for start in range(0, n, 16):
            b = min(16, n - start)
            index = np.arange(start, start + b) % len(valid)
            context = None
            if self.reference.context is not None:
                context = self.reference.context[index].to(self.device)
            z, noise = g.latents(b, generator=generator)
            fake = g(z, noise, context).float().cpu()  # (b, T, C, H, W), normalized
            physical = self.transforms.inverse(fake, channel_axis=2).numpy()
            batches.append(np.where(valid[index], physical, np.nan))
        samples = np.concatenate(batches)  # (n, T, C, H, W)
        return {v: samples[:, :, c] for c, v in enumerate(self.variables)}

    def score(self, scalars: Mapping[str, float]) -> float:
        """Mean over criterion metrics of (mean over variables) / (its first value)."""
        current = {
            m: _mean_over_variables(scalars, m, self.variables) for m in self.config.eval.criterion
        }
        if self.baseline is None:
            self.baseline = current
        ratios = [
            current[m] / self.baseline[m] if self.baseline[m] > 0 else current[m] + 1.0
            for m in current
        ]
        return float(np.mean(ratios))

    def state_dict(self) -> dict:
        return {"baseline": self.baseline, "best": self.best, "best_step": self.best_step}

    def load_state_dict(self, state: Mapping) -> None:
        self.baseline = dict(state["baseline"]) if state.get("baseline") else None
        self.best = float(state.get("best", math.inf))
        self.best_step = int(state.get("best_step", -1))


def load_reference(
    dataset: WindowDataset, transforms: Transforms, variables: list[str], config: PipelineConfig
) -> Reference:
    """The first ``eval.samples`` windows of ``dataset`` (spread evenly when there are more)."""
    items = [dataset[int(i)] for i in spread_evenly(len(dataset), config.eval.samples)]
    x = torch.stack([item[0] for item in items])  # (N, T, C, H, W), normalized
    valid = torch.stack([item[1] for item in items]).numpy()
    gcfg = config.model.generator
    context = None
    if gcfg.conditional:
        t_in = gcfg.context_frames
        context, x, valid = x[:, :t_in], x[:, t_in:], valid[:, t_in:]
    physical = np.where(valid, transforms.inverse(x, channel_axis=2).numpy(), np.nan)
    arrays = {v: physical[:, :, c] for c, v in enumerate(variables)}
    return Reference(arrays, context, valid)


def _dataset(data: PreparedData, split: str) -> WindowDataset:
    dataset = data.dataset(split)
    if len(dataset) < MIN_EVAL_SAMPLES:
        raise SpecError(
            f"eval.split '{split}' has {len(dataset)} window(s); evaluation needs at least "
            f"{MIN_EVAL_SAMPLES}: enlarge that split or set eval.every=0"
        )
    return dataset


def _scalars(report: dict) -> dict[str, float]:
    from stgan.metrics.tensorboard import report_scalars

    return report_scalars(report)


def _figures(report, real, synthetic, units, north_up) -> dict:

    keep = 8  # the figures show a few sequences; the histograms pool their values
    return evaluation_figures(
        report,
        {v: a[:keep] for v, a in real.items()},
        {v: a[:keep] for v, a in synthetic.items()},
        units,
        north_up=north_up,
    )


def _mean_over_variables(scalars: Mapping[str, float], metric: str, variables: list[str]) -> float:
    values = [scalars.get(f"Metrics/{v}/{metric}", math.nan) for v in variables]
    # an undefined metric (e.g. the acf of constant output) can never be the best
    return float(np.mean(values)) if all(math.isfinite(x) for x in values) else math.inf
