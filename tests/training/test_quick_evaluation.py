"""Quick evaluations between the full ones: their steps, their TensorBoard run, no side effects."""

from __future__ import annotations

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from stgan.errors import SpecError
from stgan.logging import QUICK_RUN, VERSION_TAG
from stgan.pipeline import Paths, clear
from stgan.training.checkpoint import load_checkpoint
from stgan.training.config import load_pipeline
from stgan.training.loop import train
from tests.conftest import tiny_pipeline

# full evaluations at 3 and 6; quick ones at every step in between
EVAL = {"every": 3, "samples": 6, "quick_every": 1, "quick_samples": 6, "figures": False}
QUICK_STEPS = [1, 2, 4, 5]
STREAMING = ("acf_error", "lsd_db", "wasserstein1", "increment_w1")


def _scalars(logdir):
    events = EventAccumulator(str(logdir), size_guidance={"scalars": 0})
    events.Reload()
    return {
        tag: [(s.step, s.value) for s in events.Scalars(tag)] for tag in events.Tags()["scalars"]
    }


def _train(directory, **eval_section):
    config = load_pipeline(tiny_pipeline(directory, eval={**EVAL, **eval_section}))
    seen = []
    train(config, directory / "run", device="cpu", on_evaluation=lambda run, e: seen.append(e))
    return directory / "run", seen


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same training with quick evaluations and without."""
    with_quick = _train(tmp_path_factory.mktemp("quick"))
    without = _train(tmp_path_factory.mktemp("full"), quick_every=0)
    return with_quick, without


def test_quick_evaluations_run_between_full_ones_in_their_own_run(runs):
    (logdir, seen), _ = runs
    assert [e.step for e in seen] == [3, 6]  # the full ones, as without quick evaluations
    quick, main = _scalars(logdir / QUICK_RUN), _scalars(logdir)
    for var in ("tas", "pr"):
        for metric in STREAMING:
            for prefix in ("Metrics", "Relative"):
                tag = f"{prefix}/{var}/{metric}"
                assert [step for step, _ in quick[tag]] == QUICK_STEPS
                assert [step for step, _ in main[tag]] == [3, 6]  # same tag, other run
        for metric in ("c2st", "coverage", "recall"):  # whole-sequence: full ones only
            assert f"Metrics/{var}/{metric}" not in quick
    assert "Metrics/score" not in quick
    events = EventAccumulator(str(logdir / QUICK_RUN))
    events.Reload()  # the version record scripts/screenshots.py checks
    assert f"{VERSION_TAG}/text_summary" in events.Tags()["tensors"]
    seconds = main["Perf/quick_eval_seconds"]
    assert [step for step, _ in seconds] == QUICK_STEPS and all(v > 0 for _, v in seconds)


def test_quick_evaluations_change_no_training_state(runs):
    (with_quick, seen), (without, seen_without) = runs
    assert [e.score for e in seen] == [e.score for e in seen_without]
    for name in ("best.pt", "ckpt_00000006.pt"):
        a = load_checkpoint(with_quick / "checkpoints" / name)
        b = load_checkpoint(without / "checkpoints" / name)
        for key in ("evaluator", "health", "evaluation"):  # repr: NaN == NaN
            assert repr(a.get(key)) == repr(b.get(key)), (name, key)
        for key in ("G", "EMA"):  # the RNG streams of training are untouched
            for k, v in a[key].items():
                assert torch.equal(v, b[key][k]), (name, key, k)


def test_a_forced_rerun_clears_the_quick_run(tmp_path):
    (tmp_path / QUICK_RUN).mkdir()
    (tmp_path / QUICK_RUN / "events.out.tfevents.1.host").write_bytes(b"old")
    clear(Paths(tmp_path))  # stgan run --force
    assert not (tmp_path / QUICK_RUN).exists()


def _config(tmp_path, *overrides, **eval_section):
    path = tiny_pipeline(tmp_path, eval=eval_section, train={"steps": 500, "log_every": 10})
    return load_pipeline(path, overrides)


def test_quick_every_is_derived_from_the_full_schedule(tmp_path):
    config = _config(tmp_path, every=250)
    assert config.quick_eval_every == 50  # eval.every // 5, never below train.log_every
    assert sorted(config.quick_eval_steps) == [50, 100, 150, 200, 300, 350, 400, 450]
    assert _config(tmp_path, "train.log_every=100", every=250).quick_eval_every == 100
    assert _config(tmp_path, "train.log_every=250", every=250).quick_eval_every == 0  # no room
    assert _config(tmp_path, every=4).quick_eval_every == 0  # too close to cut
    assert _config(tmp_path, every=0).quick_eval_steps == frozenset()


def test_a_written_quick_every_overrides_the_derived_one(tmp_path):
    config = _config(tmp_path, "eval.quick_every=125", every=250)
    assert sorted(config.quick_eval_steps) == [125, 375]
    assert _config(tmp_path, "eval.quick_every=0", every=250).quick_eval_steps == frozenset()


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (("eval.quick_every=-1",), "eval.quick_every: -1 must be >= 0"),
        (("eval.every=0", "eval.quick_every=10"), "eval.quick_every: 10 needs full evaluations"),
        (("eval.quick_every=600",), "eval.quick_every: 600 is more than train.steps 500"),
        (("eval.quick_samples=2",), "eval.quick_samples: 2 must be >= 6"),
    ],
)
def test_bad_quick_settings_are_one_line_errors(tmp_path, overrides, message):
    with pytest.raises(SpecError, match=message) as error:
        _config(tmp_path, *overrides, every=250)
    assert "\n" not in str(error.value)


def test_a_resumed_run_logs_each_quick_evaluation_once(tmp_path):
    config = load_pipeline(tiny_pipeline(tmp_path, eval=EVAL))
    train(config, tmp_path / "run", device="cpu", max_steps=5)
    (tmp_path / "run" / "checkpoints" / "ckpt_00000005.pt").unlink()  # as if killed after 5
    train(config, tmp_path / "run", device="cpu", resume=True)  # from step 3: 4, 5 again
    steps = [step for step, _ in _scalars(tmp_path / "run" / QUICK_RUN)["Metrics/tas/lsd_db"]]
    assert steps == QUICK_STEPS
