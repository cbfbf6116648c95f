"""Tiny models and data shared by the model tests: 8x8 grids, 4 frames, batch 2."""

from __future__ import annotations

import pytest
import torch

from stgan.models import DiscriminatorConfig, GeneratorConfig, build_discriminator, build_generator

B, T, T_IN, C, H, W = 2, 4, 2, 1, 8, 8
TINY_G = {"latent_dim": 8, "noise_channels": 2, "base_channels": 8, "context_frames": T_IN}


@pytest.fixture
def make_g():
    """``make_g(**overrides)`` -> a tiny generator for (B, 4, 1, 8, 8) sequences."""
    return lambda **overrides: build_generator(
        GeneratorConfig(**{**TINY_G, **overrides}), C, H, W, T
    )


@pytest.fixture
def make_d():
    """``make_d(**overrides)`` -> a tiny discriminator for (B, 4, 1, 8, 8) sequences."""
    return lambda **overrides: build_discriminator(
        DiscriminatorConfig(**{"base_channels": 8, **overrides}), C, H, W, T
    )


@pytest.fixture
def real() -> torch.Tensor:
    return torch.randn(B, T, C, H, W, generator=torch.Generator().manual_seed(0))


@pytest.fixture
def context() -> torch.Tensor:
    return torch.randn(B, T_IN, C, H, W, generator=torch.Generator().manual_seed(1))
