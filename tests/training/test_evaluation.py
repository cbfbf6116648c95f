"""Domain metrics during training: logged to TensorBoard, best.pt chosen by them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from stgan.data import prepare
from stgan.training.checkpoint import load_checkpoint
from stgan.training.config import load_pipeline
from stgan.training.evaluation import Evaluator
from stgan.training.loop import train
from tests.conftest import tiny_pipeline

EVAL = {"every": 2, "samples": 6}


def _events(logdir):
    events = EventAccumulator(str(logdir), size_guidance={"scalars": 0, "images": 0})
    events.Reload()
    return events


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    directory = tmp_path_factory.mktemp("eval")
    config = load_pipeline(tiny_pipeline(directory, eval=EVAL))
    seen = []
    train(config, directory / "run", device="cpu", on_evaluation=lambda run, e: seen.append(e))
    return directory / "run", seen


def test_every_evaluation_is_logged_with_floor_and_score(trained):
    logdir, seen = trained
    assert [e.step for e in seen] == [2, 4, 6]
    assert seen[0].score == pytest.approx(1.0)  # each criterion metric over its own first value
    tags = _events(logdir).Tags()["scalars"]
    for var in ("tas", "pr"):
        for metric in ("acf_error", "lsd_db", "wasserstein1", "ks", "c2st", "coverage"):
            assert f"Metrics/{var}/{metric}" in tags
        assert f"Floor/{var}/wasserstein1" in tags
    score = [s.value for s in _events(logdir).Scalars("Metrics/score")]
    assert score == pytest.approx([e.score for e in seen])


def test_figures_and_layout_reach_tensorboard(trained):
    logdir, _ = trained
    events = _events(logdir)
    images = events.Tags()["images"]
    for kind in ("acf", "psd", "distribution", "frames", "hovmoller"):
        assert f"Figures/tas/{kind}" in images
    assert "custom_scalars__config__" in events.Tags()["tensors"]


def test_best_checkpoint_holds_the_lowest_score(trained):
    logdir, seen = trained
    best = load_checkpoint(logdir / "checkpoints" / "best.pt")
    lowest = min(seen, key=lambda e: e.score)
    assert best["evaluation"]["step"] == lowest.step
    assert best["evaluation"]["score"] == pytest.approx(lowest.score)
    assert best["step"] == lowest.step
    assert "EMA" in best


def test_synthetic_samples_are_in_physical_units_with_the_real_mask(tmp_path):
    config = load_pipeline(tiny_pipeline(tmp_path, eval=EVAL))
    data = prepare(config.spec)
    evaluator = Evaluator(config, data, torch.device("cpu"))

    class Constant(torch.nn.Module):  # emits 0 in normalized units: the train mean
        def latents(self, batch, generator=None):
            return torch.zeros(batch, 1), torch.zeros(batch, 1)

        def forward(self, z, noise, context=None):
            return torch.zeros(z.shape[0], 4, 2, 8, 8)

    synthetic = evaluator.sample(Constant())
    for var in ("tas", "pr"):
        real = evaluator.reference.arrays[var]
        assert np.array_equal(np.isnan(synthetic[var]), np.isnan(real))
        assert np.isnan(real[:, :, 0, 0]).all()  # the fixture's missing cell
        train_mean = data.stats[var]["mean"]
        assert np.nanmean(synthetic[var]) == pytest.approx(train_mean, rel=1e-5)


def test_criterion_rejects_unknown_metric(tmp_path):
    from stgan.errors import SpecError

    with pytest.raises(SpecError, match="criterion"):
        load_pipeline(tiny_pipeline(tmp_path, eval={"every": 2, "criterion": ["acf"]}))


def test_score_is_relative_to_the_first_evaluation(tmp_path):
    config = load_pipeline(tiny_pipeline(tmp_path, eval=EVAL))
    evaluator = Evaluator(config, prepare(config.spec), torch.device("cpu"))
    first = {"Metrics/tas/acf_error": 0.2, "Metrics/pr/acf_error": 0.4}
    first |= {f"Metrics/{v}/{m}": 2.0 for v in ("tas", "pr") for m in ("lsd_db", "wasserstein1")}
    assert evaluator.score(first) == pytest.approx(1.0)
    halved = {k: v / 2 for k, v in first.items()}
    assert evaluator.score(halved) == pytest.approx(0.5)
    assert math.isinf(evaluator.score({}))
