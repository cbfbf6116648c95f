import json
import math
import re
from pathlib import Path

import optuna
import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.hparams import plugin_data_pb2

from stgan.errors import DataError, SpecError, StganError, TrainingStopped
from stgan.sweep import (
    PRUNE_AFTER_EVALUATIONS,
    Param,
    SweepSettings,
    TrialSummary,
    format_value,
    grid_points,
    health_events,
    open_study,
    parse_param,
    parse_space,
    parse_value,
    rank,
    run_sweep,
    set_line,
    shared_overrides,
)
from stgan.training.checkpoint import load_checkpoint
from stgan.training.config import load_pipeline
from stgan.training.health import Event
from stgan.training.health_log import HealthLog
from tests.conftest import tiny_pipeline


def sweep_pipeline(directory):
    """The tiny pipeline, one variable, cheap evaluations at every step, EMA off."""
    return tiny_pipeline(
        directory,
        data={"variables": ["tas"]},
        optim={"warmup_steps": 0, "ema_decay": 0.0},
        train={"steps": 3, "log_every": 1, "hist_every": 100, "ckpt_every": 1},
        eval={"every": 1, "samples": 6, "figures": False},
    )


# -- the space -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "low", "high", "log", "kind"),
    [
        ("optim.lr_g=1e-5:1e-3", 1e-5, 1e-3, True, float),  # a learning rate: log
        ("optim.lr_d=1e-4:4e-4", 1e-4, 4e-4, True, float),
        ("loss.r1_gamma=0.1:10", 0.1, 10.0, True, float),  # two decades: log
        ("loss.r1_gamma=0.5:2", 0.5, 2.0, False, float),
        ("loss.r1_gamma=0.0:10", 0.0, 10.0, False, float),  # lo = 0: linear
        ("optim.lr_g=1e-5:1e-3:linear", 1e-5, 1e-3, False, float),
        ("optim.grad_clip=1:5:log", 1, 5, True, int),
        ("optim.n_critic=1:5", 1, 5, False, int),
        ("optim.n_critic=1:5.0", 1.0, 5.0, False, float),
    ],
)
def test_ranges(item, low, high, log, kind):
    param = parse_param(item)
    assert param.is_range and (param.low, param.high, param.log) == (low, high, log)
    assert type(param.low) is kind and type(param.high) is kind


def test_choices_read_as_set_values():
    param = parse_param("loss.name=hinge, wgan")
    assert param.choices == ("hinge", "wgan")
    assert parse_param("optim.lr_g=2e-4,1e-4").choices == (2e-4, 1e-4)
    assert parse_param("model.discriminator.spectral_norm=true,false").choices == (True, False)
    assert parse_param("train.batch_size=4").choices == (4,)


@pytest.mark.parametrize(
    ("item", "message"),
    [
        ("optim.lr_g", "expected key=lo:hi"),
        ("=1:2", "expected key=lo:hi"),
        ("optim.lr_g=1:2:3:4", "malformed range"),
        ("optim.lr_g=a:b", "lo and hi must be numbers"),
        ("optim.lr_g=1e-3:1e-5", "must be below hi"),
        ("optim.lr_g=2:2", "must be below hi"),
        ("loss.r1_gamma=0:1:log", "a log range needs lo > 0"),
        ("optim.lr_g=1e-5:1e-3:cubic", "use log or linear"),
        ("loss.name=hinge,,wgan", "empty choice"),
        ("loss.name=hinge,hinge", "listed twice"),
        ("train.steps=[1]", "not a number, string or boolean"),
        ("loss.name={a", "not valid YAML"),
    ],
)
def test_bad_items_are_one_line(item, message):
    with pytest.raises(SpecError, match=message) as info:
        parse_param(item)
    assert "\n" not in str(info.value)


def test_space_keys_once():
    with pytest.raises(SpecError, match="given twice"):
        parse_space(["optim.lr_g=1e-5:1e-3", "optim.lr_g=1e-4,2e-4"])


@pytest.mark.parametrize("value", [1e-5, 2e-4, 0.1, 50.0, 3, True, False, None, "hinge"])
def test_format_value_round_trips(value):
    parsed = parse_value(format_value(value))
    assert parsed == value and type(parsed) is type(value)


def test_set_line_reads_back_through_load_pipeline(tmp_path):
    params = {"optim.lr_g": 1.2345678e-05, "loss.name": "wgan", "optim.n_critic": 3}
    line = set_line(params)
    items = tuple(line.replace("--set ", "").split())
    config = load_pipeline(tiny_pipeline(tmp_path), items)
    assert (config.optim.lr_g, config.loss.name, config.optim.n_critic) == tuple(params.values())


