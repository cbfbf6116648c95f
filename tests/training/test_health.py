"""Tests for stgan.training.health: each detector on synthetic series of logged numbers."""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Iterable

import numpy as np
import pytest
import torch

from stgan.config import build
from stgan.errors import SpecError
from stgan.training.health import (
    DETECTORS,
    Event,
    HealthConfig,
    Monitor,
    batch_diversity,
    nonfinite_parameters,
    rank_correlation,
)

LOG_EVERY = 10
# A small config so the series stay short; the defaults are checked by the healthy test.
SMALL = HealthConfig(
    warmup=5, observations=10, median_observations=20, one_way_observations=30, rearm_after=3
)

Values = dict[str, float]


def healthy(i: int, rng: np.random.Generator) -> Values:
    """Observation ``i`` of a healthy run: oscillating losses with noise, D fooled often."""
    return {
        "Loss/D": 1.0 + 0.2 * math.sin(2 * math.pi * i / 37) + 0.05 * rng.standard_normal(),
        "Loss/G": 0.3 + 0.3 * math.sin(2 * math.pi * i / 29 + 1) + 0.05 * rng.standard_normal(),
        "Loss/penalty": 0.0,
        "D/real_score": 0.4 + 0.2 * rng.standard_normal(),
        "D/fake_score": -0.3 + 0.2 * rng.standard_normal(),
        "D/real_acc": float(
            np.clip(0.7 + 0.1 * math.sin(i / 5) + 0.05 * rng.standard_normal(), 0, 1)
        ),
        "D/fake_acc": float(
            np.clip(0.65 + 0.1 * math.sin(i / 7) + 0.05 * rng.standard_normal(), 0, 1)
        ),
        "Grad/G_norm": 2.0 * math.exp(0.3 * rng.standard_normal()),
        "Grad/D_norm": 5.0 * math.exp(0.3 * rng.standard_normal()),
        "Weights/G_norm": 40.0 + 0.01 * i,  # slow drift, as Adam moves the weights
        "Weights/D_norm": 25.0 + 0.01 * i,
        "Health/real_diversity": 1.3 + 0.05 * rng.standard_normal(),
        "Health/fake_diversity": 1.1 + 0.1 * rng.standard_normal(),
        "Health/nonfinite": 0.0,
    }


def run(
    monitor: Monitor,
    n: int,
    change: Callable[[int, Values], Values] = lambda i, v: v,
    start: int = 0,
    seed: int = 0,
) -> list[Event]:
    """Feed observations ``start .. start+n-1`` (healthy, then ``change``d); all events."""
    rng = np.random.default_rng(seed + start)
    events = []
    for i in range(start, start + n):
        events += monitor.observe((i + 1) * LOG_EVERY, change(i, healthy(i, rng)))
    return events


def detectors(events: Iterable[Event]) -> list[str]:
    return [e.detector for e in events]


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_healthy_run_raises_no_event_with_default_thresholds(seed):
    monitor = Monitor(HealthConfig())
    assert run(monitor, 500, seed=seed) == []
    flags = {k: v for k, v in monitor.scalars().items() if k.count("/") == 1}
    assert flags == {f"Health/{d}": 0.0 for d in DETECTORS}


def test_nan_is_divergence_at_once_even_in_warmup():
    monitor = Monitor(HealthConfig())
    events = run(monitor, 3, lambda i, v: {**v, "Loss/D": math.nan} if i == 2 else v)
    assert detectors(events) == ["divergence"]
    event = events[0]
    assert event.step == 3 * LOG_EVERY and event.action == "rollback" and event.value == 1.0
    assert "Loss/D" in event.message and "optim.grad_clip=1.0" in event.message
    assert "\n" not in event.message


def test_nonfinite_parameters_and_inf_gradients_are_divergence():
    monitor = Monitor(HealthConfig(divergence="stop"))
    bad = {"Health/nonfinite": 1.0, "Grad/D_norm": math.inf}
    events = run(monitor, 1, lambda i, v: {**v, **bad})
    assert [(e.detector, e.action, e.value) for e in events] == [("divergence", "stop", 2.0)]
    assert "Grad/D_norm" in events[0].message and "parameters" in events[0].message


