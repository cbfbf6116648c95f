"""Where a sweep's study lives: the storage URL, opening or resuming the study (sampler,
pruner, heartbeats), and which trial to run next."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import optuna
from optuna.trial import FrozenTrial, TrialState

from stgan.errors import StganError, reason
from stgan.sweep.settings import (
    DEFAULT_TPE_TRIALS,
    PRUNE_AFTER_EVALUATIONS,
    PRUNE_STARTUP_TRIALS,
    SweepSettings,
)
from stgan.sweep.space import Param
from stgan.training.config import PipelineConfig

MAX_RETRIES = 3  # a trial whose process died is retried this often, then left failed


def storage_url(settings: SweepSettings) -> str:
    """``--storage``, or SQLite in the sweep's logdir."""
    if settings.storage:
        return settings.storage
    return f"sqlite:///{(settings.logdir / 'study.db').resolve()}"


def open_study(settings: SweepSettings, base: PipelineConfig) -> optuna.Study:
    """Create or load the study: heartbeats, retries of dead trials, sampler and pruner."""
    url = storage_url(settings)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        retry = optuna.storages.RetryHeartbeatStaleTrialCallback(
            max_retry=MAX_RETRIES, inherit_intermediate_values=True
        )
        try:
            storage = optuna.storages.RDBStorage(
                url, heartbeat_interval=settings.heartbeat, heartbeat_stale_trial_callback=retry
            )
        except Exception as exc:  # SQLAlchemy's URL, driver and connection errors
            cause = reason(exc)
            password = _password(url)
            cause = cause.replace(password, "***") if password else cause
            raise StganError(
                f"--storage {hide_password(url)}: cannot open ({cause}); "
                "give an SQLAlchemy URL such as sqlite:///sweep.db or postgresql://host/db"
            ) from None
    study = optuna.create_study(
        storage=storage,
        study_name=settings.study or base.name,
        direction="minimize",
        pruner=optuna.pruners.MedianPruner(
            n_startup_trials=PRUNE_STARTUP_TRIALS,
            n_warmup_steps=PRUNE_AFTER_EVALUATIONS * base.eval.every,
        ),
        load_if_exists=True,
    )
    _check_same_space(study, settings.space)
    study.sampler = _sampler(settings, len(study.trials))
    return study


def _sampler(settings: SweepSettings, existing: int) -> optuna.samplers.BaseSampler:
    # Offset the seed by the trials already run, so that a resumed sweep draws new points.
    seed = None if settings.seed is None else settings.seed + existing
    if settings.sampler == "grid":
        # Grid points are enqueued in the listed order (``next_step``); the sampler
        # keeps Optuna's grid bookkeeping for trials created by other tools.
        return optuna.samplers.GridSampler({p.key: list(p.choices) for p in settings.space}, seed)
    total = settings.trials or DEFAULT_TPE_TRIALS
    return optuna.samplers.TPESampler(seed=seed, n_startup_trials=min(10, max(2, total // 3)))


def _check_same_space(study: optuna.Study, space: Sequence[Param]) -> None:
    described = [str(p) for p in space]
    recorded = study.user_attrs.get("space")
    if recorded is None:
        study.set_user_attr("space", described)
    elif recorded != described:
        raise StganError(
            f"study '{study.study_name}' was created with --space {' '.join(recorded)}; "
            "sweep that space again or start another study (--study NAME or a new --logdir)"
        )


def next_step(study: optuna.Study, total: int, grid: list[dict[str, Any]]) -> str:
    """What to do next: "done", "wait" (for others' trials) or "run" a trial.

    For a grid, "run" enqueues the first point no live or finished trial holds.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # dead workers' trials: FAIL, then retried
    trials = study.get_trials(deepcopy=False)
    counted = sum(counts_as_done(t) for t in trials)
    if counted >= total:
        return "done"
    if any(t.state == TrialState.WAITING for t in trials):
        return "run"
    if counted + sum(t.state == TrialState.RUNNING for t in trials) >= total:
        return "wait"
    if grid:
        taken = [t.system_attrs.get("fixed_params", t.params) for t in trials if _holds_point(t)]
        free = [point for point in grid if point not in taken]
        if not free:
            return "wait"
        study.enqueue_trial(free[0])
    return "run"


def counts_as_done(trial: FrozenTrial) -> bool:
    """Finished for good: completed, pruned, or failed by its own settings (not killed)."""
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return trial.state == TrialState.FAIL and "error" in trial.user_attrs


def _holds_point(trial: FrozenTrial) -> bool:
    return counts_as_done(trial) or trial.state in (TrialState.RUNNING, TrialState.WAITING)


def get_trial(study: optuna.Study, number: int) -> FrozenTrial:
    """Trial ``number`` of ``study`` as stored now."""
    return next(t for t in study.get_trials(deepcopy=False) if t.number == number)


def hide_password(url: str) -> str:
    """``url`` with its password, if any, as ``***``."""
    password = _password(url)
    return url.replace(f":{password}@", ":***@") if password else url


def _password(url: str) -> str | None:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).password
    except Exception:  # not a URL SQLAlchemy can parse: nothing to hide
        return None
