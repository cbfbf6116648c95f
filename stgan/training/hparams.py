"""The run's row in TensorBoard's HParams dashboard: its settings and the metrics beside them."""

from __future__ import annotations

from collections.abc import Mapping

from stgan.metrics.registry import COLLAPSE_WATCH
from stgan.metrics.tensorboard import SCORE_SCALAR
from stgan.training.config import PipelineConfig


def hparam_values(config: PipelineConfig, extra: Mapping[str, object] | None = None) -> dict:
    """The settings users tune most, plus ``extra`` (e.g. what a sweep chose)."""
    values = {
        "generator": config.model.generator.name,
        "discriminator": config.model.discriminator.name,
        "loss": config.loss.name,
        "lr_g": config.optim.lr_g,
        "lr_d": config.optim.lr_d,
        "n_critic": config.optim.n_critic,
        "batch_size": config.train.batch_size,
        "r1_gamma": config.loss.r1_gamma,
        "ema_decay": config.optim.ema_decay,
        "spectral_norm_d": config.model.discriminator.spectral_norm,
    }
    return {**values, **(extra or {})}


def hparam_metrics(config: PipelineConfig, extra: Mapping[str, object] | None = None) -> list[str]:
    """The metric tags the dashboard shows beside each run's settings."""
    names = []
    if config.eval_steps:
        names.append(SCORE_SCALAR)
        for v in config.spec.variable_names:
            names += [f"Metrics/{v}/{m}" for m in (*config.eval.criterion, *COLLAPSE_WATCH)]
    if extra and "sweep.trial" in extra:
        names.append("Sweep/value")  # the value `stgan sweep` ranks trials by
    return names + ["Loss/G", "Loss/D"]
