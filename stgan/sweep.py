"""Hyperparameter sweeps on Optuna: a search space, trials that train and prune, a ranking.

Each trial trains the pipeline with its sampled ``key=value`` overrides in
``<logdir>/trial_<number:04d>`` and reports the *selection value* at every in-training
evaluation; ``MedianPruner`` stops a trial whose value lags the median of the completed
trials. The study lives in an SQLAlchemy storage (SQLite in the logdir by default) with
heartbeats, so a killed sweep resumes: its running trial goes stale and is retried with
the same settings, continuing from its last checkpoint.

The selection value is the mean, over the ``eval.criterion`` metrics, of each metric
(averaged over variables) divided by its *floor*, the same metric for real data
against real data. ``Evaluation.score`` cannot rank trials: it divides by each trial's
own first evaluation, so it says how much a trial improved, not how good it is. Raw
metrics can, but their mean mixes units (dB, kelvin, a correlation) and is dominated by
the largest. The floor does not depend on the model, so dividing by it gives unitless
numbers on one scale across trials: 1.0 is as close to the real data as real data
itself, lower is better.
"""

from __future__ import annotations

import itertools
import json
import math
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import optuna
import yaml
from optuna.trial import FrozenTrial, TrialState

from stgan.atomic import write_text_atomic
from stgan.errors import SpecError, StganError, TrainingStopped, reason
from stgan.training.config import PipelineConfig, apply_overrides, load_pipeline

Sampler = Literal["tpe", "grid"]

# Learning rates are scale parameters: sampled log-uniformly unless told ``:linear``.
LOG_KEYS = ("lr", "lr_g", "lr_d")
LOG_SPAN = 100  # a range spanning two decades or more is sampled log-uniformly too
DEFAULT_TPE_TRIALS = 20
# Pruning: a trial is judged from its second evaluation on (the first comes after only
# eval.every steps, when a slow starter such as a low learning rate still looks like a bad
# one), against the median of at least two completed trials (the median of one trial is
# just that trial). A non-finite value is pruned at once.
PRUNE_STARTUP_TRIALS = 2
PRUNE_AFTER_EVALUATIONS = 2
EVALUATIONS_PER_TRIAL = 4  # eval.every = steps // 4 where the pipeline would judge too rarely
MAX_RETRIES = 3  # a trial whose process died is retried this often, then left failed


@dataclass(frozen=True)
class Param:
    """One swept config key: a numeric range (linear or log) or a list of choices."""

    key: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    choices: tuple[Any, ...] = ()

    @property
    def is_range(self) -> bool:
        return not self.choices

    def suggest(self, trial: optuna.Trial) -> Any:
        """The value of this key for ``trial`` (drawn by its sampler, or fixed by a retry)."""
        if self.choices:
            return trial.suggest_categorical(self.key, list(self.choices))
        if isinstance(self.low, int) and isinstance(self.high, int):
            return trial.suggest_int(self.key, self.low, self.high, log=self.log)
        return trial.suggest_float(self.key, self.low, self.high, log=self.log)

    def probes(self) -> tuple[Any, ...]:
        """Values to validate the config with: every choice, or both ends of the range."""
        return self.choices or (self.low, self.high)

    def __str__(self) -> str:
        if self.choices:
            return f"{self.key}={','.join(format_value(v) for v in self.choices)}"
        scale = "log" if self.log else "linear"
        return f"{self.key}={format_value(self.low)}:{format_value(self.high)}:{scale}"


def parse_space(items: Iterable[str]) -> tuple[Param, ...]:
    """Parse ``--space`` items; see :func:`parse_param`. Each key may appear once."""
    space = tuple(parse_param(item) for item in items)
    keys = [p.key for p in space]
    repeated = sorted({k for k in keys if keys.count(k) > 1})
    if repeated:
        raise SpecError(f"--space {repeated[0]}: given twice; give each key once")
    if not space:
        raise SpecError("--space: nothing to sweep; give at least one, e.g. optim.lr_g=1e-5:1e-3")
    return space