@pytest.mark.parametrize(
    "key",
    [
        "Loss/G",
        "Loss/D",
        "D/fake_score",
        "Grad/G_norm",
        "Weights/G_norm",
        "Weights/D_norm",
        "Health/fake_diversity",
    ],
)
def test_a_finite_blow_up_is_divergence(key):
    config = HealthConfig()
    monitor = Monitor(config)
    assert run(monitor, 30) == []
    events = run(monitor, 5, lambda i, v: {**v, key: v[key] * 1e7}, start=30)
    # once, though it stays blown up (a gradient norm is also exploding, after `patience`)
    assert detectors(events).count("divergence") == 1
    event = events[0]
    assert event.step == 31 * LOG_EVERY and event.action == "rollback" and event.value == 1.0
    assert f"finite blow-up: {key}" in event.message and "running scale" in event.message
    assert "NaN/Inf" not in event.message and "\n" not in event.message


def test_a_blow_up_at_the_first_observation_is_divergence():
    # a learning rate of 1000 takes the G loss to 4e3 at the first step and to 1e7 after
    monitor = Monitor(HealthConfig())
    events = run(monitor, 1, lambda i, v: {**v, "Loss/G": 4349.0})
    assert detectors(events) == ["divergence"] and "Loss/G 4.35e+03" in events[0].message


def test_growth_within_the_blow_up_factor_of_the_running_scale_is_not_divergence():
    # a slow climb (x1.1 per observation) keeps inside 1000x of its own running median,
    # and a D loss at 0 jumping to 2 (a hinge loss at equilibrium) is inside 1000 x the floor
    monitor = Monitor(dataclasses.replace(HealthConfig(), gradients="warn"))
    climbing = lambda i, v: {**v, "Grad/D_norm": 1.1**i, "Loss/D": 0.0 if i < 50 else 2.0}  # noqa: E731
    assert "divergence" not in detectors(run(monitor, 150, climbing))


def test_the_blow_up_factor_is_configurable_and_validated():
    monitor = Monitor(HealthConfig(blowup_factor=10.0))
    assert run(monitor, 20) == []
    assert detectors(run(monitor, 1, lambda i, v: {**v, "Loss/D": 50.0}, start=20)) == [
        "divergence"
    ]
    with pytest.raises(
        SpecError, match=r"^health\.blowup_factor: 2.0 is out of range; use a value >= 10"
    ):
        build(HealthConfig, {"blowup_factor": 2}, "health")


def test_the_running_scales_survive_a_rollback_and_a_checkpoint():
    monitor = Monitor(HealthConfig())
    run(monitor, 30, lambda i, v: {**v, "Grad/D_norm": 50.0})
    monitor.reset_after_rollback()
    restored = Monitor(HealthConfig())
    restored.load_state_dict(monitor.state_dict())
    # 50 * 1000 is the bar; with the scales forgotten it would be the floor's 1000
    for m in (monitor, restored):
        assert run(m, 1, lambda i, v: {**v, "Grad/D_norm": 20_000.0}, start=30) == []
        assert detectors(run(m, 1, lambda i, v: {**v, "Grad/D_norm": 60_000.0}, start=31)) == [
            "divergence"
        ]


def test_event_fires_once_then_rearms_after_the_condition_clears():
    config = SMALL
    monitor = Monitor(config)
    nan = lambda i, v: {**v, "Loss/G": math.nan}  # noqa: E731
    events = run(monitor, 8, nan)
    assert detectors(events) == ["divergence"]
    assert monitor.scalars()["Health/divergence"] == 1.0
    assert run(monitor, config.rearm_after - 1, start=8) == []
    assert run(monitor, 1, nan, start=8 + config.rearm_after - 1) == []  # not yet re-armed
    assert run(monitor, config.rearm_after, start=8 + config.rearm_after) == []
    assert monitor.scalars()["Health/divergence"] == 0.0
    again = run(monitor, 3, nan, start=8 + 2 * config.rearm_after)
    assert detectors(again) == ["divergence"]
    assert again[0].step == (8 + 2 * config.rearm_after + 1) * LOG_EVERY


def overpowered(i: int, v: Values) -> Values:
    return {**v, "D/real_acc": 0.995, "D/fake_acc": 0.99, "Loss/D": 0.3, "Grad/G_norm": 1.5}


def test_overpowering_needs_full_observations_of_accuracy_above_the_threshold():
    config = SMALL
    monitor = Monitor(config)
    prefix = config.warmup + 7
    assert run(monitor, prefix) == []
    events = run(monitor, 2 * config.observations, overpowered, start=prefix)
    assert detectors(events) == ["overpowering"]
    event = events[0]
    # the last `observations` hold only overpowered ones at the observations-th one
    assert event.step == (prefix + config.observations) * LOG_EVERY
    assert event.value == pytest.approx(0.99) and event.action == "warn"
    assert "D accuracy 0.995 real, 0.99 fake" in event.message
    for remedy in ("optim.lr_d", "optim.n_critic=1", "loss.name=bce loss.label_smoothing=0.1"):
        assert remedy in event.message
    assert "model.discriminator.spectral_norm=true" in event.message


