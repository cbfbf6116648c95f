"""Calendar features as generator and discriminator inputs: they change what G makes and
what D scores, for the same latents and the same sequences."""

from __future__ import annotations

import pandas as pd
import pytest
import torch

from stgan.data.calendar import features
from stgan.models import DiscriminatorConfig, GeneratorConfig, build_discriminator, build_generator
from tests.models.conftest import TINY_G, B, C, H, T, W

F = 4  # day and year


def calendar_at(start: str) -> torch.Tensor:
    """(B, T, F) features of T 6-hourly frames from ``start``, the same for the batch."""
    times = pd.date_range(start, periods=T, freq="6h")
    return torch.from_numpy(features(times, ["day", "year"])).expand(B, -1, -1)


@pytest.mark.parametrize("name", ["convgru", "convlstm", "conv3d"])
@pytest.mark.parametrize("conditional", [False, True])
def test_generator_output_depends_on_the_calendar(name, conditional, context):
    torch.manual_seed(0)
    cfg = GeneratorConfig(**{**TINY_G, "name": name, "conditional": conditional})
    g = build_generator(cfg, C, H, W, T, calendar_features=F)
    z, noise = g.latents(B, generator=torch.Generator().manual_seed(1))
    past = context if conditional else None
    winter, summer = calendar_at("2001-01-01 00:00"), calendar_at("2001-07-01 12:00")
    a, b = g(z, noise, past, winter), g(z, noise, past, summer)
    assert a.shape == (B, T, C, H, W)
    assert torch.equal(a, g(z, noise, past, winter))
    assert not torch.allclose(a, b)


def test_generator_with_calendar_needs_it():
    g = build_generator(GeneratorConfig(**TINY_G), C, H, W, T, calendar_features=F)
    with pytest.raises(ValueError, match="calendar"):
        g(*g.latents(B))
    with pytest.raises(ValueError, match="calendar"):
        g(*g.latents(B), None, torch.zeros(B, T, F + 2))


def test_longer_recurrent_sequences_take_the_calendar_of_every_frame():
    g = build_generator(GeneratorConfig(**TINY_G), C, H, W, T, calendar_features=F)
    z, noise = g.latents(B, frames=2 * T)
    assert g(z, noise, None, torch.zeros(B, 2 * T, F)).shape == (B, 2 * T, C, H, W)


@pytest.mark.parametrize("name", ["conv3d", "dual"])
@pytest.mark.parametrize("conditional", [False, True])
def test_discriminator_scores_depend_on_the_calendar(name, conditional, real, context):
    torch.manual_seed(0)
    d = build_discriminator(
        DiscriminatorConfig(name=name, base_channels=8), C, H, W, T, calendar_features=F
    )
    d.generator = torch.Generator()  # dual: the same frames for both calls
    past = context if conditional else None
    frames = T + (context.shape[1] if conditional else 0)
    one = torch.zeros(B, frames, F)
    other = torch.ones(B, frames, F)
    d.generator.manual_seed(0)
    a = d(real, past, one)
    d.generator.manual_seed(0)
    b = d(real, past, other)
    assert a.shape == (B,) and a.isfinite().all()
    assert not torch.allclose(a, b)
    with pytest.raises(ValueError, match="calendar"):
        d(real, past)