def parse_param(item: str) -> Param:
    """Parse one ``--space`` item.

    ``key=lo:hi`` is a uniform range, integer when both bounds are integers;
    ``key=lo:hi:log`` or ``:linear`` sets the scale, which otherwise is log when lo > 0
    and the key is a learning rate (``lr``, ``lr_g``, ``lr_d``) or hi / lo >= 100;
    ``key=a,b,c`` lists choices, each read as YAML like ``--set`` values.
    """
    key, sep, text = item.partition("=")
    key, text = key.strip(), text.strip()
    if not sep or not key or not text:
        raise SpecError(
            f"--space {item!r}: expected key=lo:hi, key=lo:hi:log or key=a,b,c, "
            "e.g. optim.lr_g=1e-5:1e-3"
        )
    if "," in text:
        return Param(key, choices=_parse_choices(item, text))
    if ":" in text:
        return _parse_range(item, key, text)
    return Param(key, choices=_parse_choices(item, text))


def _parse_choices(item: str, text: str) -> tuple[Any, ...]:
    pieces = [piece.strip() for piece in text.split(",")]
    if not all(pieces):
        raise SpecError(f"--space {item!r}: empty choice; separate values by single commas")
    values = tuple(parse_value(piece) for piece in pieces)
    for value in values:
        if value is not None and not isinstance(value, bool | int | float | str):
            raise SpecError(
                f"--space {item!r}: choice {value!r} is not a number, string or boolean; "
                "list plain values"
            )
    if len(set(map(repr, values))) < len(values):
        raise SpecError(f"--space {item!r}: a choice is listed twice; list each value once")
    return values


def _parse_range(item: str, key: str, text: str) -> Param:
    parts = [part.strip() for part in text.split(":")]
    if len(parts) not in (2, 3):
        raise SpecError(f"--space {item!r}: malformed range; expected lo:hi or lo:hi:log")
    low, high = parse_value(parts[0]), parse_value(parts[1])
    if not all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high)):
        raise SpecError(f"--space {item!r}: malformed range; lo and hi must be numbers")
    if not (math.isfinite(low) and math.isfinite(high)) or low >= high:
        raise SpecError(f"--space {item!r}: lo {low} must be below hi {high}")
    scale = parts[2] if len(parts) == 3 else None
    if scale not in (None, "log", "linear"):
        raise SpecError(f"--space {item!r}: scale {scale!r} is not allowed; use log or linear")
    log = scale == "log" or (scale is None and _log_by_default(key, low, high))
    if log and low <= 0:
        raise SpecError(f"--space {item!r}: a log range needs lo > 0; use :linear or raise lo")
    if not (isinstance(low, int) and isinstance(high, int)):
        low, high = float(low), float(high)
    return Param(key, low=low, high=high, log=log)


def _log_by_default(key: str, low: float, high: float) -> bool:
    return low > 0 and (key.rsplit(".", 1)[-1] in LOG_KEYS or high / low >= LOG_SPAN)


def parse_value(text: str) -> Any:
    """Read one value exactly as ``--set key=value`` reads it (YAML, 2e-4 as a float)."""
    try:
        return apply_overrides({}, (f"value={text}",))["value"]
    except yaml.YAMLError:
        raise SpecError(f"--space value {text!r}: not valid YAML; quote it or fix it") from None


