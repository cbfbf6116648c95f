"""Hyperparameter sweeps on Optuna: a search space, trials that train and prune, a ranking.

Each trial trains the pipeline with its sampled ``key=value`` overrides in
``<logdir>/trial_<number:04d>`` and reports its evaluation score (``Evaluation.score``,
the one selection score: the ``eval.criterion`` metrics over their real-vs-real floor,
lower is better) at every in-training evaluation; ``MedianPruner`` stops a trial whose
score lags the median of the completed trials. A trial's value is its run's best score,
the one ``best.pt`` holds. The study lives in an SQLAlchemy storage (SQLite in the
logdir by default) with heartbeats, so a killed sweep resumes: its running trial goes
stale and is retried with the same settings, continuing from its last checkpoint.

The parts: ``space`` (``--space`` items), ``settings`` (what was asked, checked against
the pipeline), ``storage`` (the study, its sampler and pruner, what to run next),
``objective`` (one trial), ``results`` (summaries, ranking, sweep.json, the table) and
``runner`` (:func:`run_sweep`).
"""

from stgan.sweep.objective import Objective, Reporter, TrialFailed, crash_message, health_events
from stgan.sweep.results import (
    SweepResult,
    TrialSummary,
    format_table,
    format_trial,
    rank,
    results,
    summarize,
    write_results,
)
from stgan.sweep.runner import run_sweep
from stgan.sweep.settings import (
    DEFAULT_TPE_TRIALS,
    PRUNE_AFTER_EVALUATIONS,
    SweepSettings,
    check_settings,
    shared_overrides,
    validate_space,
)
from stgan.sweep.space import (
    Param,
    format_value,
    grid_points,
    overrides,
    parse_param,
    parse_space,
    parse_value,
    set_line,
)
from stgan.sweep.storage import open_study, storage_url

__all__ = [
    "DEFAULT_TPE_TRIALS",
    "PRUNE_AFTER_EVALUATIONS",
    "Objective",
    "Param",
    "Reporter",
    "SweepResult",
    "SweepSettings",
    "TrialFailed",
    "TrialSummary",
    "check_settings",
    "crash_message",
    "format_table",
    "format_trial",
    "format_value",
    "grid_points",
    "health_events",
    "open_study",
    "overrides",
    "parse_param",
    "parse_space",
    "parse_value",
    "rank",
    "results",
    "run_sweep",
    "set_line",
    "shared_overrides",
    "storage_url",
    "summarize",
    "validate_space",
    "write_results",
]
