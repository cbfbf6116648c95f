"""One trial: train with its sampled settings, report each evaluation's score to Optuna,
prune on request, and record why a trial stopped or crashed."""

from __future__ import annotations

import math
import traceback
import warnings
from collections.abc import Callable
from pathlib import Path

import optuna

from stgan.errors import StganError, TrainingStopped
from stgan.sweep.settings import SweepSettings, quiet
from stgan.sweep.space import overrides
from stgan.sweep.storage import get_trial
from stgan.training.config import load_pipeline
from stgan.training.health_log import read_health_log


class TrialFailed(Exception):
    """A trial failed by its own settings, data or numerics: recorded, and the sweep goes on."""


class Objective:
    """Trains one trial; its value is the run's best evaluation score (lower is better)."""

    def __init__(
        self,
        settings: SweepSettings,
        shared: tuple[str, ...],
        notify: Callable[[str], None] = quiet,
    ) -> None:
        self.settings = settings
        self.shared = shared
        self.notify = notify
        self.last: int | None = None  # the number of the trial run last

    def __call__(self, trial: optuna.Trial) -> float:
        from stgan.training.loop import train

        self.last = trial.number
        params = {p.key: p.suggest(trial) for p in self.settings.space}
        logdir, resume = self._logdir(trial)
        trial.set_user_attr("logdir", str(logdir))
        again = f", resumed in {logdir}" if resume else ""
        self.notify(f"trial {trial.number}: {' '.join(overrides(params))}{again}")
        reporter = Reporter(trial)
        try:
            config = load_pipeline(self.settings.pipeline, (*self.shared, *overrides(params)))
            hparams = {"sweep.trial": trial.number, **params}
            train(
                config,
                logdir,
                device=self.settings.device,
                resume=resume,
                on_evaluation=reporter,
                hparams=hparams,
            )
        except optuna.TrialPruned:  # the reporter's verdict, for Optuna to record
            raise
        except TrainingStopped as exc:  # a health check's "stop": a bad trial, pruned
            trial.set_user_attr("stopped", str(exc))
            raise optuna.TrialPruned(str(exc)) from exc
        except StganError as exc:
            trial.set_user_attr("error", str(exc))
            raise TrialFailed(str(exc)) from exc
        except Exception as exc:  # e.g. numerics of a diverged G; the sweep goes on
            trial.set_user_attr("error", crash_message(exc))
            raise TrialFailed(crash_message(exc)) from exc
        finally:
            events = health_events(logdir)
            if events:
                trial.set_user_attr("health", events)
        trial.set_user_attr("steps", config.train.steps)
        value = best_reported(trial)
        if value is None:
            message = "no evaluation ran; set eval.every below train.steps"
            trial.set_user_attr("error", message)
            raise TrialFailed(message)
        return value

    def _logdir(self, trial: optuna.Trial) -> tuple[Path, bool]:
        """A retried trial continues in the dead one's directory, from its last checkpoint."""
        from stgan.training.checkpoint import load_latest

        inherited = trial.user_attrs.get("logdir")
        if inherited:
            return Path(inherited), load_latest(Path(inherited) / "checkpoints") is not None
        logdir = self.settings.logdir / f"trial_{trial.number:04d}"
        if logdir.exists():
            raise StganError(
                f"{logdir} already exists but study trial {trial.number} is new; give each "
                "study its own --logdir, or remove the old trial directories"
            )
        return logdir, False


class Reporter:
    """The ``on_evaluation`` hook of one trial: report each evaluation's score, record the
    best one's metrics, prune."""

    def __init__(self, trial: optuna.Trial) -> None:
        self.trial = trial
        self.best = math.inf  # the lowest finite score so far

    def __call__(self, run, evaluation) -> None:
        score, step = float(evaluation.score), evaluation.step
        if score < self.best:
            self.best = score
            metrics = {k: v for k, v in evaluation.scalars.items() if k.startswith("Metrics/")}
            self.trial.set_user_attr("metrics", metrics)
        self.trial.set_user_attr("steps", step)
        if run.logger and math.isfinite(self.best):
            run.logger.scalars({"Sweep/value": self.best}, step)  # the trial's value so far
        with warnings.catch_warnings():
            # a retried trial inherits its killed try's values and reports those steps again
            warnings.filterwarnings("ignore", "The reported value is ignored", UserWarning)
            self.trial.report(score, step)
        if not math.isfinite(score):
            raise optuna.TrialPruned(f"score {score} at step {step}")
        if self.trial.should_prune():
            raise optuna.TrialPruned(f"score {score:.4g} at step {step} lags the median")


def crash_message(exc: BaseException) -> str:
    """``Type: message (in file:line)`` on one line, naming the innermost stgan frame."""
    text = " ".join(str(exc).split()) or "no message"
    frames = traceback.extract_tb(exc.__traceback__)
    package = str(Path(__file__).parents[1])  # stgan/
    frames = [f for f in frames if f.filename.startswith(package)] or frames
    where = f" (in {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {text}{where}"


def best_reported(trial: optuna.Trial) -> float | None:
    """The lowest finite score the trial reported, counting those a retried trial inherited
    from its dead try; None before any."""
    reported = get_trial(trial.study, trial.number).intermediate_values.values()
    return min((v for v in reported if math.isfinite(v)), default=None)


def health_events(logdir: Path) -> list[str]:
    """The health events of a run from its health.jsonl, ``"step N: what; try ..."``."""
    return [f"step {e['step']}: {e['message']}" for e in read_health_log(logdir)]