def test_grid_points_in_listed_order():
    space = (Param("a", choices=(3, 1)), Param("b", choices=("x", "y", "z")))
    points = list(grid_points(space))
    assert len(points) == 6
    assert points[0] == {"a": 3, "b": "x"} and points[1] == {"a": 3, "b": "y"}
    assert [p["a"] for p in points] == [3, 3, 3, 1, 1, 1]


def test_rank_puts_completed_first_by_value():
    def trial(number, state, value):
        return TrialSummary(number, state, value, {}, 1, None)

    trials = [
        trial(0, "PRUNED", 0.5),
        trial(1, "COMPLETE", 3.0),
        trial(2, "FAIL", None),
        trial(3, "COMPLETE", 2.0),
        trial(4, "RUNNING", None),
        trial(5, "PRUNED", 0.1),
    ]
    assert [t.number for t in rank(trials)] == [3, 1, 5, 0, 2, 4]


def test_health_events_read_back(tmp_path):
    HealthLog(tmp_path).append(
        [
            Event("divergence", 3, 2.0, "rollback", "divergence (NaN/Inf in Loss/G); try x"),
            Event("collapse", 7, 0.1, "warn", "mode collapse"),
        ]
    )
    assert health_events(tmp_path) == [
        "step 3: divergence (NaN/Inf in Loss/G); try x",
        "step 7: mode collapse",
    ]
    assert health_events(tmp_path / "nothing") == []


# -- the study -------------------------------------------------------------------------------


def settings_for(pipeline, logdir, space, **extra):
    return SweepSettings(
        pipeline=pipeline, space=parse_space(space), logdir=logdir, device="cpu", **extra
    )


def test_every_trial_is_judged_several_times(tmp_path):
    pipeline = tiny_pipeline(tmp_path)  # eval.every = 0: no evaluations
    settings = settings_for(pipeline, tmp_path / "s", ["optim.lr_g=1e-4,2e-4"], steps=40)
    notes = []
    shared = shared_overrides(settings, notes.append)
    every = load_pipeline(pipeline, shared).eval.every
    assert every > 0 and 40 // every > PRUNE_AFTER_EVALUATIONS and "eval.every" in notes[0]
    mine = settings_for(
        pipeline, tmp_path / "s", ["optim.lr_g=1e-4,2e-4"], steps=40, fixed=("eval.every=39",)
    )
    assert load_pipeline(pipeline, shared_overrides(mine)).eval.every == 39  # the user's word
    often = sweep_pipeline(tmp_path)  # eval.every = 1 over 3 steps: kept
    assert shared_overrides(settings_for(often, tmp_path / "s", ["optim.lr_g=1e-4"])) == ()


def test_resumed_study_keeps_its_space(tmp_path):
    pipeline = tiny_pipeline(tmp_path)
    first = settings_for(pipeline, tmp_path / "s", ["optim.lr_g=1e-4,2e-4"])
    (tmp_path / "s").mkdir()
    base = load_pipeline(pipeline)
    assert open_study(first, base).study_name == "tiny"
    again = open_study(first, base)  # the same space loads the same study
    assert again.user_attrs["space"] == ["optim.lr_g=0.0001,0.0002"]
    other = settings_for(pipeline, tmp_path / "s", ["optim.lr_d=1e-4,2e-4"])
    with pytest.raises(Exception, match="was created with --space optim.lr_g"):
        open_study(other, base)


def test_grid_with_a_range_is_refused(tmp_path):
    settings = settings_for(
        tiny_pipeline(tmp_path), tmp_path / "s", ["optim.lr_g=1e-5:1e-3"], sampler="grid"
    )
    with pytest.raises(SpecError, match="--sampler grid: optim.lr_g=1e-05:0.001:log is a range"):
        run_sweep(settings)
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    ("error", "state", "field"),
    [
        (TrainingStopped("stopped by the health check at step 2: divergence"), "PRUNED", "stopped"),
        (DataError("data.nc: not found; check the path"), "FAIL", "error"),
        (FloatingPointError("overflow\nin matmul"), "FAIL", "error"),
    ],
)
def test_a_trial_that_stops_or_fails_is_recorded(tmp_path, monkeypatch, error, state, field):
    def train(*args, **kwargs):
        raise error

    monkeypatch.setattr("stgan.training.loop.train", train)
    pipeline = tiny_pipeline(tmp_path)
    result = run_sweep(settings_for(pipeline, tmp_path / "s", ["optim.lr_g=1e-4"], trials=1))
    (trial,) = result.trials  # counted as done: the sweep does not retry it
    message = getattr(trial, field)
    if isinstance(error, StganError):
        assert message == str(error)
    else:  # a crash: its type, its message on one line, the innermost stgan frame
        assert re.fullmatch(
            r"FloatingPointError: overflow in matmul \(in .*stgan/sweep/objective.py:\d+\)", message
        )
    assert trial.state == state
    assert result.best is None


