"""What ``stgan sweep`` was asked to do, checked against the pipeline before any trial."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from stgan.errors import SpecError, StganError
from stgan.sweep.space import Param, overrides
from stgan.training.config import PipelineConfig, load_pipeline

Sampler = Literal["tpe", "grid"]

DEFAULT_TPE_TRIALS = 20
# Pruning: a trial is judged from its second evaluation on (the first comes after only
# eval.every steps, when a slow starter such as a low learning rate still looks like a bad
# one), against the median of at least two completed trials (the median of one trial is
# just that trial). A non-finite value is pruned at once.
PRUNE_STARTUP_TRIALS = 2
PRUNE_AFTER_EVALUATIONS = 2
EVALUATIONS_PER_TRIAL = 4  # eval.every = steps // 4 where the pipeline would judge too rarely


@dataclass(frozen=True)
class SweepSettings:
    """Everything ``stgan sweep`` was asked to do, validated by :func:`run_sweep`."""

    pipeline: Path
    space: tuple[Param, ...]
    logdir: Path
    trials: int | None = None  # total wanted in the study; default: the grid, or 20
    steps: int | None = None  # train.steps of each trial
    sampler: Sampler = "tpe"
    storage: str | None = None  # SQLAlchemy URL; default sqlite:///<logdir>/study.db
    study: str | None = None  # default: the pipeline's name
    fixed: tuple[str, ...] = ()  # --set overrides shared by all trials
    device: str = "auto"
    seed: int | None = None
    heartbeat: int = 10  # seconds; a trial is stale after two missed beats


def quiet(line: str) -> None:
    """The default ``notify``: say nothing."""


def check_settings(settings: SweepSettings) -> int:
    """Check the numbers and the sampler against the space; return the trials wanted."""
    for name, value in (
        ("--trials", settings.trials),
        ("--steps", settings.steps),
        ("--heartbeat", settings.heartbeat),
    ):
        if value is not None and value < 1:
            raise StganError(f"{name}: {value} must be >= 1")
    if settings.sampler != "grid":
        return settings.trials or DEFAULT_TPE_TRIALS
    ranges = [p for p in settings.space if p.is_range]
    if ranges:
        raise SpecError(
            f"--sampler grid: {ranges[0]} is a range; list its values "
            f"({ranges[0].key}=a,b,c) or use --sampler tpe"
        )
    size = math.prod(len(p.choices) for p in settings.space)
    if settings.trials is not None and settings.trials > size:
        raise StganError(
            f"--trials: {settings.trials} is more than the {size} grid points; "
            f"ask for at most {size} or list more values"
        )
    return settings.trials or size


def shared_overrides(
    settings: SweepSettings, notify: Callable[[str], None] = quiet
) -> tuple[str, ...]:
    """The user's ``--set`` plus ``train.steps`` and, where needed, ``eval.every``.

    Pruning needs evaluations, and saves time only from the third one on: a trial that
    the resolved pipeline would evaluate fewer than three times gets ``steps // 4``,
    unless the user's ``--set`` chose its ``eval.every`` (it differs from the pipeline's).
    """
    steps = () if settings.steps is None else (f"train.steps={settings.steps}",)
    fixed = (*settings.fixed, *steps)
    # as written: --steps may leave eval.every above train.steps until it is changed here
    config = load_pipeline(settings.pipeline, fixed, resolved=False)
    total, every = config.train.steps, config.eval.every
    if every and total // every > PRUNE_AFTER_EVALUATIONS:
        return fixed
    if every != load_pipeline(settings.pipeline, steps, resolved=False).eval.every:
        return fixed  # the user's word
    every = max(1, total // EVALUATIONS_PER_TRIAL)
    notify(f"evaluating every {every} steps (eval.every={every}), to prune bad trials early")
    return (*fixed, f"eval.every={every}")


def validate_space(settings: SweepSettings, shared: tuple[str, ...]) -> PipelineConfig:
    """Build the pipeline with every choice and both ends of every range; a bad key or
    value is the config validator's one-line error. Returns the config without sweeps."""
    for param in settings.space:
        for value in param.probes():
            try:
                load_pipeline(settings.pipeline, (*shared, *overrides({param.key: value})))
            except SpecError as exc:
                raise SpecError(f"--space {param}: {exc}") from None
    return load_pipeline(settings.pipeline, shared)
