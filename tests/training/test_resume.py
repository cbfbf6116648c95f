"""Resume restores everything: weights, evaluator, best.pt and the health monitor's history.

A run interrupted where a checkpoint and an evaluation coincide, then resumed, ends with
the same checkpoint and best.pt as the run left alone; a run killed before its first
checkpoint starts again from step 0; what a killed checkpoint write left is removed.
"""

from __future__ import annotations

import math
import os
import shutil
import subprocess
import sys

import pytest
import torch
import yaml
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from stgan.errors import CheckpointError
from stgan.training.checkpoint import load_checkpoint
from stgan.training.config import load_pipeline
from stgan.training.distributed import Dist
from stgan.training.leftovers import remove_leftovers
from stgan.training.loop import setup, train
from stgan.training.rollback import rollback
from tests.conftest import tiny_pipeline

# a checkpoint and an evaluation at step 3, the last at step 6
EVAL = {"every": 3, "samples": 6, "figures": False}

KILLED_WRITER = """
import os, sys
from stgan.atomic import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_bytes(b"half a checkpoint")
    os.kill(os.getpid(), 9)
"""


@pytest.fixture(scope="module")
def whole(tmp_path_factory):
    """The pipeline, and the run directory of its 6 steps left alone."""
    directory = tmp_path_factory.mktemp("resume")
    config = load_pipeline(tiny_pipeline(directory, eval=EVAL))
    train(config, directory / "whole", device="cpu")
    return config, directory / "whole"


def checkpoints(logdir):
    folder = logdir / "checkpoints"
    return load_checkpoint(folder / "ckpt_00000006.pt"), load_checkpoint(folder / "best.pt")


def assert_same(a, b, where="state"):
    """Equal trees of dicts, lists, tensors and numbers (NaN equal to NaN)."""
    if isinstance(a, dict):
        assert isinstance(b, dict) and a.keys() == b.keys(), where
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif torch.is_tensor(a):
        assert torch.is_tensor(b) and a.dtype == b.dtype and torch.equal(a, b), where
    elif isinstance(a, float) and math.isnan(a):
        assert isinstance(b, float) and math.isnan(b), where
    else:
        assert a == b, where


def kill_a_checkpoint_write(path):
    """A process killed while writing ``path`` atomically (its temporary stays)."""
    subprocess.run([sys.executable, "-c", KILLED_WRITER, str(path)], check=False)


def test_resume_where_checkpoint_and_evaluation_coincide_equals_the_run_left_alone(whole, tmp_path):
    config, alone = whole
    split = tmp_path / "split"
    train(config, split, device="cpu", max_steps=3)
    at_3 = load_checkpoint(split / "checkpoints" / "ckpt_00000003.pt")
    assert at_3["evaluator"]["best_step"] == 3  # step 3's evaluation is in its checkpoint
    assert at_3["health"]["monitor"]["best_score"] == at_3["evaluator"]["best"]
    train(config, split, device="cpu", resume=True)
    (last, best), (last_alone, best_alone) = checkpoints(split), checkpoints(alone)
    for part in ("G", "D", "EMA", "evaluator"):
        assert_same(last[part], last_alone[part], part)
    assert_same(last["health"]["monitor"], last_alone["health"]["monitor"], "monitor")
    assert_same(last, last_alone, "ckpt_00000006.pt")
    assert_same(best, best_alone, "best.pt")
    assert best["evaluation"]["step"] == last["evaluator"]["best_step"]