def test_overpowering_below_the_threshold_is_silent():
    config = SMALL
    monitor = Monitor(config)
    just_below = lambda i, v: {
        **v,
        "D/real_acc": 0.99,
        "D/fake_acc": config.accuracy_threshold - 0.01,
    }  # noqa: E731
    assert run(monitor, 5 * config.observations, just_below) == []


def test_overpowering_waits_for_the_warmup():
    config = dataclasses.replace(SMALL, warmup=3 * SMALL.observations)
    monitor = Monitor(config)
    events = run(monitor, 4 * config.observations, overpowered)
    assert detectors(events) == ["overpowering"]
    assert events[0].step == (config.warmup + 1) * LOG_EVERY


@pytest.mark.parametrize(("loss_name", "fires"), [("hinge", True), ("bce", True), ("wgan", False)])
def test_d_loss_near_zero_is_overpowering_except_for_wgan(loss_name, fires):
    config = SMALL
    monitor = Monitor(config, loss_name=loss_name)
    no_acc = lambda i, v: {k: x for k, x in v.items() if "acc" not in k}  # noqa: E731
    zero = lambda i, v: {**no_acc(i, v), "Loss/D": config.d_loss_floor / 5}  # noqa: E731
    assert run(monitor, 20, no_acc) == []
    events = run(monitor, 2 * config.observations, zero, start=20)
    assert detectors(events) == (["overpowering"] if fires else [])
    if fires:
        smoothing = "loss.label_smoothing=0.1"
        assert (f"loss.name=bce {smoothing}" in events[0].message) == (loss_name != "bce")


@pytest.mark.parametrize(
    ("key", "factor", "detector"),
    [("Grad/G_norm", 1e-3, "vanishing_gradients"), ("Grad/D_norm", 100.0, "exploding_gradients")],
)
def test_gradient_norm_far_from_its_running_median(key, factor, detector):
    config = SMALL
    monitor = Monitor(config)
    prefix = config.warmup + config.median_observations
    assert run(monitor, prefix) == []
    events = run(monitor, 10, lambda i, v: {**v, key: v[key] * factor}, start=prefix)
    assert detectors(events) == [detector]
    assert events[0].step == (prefix + config.patience) * LOG_EVERY  # after `patience` in a row
    net = key[5]
    assert f"{net} gradients" in events[0].message and key in events[0].message
    assert (events[0].value < 1 / config.gradient_factor) == (factor < 1)


def test_a_single_gradient_spike_is_not_an_event():
    config = SMALL
    monitor = Monitor(config)
    spike = lambda i, v: {**v, "Grad/D_norm": 1e3} if i == 40 else v  # noqa: E731
    assert run(monitor, 80, spike) == []


def test_collapse_when_fake_diversity_falls_well_below_real():
    config = SMALL
    monitor = Monitor(config)
    assert run(monitor, 20) == []
    collapsed = lambda i, v: {**v, "Health/fake_diversity": 0.05}  # noqa: E731
    events = run(monitor, 2 * config.observations, collapsed, start=20)
    assert detectors(events) == ["collapse"]
    assert events[0].value < config.diversity_ratio
    assert "mode collapse" in events[0].message
    assert "model.discriminator.minibatch_std=true" in events[0].message


def evaluation(recall: float, precision: float, coverage: float = 0.7) -> dict[str, float]:
    return {
        "Metrics/tas/recall": recall,
        "Metrics/tas/coverage": coverage,
        "Metrics/tas/precision": precision,
        "Metrics/tas/acf_error": 0.1,
    }


def test_collapse_at_evaluation_when_recall_falls_and_precision_holds():
    config = SMALL
    monitor = Monitor(config)
    assert monitor.observe_evaluation(100, evaluation(0.8, 0.9), score=1.0) == []
    assert monitor.observe_evaluation(200, evaluation(0.7, 0.9), score=0.9) == []
    fallen = 0.8 - config.recall_drop - 0.1
    events = monitor.observe_evaluation(300, evaluation(fallen, 0.92), score=0.8)
    assert detectors(events) == ["collapse"]
    assert events[0].value == pytest.approx(0.8 - fallen)
    assert "Metrics/tas/recall fell 0.8" in events[0].message
    assert monitor.scalars()["Health/collapse"] == 1.0