def test_a_trial_directory_from_another_study_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr("stgan.training.loop.train", lambda *a, **k: pytest.fail("trained"))
    (tmp_path / "s" / "trial_0000").mkdir(parents=True)
    settings = settings_for(tiny_pipeline(tmp_path), tmp_path / "s", ["optim.lr_g=1e-4"])
    with pytest.raises(StganError, match="trial_0000 already exists but study trial 0 is new"):
        run_sweep(settings)


@pytest.fixture(scope="module")
def lr_sweep(tmp_path_factory):
    """Three trials over optim.lr_g in grid order; the last one's rate is absurd."""
    directory = tmp_path_factory.mktemp("sweep")
    settings = settings_for(
        sweep_pipeline(directory),
        directory / "s",
        ["optim.lr_g=2e-4,1e-4,50.0"],
        sampler="grid",
    )
    lines = []
    result = run_sweep(settings, notify=lines.append)
    return settings, result, lines


@pytest.mark.slow
def test_sweep_ranks_and_prunes_the_absurd_rate(lr_sweep):
    settings, result, lines = lr_sweep
    by_lr = {t.params["optim.lr_g"]: t for t in result.trials}
    assert set(by_lr) == {2e-4, 1e-4, 50.0}
    absurd = by_lr[50.0]
    assert absurd.state == "PRUNED" and absurd.steps < 3  # stopped before the end
    assert [t.state for t in result.trials[:2]] == ["COMPLETE", "COMPLETE"]
    completed = [t.value for t in result.trials[:2]]
    assert completed == sorted(completed) and result.best is result.trials[0]
    assert absurd.value > max(completed)
    assert any(line.startswith("trial 2 PRUNED") for line in lines)
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{settings.logdir}/study.db")
    for trial in study.trials:  # each completed trial reported at every evaluation
        if trial.state == optuna.trial.TrialState.COMPLETE:
            assert sorted(trial.intermediate_values) == [1, 2, 3]
            assert trial.value == min(trial.intermediate_values.values())


@pytest.mark.slow
def test_a_trials_value_is_its_runs_best_evaluation_score(lr_sweep):
    _, result, _ = lr_sweep
    for trial in result.trials[:2]:  # the completed ones
        best = load_checkpoint(Path(trial.logdir) / "checkpoints" / "best.pt")["evaluation"]
        assert trial.value == pytest.approx(best["score"], rel=1e-12)
        assert trial.metrics["Metrics/score"] == pytest.approx(best["score"], rel=1e-12)


@pytest.mark.slow
def test_sweep_json_matches_the_result(lr_sweep):
    settings, result, _ = lr_sweep
    saved = json.loads((settings.logdir / "sweep.json").read_text())
    assert [t["number"] for t in saved["trials"]] == [t.number for t in result.trials]
    assert saved["best"]["set"] == f"--set optim.lr_g={result.best.params['optim.lr_g']!r}"
    assert saved["best"]["metrics"]["Metrics/tas/acf_error"] > 0


@pytest.mark.slow
def test_trials_appear_in_the_hparams_dashboard(lr_sweep):
    settings, result, _ = lr_sweep
    for trial in result.trials:
        assert trial.logdir == str(settings.logdir / f"trial_{trial.number:04d}")
        events = EventAccumulator(trial.logdir)
        events.Reload()
        content = events.PluginTagToContent("hparams")
        start = plugin_data_pb2.HParamsPluginData.FromString(
            content["_hparams_/session_start_info"]
        ).session_start_info
        assert start.hparams["optim.lr_g"].number_value == pytest.approx(trial.params["optim.lr_g"])
        assert start.hparams["sweep.trial"].number_value == trial.number
        assert trial.health == health_events(Path(trial.logdir))  # kept with the trial
        logged = events.Scalars("Sweep/value")  # the best score so far, at each evaluation
        assert logged[-1].step == trial.steps
        if trial.state == "COMPLETE":  # a pruned trial's value is its last score (Optuna)
            assert logged[-1].value == pytest.approx(trial.value, rel=1e-6)
        scores = [e.value for e in events.Scalars("Metrics/score") if math.isfinite(e.value)]
        assert logged[-1].value == pytest.approx(min(scores), rel=1e-6)


def test_fewer_steps_than_the_pipelines_eval_every_get_their_own_schedule(tmp_path):
    pipeline = tiny_pipeline(tmp_path, train={"steps": 40}, eval={"every": 30, "samples": 6})
    settings = settings_for(pipeline, tmp_path / "s", ["optim.lr_g=1e-4,2e-4"], steps=8)
    shared = shared_overrides(settings)
    assert load_pipeline(pipeline, shared).eval.every == 2  # 8 // 4, where 30 > 8 would fail
