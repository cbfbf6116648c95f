"""Grids that do not divide by a model's factor: padded (reflect, else replicate), cropped back."""

from __future__ import annotations

import pytest
import torch

from stgan.models import (
    DiscriminatorConfig,
    GeneratorConfig,
    build_discriminator,
    build_generator,
    layers,
)

TINY_G = {"latent_dim": 8, "noise_channels": 2, "base_channels": 8, "num_layers": 1}


@pytest.mark.parametrize("size, factor, padded", [(13, 4, 16), (16, 4, 16), (1, 8, 8), (10, 1, 10)])
def test_padded_size_rounds_up_to_the_factor(size, factor, padded):
    assert layers.padded_size(size, factor) == padded


def test_reflect_pad_then_crop_is_identity_on_the_interior():
    x = torch.randn(2, 3, 4, 13, 10)  # (B, T, C, H, W)
    padded = layers.pad_grid(x, 16, 12)
    assert padded.shape == (2, 3, 4, 16, 12)
    torch.testing.assert_close(layers.crop_grid(padded, 13, 10), x)
    # 3 rows: 1 above, 2 below, mirrored about the edge rows (reflect, not zeros)
    torch.testing.assert_close(padded[..., 0, 1:11], x[..., 1, :])
    torch.testing.assert_close(padded[..., 14, 1:11], x[..., 11, :])
    torch.testing.assert_close(padded[..., 15, 1:11], x[..., 10, :])
    torch.testing.assert_close(padded[..., 1:14, 0], x[..., :, 1])


def test_a_pad_not_smaller_than_the_grid_replicates():
    x = torch.randn(2, 1, 2, 3)  # 2 rows padded to 8: 3 above, 3 below, more than reflect can
    padded = layers.pad_grid(x, 8, 3)
    torch.testing.assert_close(layers.crop_grid(padded, 2, 3), x)
    torch.testing.assert_close(padded[..., :3, :], x[..., :1, :].expand(2, 1, 3, 3))
    torch.testing.assert_close(padded[..., 5:, :], x[..., 1:, :].expand(2, 1, 3, 3))


@pytest.mark.parametrize("name", ["convgru", "convlstm", "conv3d"])
@pytest.mark.parametrize("height, width, up_stages", [(13, 10, 2), (18, 26, 3), (3, 5, 2)])
def test_generator_returns_the_data_grid(name, height, width, up_stages):
    cfg = GeneratorConfig(name=name, up_stages=up_stages, temporal_up_stages=0, **TINY_G)
    g = build_generator(cfg, channels=2, height=height, width=width, frames=4)
    factor = 2**up_stages
    assert all(side % factor == 0 for side in g.padded_hw)
    assert g(*g.latents(2)).shape == (2, 4, 2, height, width)


def test_conditional_generator_pads_its_context():
    cfg = GeneratorConfig(conditional=True, context_frames=2, up_stages=2, **TINY_G)
    g = build_generator(cfg, channels=1, height=13, width=10, frames=4)
    context = torch.randn(2, 2, 1, 13, 10)
    assert g(*g.latents(2), context).shape == (2, 4, 1, 13, 10)


@pytest.mark.parametrize("name", ["dual", "conv3d"])
@pytest.mark.parametrize("height, width", [(13, 10), (18, 26)])
def test_discriminator_scores_any_grid(name, height, width):
    cfg = DiscriminatorConfig(name=name, base_channels=8, num_stages=3, num_frames=2)
    d = build_discriminator(cfg, channels=2, height=height, width=width, frames=4)
    assert d(torch.randn(3, 4, 2, height, width)).shape == (3,)


def test_discriminator_trunk_sees_the_reflect_padded_grid():
    """The trunk pads to its factor, so a grid and its reflect-padded copy score alike."""
    torch.manual_seed(0)
    cfg = DiscriminatorConfig(name="conv3d", base_channels=8, num_stages=2, minibatch_std=False)
    d = build_discriminator(cfg, channels=1, height=13, width=10, frames=4)
    x = torch.randn(2, 4, 1, 13, 10)
    padded = layers.pad_grid(x, 16, 12)
    torch.testing.assert_close(d(x), d(padded))