@pytest.mark.parametrize(("real_samples", "fires"), [(None, True), (64, True), (13, False)])
def test_a_recall_drop_within_the_noise_of_few_real_samples_is_not_collapse(real_samples, fires):
    """A 0.3 drop is 19 of 64 real samples but 4 of 13, under 3 standard errors (0.42)."""
    monitor = Monitor(SMALL)
    monitor.observe_evaluation(100, evaluation(0.9, 0.9), 1.0, real_samples)
    events = monitor.observe_evaluation(200, evaluation(0.6, 0.9), 1.0, real_samples)
    assert detectors(events) == (["collapse"] if fires else [])


def test_recall_falling_with_precision_is_not_collapse():
    monitor = Monitor(SMALL)
    monitor.observe_evaluation(100, evaluation(0.8, 0.9), score=1.0)
    assert monitor.observe_evaluation(200, evaluation(0.4, 0.5), score=1.1) == []


@pytest.mark.parametrize(
    ("key", "slope", "winner", "remedy"),
    [
        ("Loss/D", -0.01, "D is winning", "optim.lr_d"),
        ("Loss/G", -0.01, "G is winning", "optim.n_critic=2"),
        ("Loss/G", 0.01, "D is winning", "loss.instance_noise=0.1"),
    ],
)
def test_one_way_losses(key, slope, winner, remedy):
    config = SMALL
    monitor = Monitor(config)
    drift = lambda i, v: {**v, key: 1.0 + slope * i + 0.02 * math.sin(i)}  # noqa: E731
    events = run(monitor, 3 * config.one_way_observations, drift)
    assert detectors(events) == ["one_way"]
    event = events[0]
    assert event.step == config.one_way_observations * LOG_EVERY
    assert math.copysign(1, event.value) == math.copysign(1, slope)
    assert abs(event.value) >= config.one_way_correlation
    assert winner in event.message and remedy in event.message and key in event.message


def test_stagnation_after_m_evaluations_without_a_better_score():
    config = dataclasses.replace(SMALL, stagnation_evals=4, stagnation="stop")
    monitor = Monitor(config)
    scores = [1.0, 0.8, 0.7, *[0.75] * (config.stagnation_evals + 2)]
    fired = [
        (step, monitor.observe_evaluation(step, {}, score))
        for step, score in zip(itertools.count(100, 100), scores)
    ]
    events = [(step, e) for step, found in fired for e in found]
    assert [(step, e.detector, e.action) for step, e in events] == [
        (100 * (3 + config.stagnation_evals), "stagnation", "stop")
    ]
    assert "best 0.7 at step 300" in events[0][1].message
    assert monitor.observe_evaluation(1000, {}, 0.5) == []  # a better score clears it
    assert monitor.scalars()["Health/stagnation/value"] == 0.0


def test_state_dict_round_trip_through_a_checkpoint(tmp_path):
    config = SMALL
    first, second = Monitor(config), Monitor(config)
    bad = lambda i, v: {**v, "Loss/D": 1.0 - 0.01 * i, "Health/fake_diversity": 0.1}  # noqa: E731
    run(first, 25, bad)
    first.observe_evaluation(250, evaluation(0.8, 0.9), 1.0)
    torch.save({"health": first.state_dict()}, tmp_path / "h.pt")
    second.load_state_dict(torch.load(tmp_path / "h.pt", weights_only=True)["health"])
    assert repr(second.state_dict()) == repr(first.state_dict())  # NaN != NaN, so by repr
    later = [run(m, 40, bad, start=25) for m in (first, second)]
    assert later[0] and later[0] == later[1]
    assert first.scalars() == second.scalars()


def test_reset_after_rollback_does_not_fire_the_same_evidence_again():
    config = SMALL
    monitor = Monitor(config)
    assert detectors(run(monitor, 40, overpowered)) == ["overpowering"]
    monitor.reset_after_rollback()
    assert monitor.scalars()["Health/overpowering"] == 0.0
    # the observations refill before it can fire again, and warm-up comes first
    again = run(monitor, 40, overpowered, start=40)
    assert detectors(again) == ["overpowering"]
    assert again[0].step == (40 + max(config.observations, config.warmup + 1)) * LOG_EVERY


