"""A few training steps give the same losses and weights with the faster forms (all steps
of the recurrence at once, channels-last, D frozen in the G phase, foreach Adam and EMA)
as with the straightforward ones, within float tolerance."""

from __future__ import annotations

import contextlib

import pytest
import torch
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from stgan import objective
from stgan.models import discriminator, generator, layers
from stgan.training import loop, optim
from stgan.training.checkpoint import load_checkpoint
from stgan.training.config import load_pipeline
from tests.conftest import tiny_pipeline
from tests.models.test_fast_forms import (
    reference_generator,
    reference_minibatch_std,
    reference_trunk,
)


def reference_adam_pair(g, d, cfg):
    return (
        torch.optim.Adam(g.parameters(), lr=cfg.lr_g, betas=cfg.betas_g, foreach=False),
        torch.optim.Adam(d.parameters(), lr=cfg.lr_d, betas=cfg.betas_d, foreach=False),
    )


@torch.no_grad()
def reference_ema_update(self, model):
    for ema_p, p in zip(self.model.parameters(), model.parameters(), strict=True):
        ema_p.lerp_(p.detach(), 1.0 - self.decay)
    for ema_b, b in zip(self.model.buffers(), model.buffers(), strict=True):
        ema_b.copy_(b)


def straightforward(monkeypatch: pytest.MonkeyPatch) -> None:
    """The models and the step as they were written before the faster forms."""
    monkeypatch.setattr(generator.RecurrentGenerator, "forward", reference_generator)
    monkeypatch.setattr(discriminator.ConvTrunk, "forward", reference_trunk)
    monkeypatch.setattr(layers.MinibatchStd, "forward", reference_minibatch_std)
    monkeypatch.setattr(layers, "channels_last", lambda x: x)  # the decoder's layout
    monkeypatch.setattr(objective, "frozen", lambda module: contextlib.nullcontext())
    monkeypatch.setattr(loop, "adam_pair", reference_adam_pair)
    monkeypatch.setattr(optim.EMA, "update", reference_ema_update)


def logged(logdir, tag):
    events = EventAccumulator(str(logdir), size_guidance={"scalars": 0}).Reload()
    return [e.value for e in events.Scalars(tag)]


def test_five_steps_give_the_same_losses_as_the_straightforward_forms(tmp_path, monkeypatch):
    config = load_pipeline(
        tiny_pipeline(
            tmp_path,
            model={
                "generator": {
                    "name": "convgru",
                    "latent_dim": 4,
                    "noise_channels": 2,
                    "time_features": 2,
                    "base_channels": 4,
                    "up_stages": 1,
                },
                "discriminator": {
                    "name": "dual",
                    "base_channels": 4,
                    "num_stages": 1,
                    "num_frames": 2,
                    "spectral_norm": True,
                    "minibatch_std_group": 2,
                },
            },
            train={"steps": 5, "batch_size": 2, "log_every": 1, "ckpt_every": 5},
            eval={"every": 0},
        )
    )
    loop.train(config, tmp_path / "fast", device="cpu")
    with monkeypatch.context() as patch:
        straightforward(patch)
        loop.train(config, tmp_path / "plain", device="cpu")
    for tag in ("Loss/G", "Loss/D", "Grad/G_norm", "Grad/D_norm", "D/real_score"):
        fast, plain = logged(tmp_path / "fast", tag), logged(tmp_path / "plain", tag)
        assert len(fast) == 5
        torch.testing.assert_close(fast, plain, rtol=1e-4, atol=1e-5, msg=tag)
    fast, plain = (
        load_checkpoint(tmp_path / run / "checkpoints" / "ckpt_00000005.pt")
        for run in ("fast", "plain")
    )
    for part in ("G", "D", "EMA"):
        torch.testing.assert_close(fast[part], plain[part], rtol=1e-4, atol=1e-5)
