"""Build generators and discriminators by name from their configs.

>>> g = build_generator(GeneratorConfig(name="convgru"), channels=1, height=16, width=16, frames=8)
>>> d = build_discriminator(DiscriminatorConfig(name="dual"), channels=1, height=16, width=16, frames=8)
>>> d(g(*g.latents(2))).shape
torch.Size([2])
"""

from __future__ import annotations

import functools
from collections.abc import Callable

from torch import nn

from stgan.errors import StganError
from stgan.models import layers
from stgan.models.config import DiscriminatorConfig, GeneratorConfig
from stgan.models.discriminator import Conv3dDiscriminator, DualDiscriminator
from stgan.models.generator import Conv3dGenerator, Generator, RecurrentGenerator

GENERATORS: dict[str, Callable[..., Generator]] = {
    "convgru": functools.partial(RecurrentGenerator, cell=layers.ConvGRUCell),
    "convlstm": functools.partial(RecurrentGenerator, cell=layers.ConvLSTMCell),
    "conv3d": Conv3dGenerator,
}

DISCRIMINATORS: dict[str, Callable[..., nn.Module]] = {
    "conv3d": Conv3dDiscriminator,
    "dual": DualDiscriminator,
}


def _lookup(table: dict, name: str, what: str) -> Callable:
    if name not in table:
        raise StganError(f"unknown {what} {name!r}; choose one of {', '.join(sorted(table))}")
    return table[name]


def build_generator(
    cfg: GeneratorConfig,
    channels: int,
    height: int,
    width: int,
    frames: int,
    calendar_features: int = 0,
) -> Generator:
    """Generator for (B, frames, channels, height, width) sequences.

    Any grid works: one that does not divide by the model's factor ``2**up_stages`` is
    generated padded and cropped back. ``calendar_features``: F, the calendar features
    per frame it is conditioned on (``stgan.data.calendar.count``; 0: none). Raises
    ``StganError`` for an unknown ``cfg.name`` or, for conv3d, a frame count not
    divisible by its temporal factor.
    """
    build = _lookup(GENERATORS, cfg.name, "generator")
    return build(cfg, channels, height, width, frames, calendar_features=calendar_features)


def build_discriminator(
    cfg: DiscriminatorConfig,
    channels: int,
    height: int,
    width: int,
    frames: int,
    calendar_features: int = 0,
) -> nn.Module:
    """Discriminator scoring (B, frames, channels, height, width) sequences as (B,).

    Any grid works (each trunk reflect-pads it to its factor), so ``height`` and ``width``
    are not checked; ``frames`` (generated frames, without the context) must be at least
    ``cfg.num_frames`` for ``dual``. ``calendar_features``: F, the calendar features per
    frame it sees beside the data, as G gets them.
    """
    build = _lookup(DISCRIMINATORS, cfg.name, "discriminator")
    if cfg.name == "dual" and cfg.num_frames > frames:
        raise StganError(
            f"discriminator.num_frames is {cfg.num_frames} but sequences have only {frames} "
            f"frames; set num_frames <= {frames}"
        )
    return build(cfg, channels, calendar_features)