def test_disabled_monitor_is_silent():
    monitor = Monitor(dataclasses.replace(SMALL, enabled=False))
    assert run(monitor, 30, lambda i, v: {**v, "Loss/D": math.nan}) == []
    assert monitor.scalars() == {}


def test_scalars_carry_flags_and_values():
    monitor = Monitor(SMALL)
    run(monitor, 40, overpowered)
    scalars = monitor.scalars()
    assert scalars["Health/overpowering"] == 1.0
    assert scalars["Health/overpowering/value"] == pytest.approx(0.99)
    assert scalars["Health/divergence/value"] == 0.0
    assert "Health/stagnation/value" not in scalars  # no evaluation yet


def test_config_from_yaml_mapping_and_its_errors():
    config = build(HealthConfig, {"gradients": "stop", "observations": 20}, "health")
    assert config.action("exploding_gradients") == "stop" and config.observations == 20
    assert config.action("divergence") == "rollback"
    with pytest.raises(
        SpecError, match=r"^health\.observations: 1 is out of range; use an integer >= 2$"
    ):
        build(HealthConfig, {"observations": 1}, "health")
    with pytest.raises(SpecError, match="health.collapse: 'explode' is not allowed"):
        build(HealthConfig, {"collapse": "explode"}, "health")
    with pytest.raises(SpecError, match="health.lr_factor"):
        build(HealthConfig, {"lr_factor": 1.5}, "health")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ("window", "observations"),
        ("median_window", "median_observations"),
        ("one_way_window", "one_way_observations"),
    ],
)
def test_the_old_window_keys_are_unknown_and_the_error_lists_the_new_names(old, new):
    with pytest.raises(SpecError, match=rf"^health\.{old}: unknown key.* valid keys: .*\b{new}\b"):
        build(HealthConfig, {old: 30}, "health")


def test_batch_diversity_matches_a_hand_computation():
    x = torch.tensor([[[0.0, 0.0], [0.0, 0.0]], [[1.0, 1.0], [1.0, 1.0]], [[3.0, 0.0], [0.0, 4.0]]])
    # pairwise L2: |a-b| = 2, |a-c| = 5, |b-c| = sqrt(4 + 1 + 1 + 9); 4 elements per sample
    expected = (2 + 5 + math.sqrt(15)) / 3 / math.sqrt(4)
    assert batch_diversity(x) == pytest.approx(expected)
    assert batch_diversity(x[:1]) == 0.0
    same = torch.ones(5, 3, 2, 4, 4)
    assert batch_diversity(same) == 0.0


def test_batch_diversity_of_independent_standard_samples_is_about_sqrt2():
    x = torch.randn(16, 4, 2, 8, 8, generator=torch.Generator().manual_seed(0))
    assert batch_diversity(x) == pytest.approx(math.sqrt(2), rel=0.05)


def test_nonfinite_parameters():
    a, b = torch.nn.Linear(3, 2), torch.nn.BatchNorm1d(2)
    assert not nonfinite_parameters(a, b)
    with torch.no_grad():
        b.running_var[0] = math.inf
    assert nonfinite_parameters(a, b) and not nonfinite_parameters(a)
    with torch.no_grad():
        a.weight[0, 0] = math.nan
    assert nonfinite_parameters(a)


def test_rank_correlation():
    assert rank_correlation([1, 2, 3, 4], [10, 20, 25, 40]) == pytest.approx(1.0)
    assert rank_correlation([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    assert rank_correlation([1, 2, 3], [5, 5, 5]) == 0.0


def test_weight_norm_is_the_norm_of_all_parameters_together():
    import torch

    from stgan.training.health import weight_norm

    layer = torch.nn.Linear(3, 2)
    with torch.no_grad():
        layer.weight.fill_(1.0)  # six ones
        layer.bias.copy_(torch.tensor([2.0, 4.0]))
    assert weight_norm(layer) == pytest.approx(math.sqrt(6 + 4 + 16))
    assert weight_norm(torch.nn.ReLU()) == 0.0


def test_a_weight_norm_is_measured_against_its_own_history_only():
    # a wide model's weight norm is large from the start: no absolute floor applies to it
    monitor = Monitor(HealthConfig(blowup_factor=10.0))
    wide = lambda i, v: {**v, "Weights/G_norm": 5000.0}  # noqa: E731
    assert run(monitor, 20, wide) == []
    events = run(monitor, 1, lambda i, v: {**v, "Weights/G_norm": 5e4 + 1}, start=20)
    assert detectors(events) == ["divergence"] and "Weights/G_norm" in events[0].message
