"""``run_sweep``: trials until the study holds enough finished ones, then the ranking."""

from __future__ import annotations

import time
from collections.abc import Callable

from stgan.sweep.objective import Objective, TrialFailed
from stgan.sweep.results import SweepResult, format_trial, results, summarize, write_results
from stgan.sweep.settings import (
    SweepSettings,
    check_settings,
    quiet,
    shared_overrides,
    validate_space,
)
from stgan.sweep.space import grid_points
from stgan.sweep.storage import get_trial, next_step, open_study


def run_sweep(settings: SweepSettings, notify: Callable[[str], None] = quiet) -> SweepResult:
    """Run trials until the study holds ``settings.trials`` finished ones; rank them.

    Validates the space against the pipeline before any trial runs. Trials already in
    the study (an earlier or concurrent ``stgan sweep``) count; a trial whose process
    died is retried once its heartbeat is stale. ``notify`` gets one line per trial
    started and finished. Writes ``<logdir>/sweep.json`` after each trial.
    """
    total = check_settings(settings)
    shared = shared_overrides(settings, notify)
    base = validate_space(settings, shared)
    settings.logdir.mkdir(parents=True, exist_ok=True)
    study = open_study(settings, base)
    objective = Objective(settings, shared, notify)
    grid = list(grid_points(settings.space)) if settings.sampler == "grid" else []
    waiting = False
    while (step := next_step(study, total, grid)) != "done":
        if step == "wait":  # only other workers' trials, or dead ones not yet stale, are left
            if not waiting:
                notify(f"waiting for running trials (dead ones: {2 * settings.heartbeat} s)")
            waiting = True
            time.sleep(settings.heartbeat)
            continue
        waiting = False
        study.optimize(objective, n_trials=1, catch=(TrialFailed,), gc_after_trial=True)
        if objective.last is not None:
            notify(format_trial(summarize(get_trial(study, objective.last))))
        write_results(settings.logdir, results(study, settings, base))
    result = results(study, settings, base)
    write_results(settings.logdir, result)
    return result
