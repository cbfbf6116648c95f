"""Domain metrics during training: logged to TensorBoard, best.pt chosen by them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from stgan.data import prepare
from stgan.metrics.registry import selection_score
from stgan.training.checkpoint import load_checkpoint
from stgan.training.config import load_pipeline
from stgan.training.evaluation import Evaluator
from stgan.training.loop import train
from tests.conftest import tiny_pipeline

EVAL = {"every": 2, "samples": 6}
EVAL_CRITERION = ("acf_error", "lsd_db", "wasserstein1")  # the default


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
    for evaluation in seen:  # the registry's score of the report, which has a floor
        assert "floor" in evaluation.report and math.isfinite(evaluation.score)
        assert evaluation.score == selection_score(evaluation.report, EVAL_CRITERION)
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
        def __init__(self):
            super().__init__()
            self.weight = torch.nn.Parameter(torch.zeros(1))

        def latents(self, batch, frames=None, generator=None, device=None):
            return torch.zeros(batch, 1), torch.zeros(batch, 1)

        def forward(self, z, noise, context=None, calendar=None):
            return torch.zeros(z.shape[0], 4, 2, 8, 8)

    synthetic = evaluator.comparison.masked(evaluator.sample(Constant()))
    for var in ("tas", "pr"):
        real = evaluator.comparison.real.arrays[var]
        assert np.array_equal(np.isnan(synthetic[var]), np.isnan(real))
        assert np.isnan(real[:, :, 0, 0]).all()  # the fixture's missing cell
        train_mean = data.stats[var]["mean"]
        assert np.nanmean(synthetic[var]) == pytest.approx(train_mean, rel=1e-5)


def test_criterion_rejects_unknown_metric(tmp_path):
    from stgan.errors import SpecError

    with pytest.raises(SpecError, match="criterion"):
        load_pipeline(tiny_pipeline(tmp_path, eval={"every": 2, "criterion": ["acf"]}))