def test_a_run_killed_before_its_first_checkpoint_resumes_from_step_0(whole, tmp_path, capsys):
    config, alone = whole
    logdir = tmp_path / "killed"
    train(config, logdir, device="cpu", max_steps=2)  # logs, config.yaml, transforms.json
    shutil.rmtree(logdir / "checkpoints")  # killed before its first checkpoint ...
    (logdir / "checkpoints").mkdir()
    kill_a_checkpoint_write(logdir / "checkpoints" / "ckpt_00000003.pt")  # ... while writing it
    (logdir / "checkpoints" / "notes.tmp").write_text("not stgan's")
    capsys.readouterr()
    train(config, logdir, device="cpu", resume=True)
    err = capsys.readouterr().err
    assert f"stgan: --resume: no checkpoint in {logdir} yet; starting from step 0" in err
    assert "removed 1 temporary file(s) of a killed write: checkpoints/.ckpt_00000003.pt." in err
    assert sorted(p.name for p in (logdir / "checkpoints").iterdir()) == [
        "best.pt",
        "ckpt_00000003.pt",
        "ckpt_00000006.pt",
        "notes.tmp",
    ]
    for mine, its in zip(checkpoints(logdir), checkpoints(alone)):
        assert_same(mine, its)
    events = EventAccumulator(str(logdir), size_guidance={"scalars": 0}).Reload()
    assert [e.step for e in events.Scalars("Loss/G")] == [1, 2, 3, 4, 5, 6]  # killed steps purged


def test_resume_from_step_0_refuses_another_pipelines_config(whole, tmp_path):
    config, _ = whole
    logdir = tmp_path / "other"
    logdir.mkdir()
    raw = yaml.safe_load((whole[1] / "config.yaml").read_text())
    raw["model"]["generator"]["latent_dim"] = 8
    raw["train"]["steps"] = 100  # may change on resume
    (logdir / "config.yaml").write_text(yaml.safe_dump(raw))
    with pytest.raises(
        CheckpointError, match=r"config.yaml differs .* in: model.generator.latent_dim;"
    ):
        train(config, logdir, device="cpu", resume=True)
    assert not (logdir / "checkpoints").exists()


def test_resume_refuses_checkpoints_of_which_none_loads(whole, tmp_path):
    config, _ = whole
    (tmp_path / "r" / "checkpoints").mkdir(parents=True)
    (tmp_path / "r" / "checkpoints" / "ckpt_00000003.pt").write_bytes(b"garbage")
    with (
        pytest.warns(UserWarning, match="skipping ckpt_00000003.pt"),
        pytest.raises(CheckpointError, match="no valid checkpoint .* move them away"),
    ):
        train(config, tmp_path / "r", device="cpu", resume=True)


def test_only_temporaries_of_exited_atomic_writers_are_removed(tmp_path):
    folder = tmp_path / "checkpoints"
    folder.mkdir()
    kill_a_checkpoint_write(folder / "ckpt_00000009.pt")
    kill_a_checkpoint_write(tmp_path / "config.yaml")
    dead = sorted(p.name for p in (*folder.iterdir(), *tmp_path.glob(".*")))
    kept = [
        tmp_path / f".report.json.{os.getpid()}.abcd1234.tmp",  # a live writer's (this one)
        tmp_path / ".report.json.tmp",  # hidden, .tmp, but not the atomic writer's pattern
        tmp_path / ".a.x.abcd1234.tmp",  # no process id
        tmp_path / "run.tmp",
        folder / "ckpt_00000003.pt",
    ]
    for path in kept:
        path.write_text("keep")
    removed = remove_leftovers(tmp_path)
    assert sorted(p.name for p in removed) == dead and len(dead) == 2
    assert all(path.exists() for path in kept)
    assert not any(path.exists() for path in removed)


def test_a_rollback_keeps_the_evaluators_best(tmp_path):
    """best.pt stays on disk through a rollback, so the score it must beat stays too."""
    config = load_pipeline(tiny_pipeline(tmp_path, eval=EVAL))
    run = setup(config, tmp_path / "r", torch.device("cpu"), Dist(), resume=False)
    try:
        run.step, evaluator = 5, run.observers.evaluator
        evaluator.best, evaluator.best_step = 0.5, 4
        rollback(run)  # to the state at step 0, whose evaluator had no best yet
        assert (run.step, evaluator.best, evaluator.best_step) == (0, 0.5, 4)
    finally:
        run.logger.close()