def format_value(value: Any) -> str:
    """The ``--set`` text that :func:`parse_value` reads back as ``value``."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)


def overrides(params: Mapping[str, Any]) -> tuple[str, ...]:
    """``key=value`` overrides for ``load_pipeline`` (and ``--set``)."""
    return tuple(f"{key}={format_value(value)}" for key, value in params.items())


def set_line(params: Mapping[str, Any]) -> str:
    """``--set key=value --set ...``, ready to paste after ``stgan train``."""
    return " ".join(f"--set {item}" for item in overrides(params))


# -- the selection value -------------------------------------------------------------------


def selection_value(
    scalars: Mapping[str, float], criterion: Sequence[str], variables: Sequence[str]
) -> float:
    """Mean over ``criterion`` metrics of (mean over variables of metric / floor).

    Reads ``Metrics/<var>/<metric>`` and ``Floor/<var>/<metric>`` from an evaluation's
    scalars; lower is better and 1.0 is the real-vs-real level. A metric whose floor is
    missing or 0 counts by its raw value; one the generator left undefined (missing
    while its floor exists) makes the value infinite, so the trial is pruned.
    """
    means = []
    for metric in criterion:
        ratios = []
        for variable in variables:
            value = scalars.get(f"Metrics/{variable}/{metric}", math.nan)
            floor = scalars.get(f"Floor/{variable}/{metric}", math.nan)
            if not math.isfinite(value):
                if math.isfinite(floor):
                    return math.inf
                continue  # undefined for the real data too: not a criterion here
            ratios.append(value / floor if math.isfinite(floor) and floor > 0 else value)
        if ratios:
            means.append(sum(ratios) / len(ratios))
    return sum(means) / len(means) if means else math.inf


# -- the sweep -----------------------------------------------------------------------------


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


@dataclass
class TrialSummary:
    """One trial as the ranking shows it."""

    number: int
    state: str
    value: float | None
    params: dict[str, Any]
    steps: int | None
    logdir: str | None
    metrics: dict[str, float] = field(default_factory=dict)
    health: list[str] = field(default_factory=list)  # "step N: ..." events
    error: str | None = None  # why it failed
    stopped: str | None = None  # why a health check stopped it


@dataclass
class SweepResult:
    study: str
    storage: str
    trials: list[TrialSummary]  # ranked: completed by value, then pruned, failed, unfinished
    criterion: tuple[str, ...]

    @property
    def best(self) -> TrialSummary | None:
        done = [t for t in self.trials if t.state == "COMPLETE"]
        return done[0] if done else None

    def to_dict(self) -> dict:
        best = self.best
        return {
            "study": self.study,
            "storage": self.storage,
            "selection": "mean over eval.criterion of metric / floor (lower is better)",
            "criterion": list(self.criterion),
            "best": None if best is None else {**asdict(best), "set": set_line(best.params)},
            "trials": [asdict(t) for t in self.trials],
        }


def _quiet(line: str) -> None:
    """The default ``notify``: say nothing."""


class TrialFailed(Exception):
    """A trial failed by its own settings, data or numerics: recorded, and the sweep goes on."""


def run_sweep(settings: SweepSettings, notify: Callable[[str], None] = _quiet) -> SweepResult:
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
    objective = Objective(settings, shared, base, notify)
    grid = list(grid_points(settings.space)) if settings.sampler == "grid" else []
    waiting = False
    while (step := _next_step(study, total, grid)) != "done":
        if step == "wait":  # only other workers' trials, or dead ones not yet stale, are left
            if not waiting:
                notify(f"waiting for running trials (dead ones: {2 * settings.heartbeat} s)")
            waiting = True
            time.sleep(settings.heartbeat)
            continue
        waiting = False
        study.optimize(objective, n_trials=1, catch=(TrialFailed,), gc_after_trial=True)
        if objective.last is not None:
            notify(format_trial(summarize(_trial(study, objective.last))))
        write_results(settings.logdir, results(study, settings, base))
    result = results(study, settings, base)
    write_results(settings.logdir, result)
    return result


def _trial(study: optuna.Study, number: int) -> FrozenTrial:
    return next(t for t in study.get_trials(deepcopy=False) if t.number == number)


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
    settings: SweepSettings, notify: Callable[[str], None] = _quiet
) -> tuple[str, ...]:
    """The user's ``--set`` plus ``train.steps`` and, where needed, ``eval.every``.

    Pruning needs evaluations, and saves time only from the third one on: unless the user
    sets ``eval.every``, a pipeline that would evaluate a trial fewer than three times
    gets ``steps // 4``.
    """
    fixed = settings.fixed
    if settings.steps is not None:
        fixed = (*fixed, f"train.steps={settings.steps}")
    if any(item.partition("=")[0].strip() == "eval.every" for item in settings.fixed):
        return fixed
    config = load_pipeline(settings.pipeline, fixed)
    steps, every = config.train.steps, config.eval.every
    if every and steps // every > PRUNE_AFTER_EVALUATIONS:
        return fixed
    every = max(1, steps // EVALUATIONS_PER_TRIAL)
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


def grid_points(space: Sequence[Param]) -> Iterable[dict[str, Any]]:
    """Every combination of the choices, in the order listed (the first key slowest)."""
    for values in itertools.product(*(p.choices for p in space)):
        yield dict(zip((p.key for p in space), values))


def storage_url(settings: SweepSettings) -> str:
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
                f"--storage {_hide_password(url)}: cannot open ({cause}); "
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
        # Grid points are enqueued in the listed order (``_next_step``); the sampler
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


def _next_step(study: optuna.Study, total: int, grid: list[dict[str, Any]]) -> str:
    """What to do next: "done", "wait" (for others' trials) or "run" a trial.

    For a grid, "run" enqueues the first point no live or finished trial holds.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # dead workers' trials: FAIL, then retried
    trials = study.get_trials(deepcopy=False)
    counted = sum(_counts(t) for t in trials)
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


def _counts(trial: FrozenTrial) -> bool:
    """Finished for good: completed, pruned, or failed by its own settings (not killed)."""
    if trial.state in (TrialState.COMPLETE, TrialState.PRUNED):
        return True
    return trial.state == TrialState.FAIL and "error" in trial.user_attrs


def _holds_point(trial: FrozenTrial) -> bool:
    return _counts(trial) or trial.state in (TrialState.RUNNING, TrialState.WAITING)


class Objective:
    """Trains one trial; reports its selection value at each evaluation, prunes on request."""

    def __init__(
        self,
        settings: SweepSettings,
        shared: tuple[str, ...],
        base: PipelineConfig,
        notify: Callable[[str], None] = _quiet,
    ) -> None:
        self.settings = settings
        self.shared = shared
        self.notify = notify
        self.criterion = base.eval.criterion
        self.variables = tuple(base.spec.variable_names)
        self.last: int | None = None  # the number of the trial run last

    def __call__(self, trial: optuna.Trial) -> float:
        from stgan.training.loop import train

        self.last = trial.number
        params = {p.key: p.suggest(trial) for p in self.settings.space}
        logdir, resume = self._logdir(trial)
        trial.set_user_attr("logdir", str(logdir))
        again = f", resumed in {logdir}" if resume else ""
        self.notify(f"trial {trial.number}: {' '.join(overrides(params))}{again}")
        reporter = Reporter(trial, self.criterion, self.variables)
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
        value = reporter.value if reporter.value is not None else _last_reported(trial)
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
    """The ``on_evaluation`` hook of one trial: report, record, prune."""

    def __init__(
        self, trial: optuna.Trial, criterion: Sequence[str], variables: Sequence[str]
    ) -> None:
        self.trial = trial
        self.criterion = criterion
        self.variables = variables
        self.value: float | None = None

    def __call__(self, run, evaluation) -> None:
        value = selection_value(evaluation.scalars, self.criterion, self.variables)
        self.value = value
        metrics = {k: v for k, v in evaluation.scalars.items() if k.startswith("Metrics/")}
        self.trial.set_user_attr("metrics", metrics)
        self.trial.set_user_attr("steps", evaluation.step)
        if run.logger:
            run.logger.scalars({"Sweep/value": value}, evaluation.step)
        with warnings.catch_warnings():
            # a retried trial inherits its killed try's values and reports those steps again
            warnings.filterwarnings("ignore", "The reported value is ignored", UserWarning)
            self.trial.report(value, evaluation.step)
        if not math.isfinite(value):
            raise optuna.TrialPruned(f"selection value {value} at step {evaluation.step}")
        if self.trial.should_prune():
            raise optuna.TrialPruned(
                f"selection value {value:.4g} at step {evaluation.step} lags the median"
            )


def crash_message(exc: BaseException) -> str:
    """``Type: message (in file:line)`` on one line, naming the innermost stgan frame."""
    text = " ".join(str(exc).split()) or "no message"
    frames = traceback.extract_tb(exc.__traceback__)
    package = str(Path(__file__).parent)
    frames = [f for f in frames if f.filename.startswith(package)] or frames
    where = f" (in {frames[-1].filename}:{frames[-1].lineno})" if frames else ""
    return f"{type(exc).__name__}: {text}{where}"


def _last_reported(trial: optuna.Trial) -> float | None:
    """The value a resumed trial inherited from its dead run's last evaluation, if any."""
    frozen = _trial(trial.study, trial.number)
    return None if frozen.last_step is None else frozen.intermediate_values[frozen.last_step]


HEALTH_TAG = "Health/events/text_summary"  # the loop's add_text("Health/events", ...)


def health_events(logdir: Path) -> list[str]:
    """The health events of a run, ``"step N: what happened; try ..."``, from its events."""
    from tensorboard.backend.event_processing import event_accumulator as ea

    if not any(Path(logdir).glob("events.out.tfevents.*")):
        return []
    guidance = {ea.SCALARS: 1, ea.IMAGES: 1, ea.HISTOGRAMS: 1, ea.TENSORS: 0, ea.AUDIO: 1}
    events = ea.EventAccumulator(str(logdir), size_guidance=guidance)
    events.Reload()
    if HEALTH_TAG not in events.Tags()["tensors"]:
        return []
    texts = sorted(events.Tensors(HEALTH_TAG), key=lambda e: e.step)
    return [value.decode() for e in texts for value in e.tensor_proto.string_val]


# -- results -------------------------------------------------------------------------------

_STATE_ORDER = {"COMPLETE": 0, "PRUNED": 1, "FAIL": 2, "RUNNING": 3, "WAITING": 4}


def summarize(trial: FrozenTrial) -> TrialSummary:
    attrs = trial.user_attrs
    steps = attrs.get("steps", trial.last_step)
    return TrialSummary(
        number=trial.number,
        state=trial.state.name,
        value=trial.value,
        params=dict(trial.params),
        steps=None if steps is None else int(steps),
        logdir=attrs.get("logdir"),
        metrics=dict(attrs.get("metrics", {})),
        health=list(attrs.get("health", [])),
        error=attrs.get("error"),
        stopped=attrs.get("stopped"),
    )


def rank(trials: Iterable[TrialSummary]) -> list[TrialSummary]:
    """Completed by value, then pruned (by their last value), failed, unfinished."""

    def key(t: TrialSummary) -> tuple:
        value = t.value if t.value is not None and math.isfinite(t.value) else math.inf
        return (_STATE_ORDER.get(t.state, 5), value, t.number)

    return sorted(trials, key=key)


def results(study: optuna.Study, settings: SweepSettings, base: PipelineConfig) -> SweepResult:
    trials = study.get_trials(deepcopy=False)
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", ())}
    # A dead trial that a retry replaced would repeat the retry's row.
    trials = [t for t in trials if t.number not in retried or _counts(t)]
    return SweepResult(
        study=study.study_name,
        storage=_hide_password(storage_url(settings)),
        trials=rank(summarize(t) for t in trials),
        criterion=tuple(base.eval.criterion),
    )


def write_results(logdir: Path, result: SweepResult) -> None:
    """``<logdir>/sweep.json``, written atomically."""
    text = json.dumps(_finite(result.to_dict()), indent=2, default=str, allow_nan=False)
    write_text_atomic(Path(logdir) / "sweep.json", text + "\n")


def _finite(value: Any) -> Any:
    """JSON has no NaN or Infinity: they become null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value


def format_table(result: SweepResult) -> str:
    """The ranked trials as a text table."""
    header = f"{'rank':>4}  {'trial':>5}  {'state':<8}  {'value':>9}  {'steps':>6}  params"
    lines = [header]
    for i, t in enumerate(result.trials, 1):
        value = "-" if t.value is None else f"{t.value:.4g}"
        steps = "-" if t.steps is None else str(t.steps)
        params = " ".join(f"{k}={_short(v)}" for k, v in t.params.items())
        note = f"  ({t.error or t.stopped})" if t.error or t.stopped else ""
        lines.append(f"{i:>4}  {t.number:>5}  {t.state:<8}  {value:>9}  {steps:>6}  {params}{note}")
    return "\n".join(lines)


def _short(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else format_value(value)


def format_trial(t: TrialSummary) -> str:
    """One line for a finished trial."""
    value = "" if t.value is None else f" value {t.value:.4g}"
    steps = "" if t.steps is None else f" at step {t.steps}"
    health = "".join(f"\n  health: {event.split('; try ')[0]}" for event in t.health)
    error = f": {t.error or t.stopped}" if t.error or t.stopped else ""
    return f"trial {t.number} {t.state}{value}{steps}{error}{health}"


def _hide_password(url: str) -> str:
    password = _password(url)
    return url.replace(f":{password}@", ":***@") if password else url


def _password(url: str) -> str | None:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).password
    except Exception:  # not a URL SQLAlchemy can parse: nothing to hide
        return None
