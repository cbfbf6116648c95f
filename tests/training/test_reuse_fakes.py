"""``optim.reuse_fakes``: the G step scores the D step's fakes against the D step's batch.

Pinned against the default step made to replay the D phase's batch and latents in the G
phase: the same maths, with one G forward and one batch a step fewer.
"""

from __future__ import annotations

import pytest
import torch

from stgan.errors import SpecError
from stgan.models import generator
from stgan.training import loop
from stgan.training.checkpoint import load_checkpoint
from stgan.training.config import load_pipeline
from tests.conftest import tiny_pipeline
from tests.training.test_fast_training import logged

STEPS = 3


def tiny_config(tmp_path, reuse: bool, **optim):
    directory = tmp_path / f"data_{reuse}"
    directory.mkdir(exist_ok=True)
    return load_pipeline(
        tiny_pipeline(
            directory,
            loss={"name": "bce", "instance_noise": 0.1, "instance_noise_steps": 10},
            optim={"reuse_fakes": reuse, **optim},
            train={"steps": STEPS, "batch_size": 2, "hist_every": 100, "ckpt_every": STEPS},
            eval={"every": 0},
        )
    )


def replaying(monkeypatch, calls: dict[str, int]) -> None:
    """Every second batch and every second latent draw repeat the one before (the G phase
    gets the D phase's), and count the calls."""

    def replay(name, draw):
        last = {}

        def wrapped(*args, **kwargs):
            calls[name] += 1
            if calls[name] % 2:
                last["value"] = draw(*args, **kwargs)
            return last["value"]

        return wrapped

    monkeypatch.setattr(loop, "next_batch", replay("batches", loop.next_batch))
    monkeypatch.setattr(
        generator.RecurrentGenerator,
        "latents",
        replay("latents", generator.RecurrentGenerator.latents),
    )


def counting(monkeypatch, calls: dict[str, int]) -> None:
    def count(name, original):
        def wrapped(*args, **kwargs):
            calls[name] += 1
            return original(*args, **kwargs)

        return wrapped

    monkeypatch.setattr(loop, "next_batch", count("batches", loop.next_batch))
    monkeypatch.setattr(
        generator.RecurrentGenerator,
        "latents",
        count("latents", generator.RecurrentGenerator.latents),
    )


def test_reused_fakes_train_as_the_default_step_replaying_the_d_phase(tmp_path, monkeypatch):
    reused = {"batches": 0, "latents": 0}
    with monkeypatch.context() as patch:
        counting(patch, reused)
        loop.train(tiny_config(tmp_path, reuse=True), tmp_path / "reuse", device="cpu")
    replayed = {"batches": 0, "latents": 0}
    with monkeypatch.context() as patch:
        replaying(patch, replayed)
        loop.train(tiny_config(tmp_path, reuse=False), tmp_path / "replay", device="cpu")

    assert reused == {"batches": STEPS, "latents": STEPS}  # one of each a step
    assert replayed == {"batches": 2 * STEPS, "latents": 2 * STEPS}
    for tag in ("Loss/G", "Loss/D", "Grad/G_norm", "Grad/D_norm"):
        fast, slow = logged(tmp_path / "reuse", tag), logged(tmp_path / "replay", tag)
        assert len(fast) == STEPS
        torch.testing.assert_close(fast, slow, rtol=1e-5, atol=1e-6, msg=tag)
    fast, slow = (
        load_checkpoint(tmp_path / run / "checkpoints" / f"ckpt_{STEPS:08d}.pt")
        for run in ("reuse", "replay")
    )
    for part in ("G", "D", "EMA"):
        torch.testing.assert_close(fast[part], slow[part], rtol=1e-5, atol=1e-6)


def test_reused_fakes_differ_from_fresh_ones(tmp_path):
    """The replay above is what makes the runs agree: fresh fakes give another G step."""
    for name, reuse in (("reuse", True), ("fresh", False)):
        loop.train(tiny_config(tmp_path, reuse=reuse), tmp_path / name, device="cpu")
    assert logged(tmp_path / "reuse", "Loss/D")[0] == logged(tmp_path / "fresh", "Loss/D")[0]
    assert logged(tmp_path / "reuse", "Loss/G")[0] != logged(tmp_path / "fresh", "Loss/G")[0]


@pytest.mark.parametrize("optim", [{"grad_accum": 2}])
def test_reuse_needs_one_micro_batch(tmp_path, optim):
    with pytest.raises(SpecError, match=r"optim.reuse_fakes: .*grad_accum 1 \(not 2\)"):
        tiny_config(tmp_path, reuse=True, **optim)


def test_with_two_d_steps_the_g_step_reuses_the_second(tmp_path, monkeypatch):
    calls = {"batches": 0, "latents": 0}
    with monkeypatch.context() as patch:
        counting(patch, calls)
        config = tiny_config(tmp_path, reuse=True, n_critic=2)
        loop.train(config, tmp_path / "run", device="cpu")
    assert calls == {"batches": 2 * STEPS, "latents": 2 * STEPS}  # the default draws 3 of each
    assert len(logged(tmp_path / "run", "Loss/G")) == STEPS
