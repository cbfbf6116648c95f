"""Frozen, typed configs for the generator and the discriminator.

Build them from YAML with ``stgan.config.build(GeneratorConfig, mapping, "generator")``;
``validate`` adds the range checks that type hints cannot express.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from stgan.errors import SpecError


def _require(ok: bool, where: str, key: str, value: object, allowed: str) -> None:
    if not ok:
        raise SpecError(f"{where}.{key}: {value!r} is out of range; {allowed}")


@dataclass(frozen=True)
class GeneratorConfig:
    """Generator architecture.

    ``up_stages`` sets the downsampling factor ``2**up_stages``: the recurrence (or the
    3D volume) runs at ``H / 2**up_stages x W / 2**up_stages``. ``temporal_up_stages``
    (conv3d only) sets the temporal factor ``2**temporal_up_stages``.
    """

    name: Literal["convgru", "convlstm", "conv3d"] = "convgru"
    latent_dim: int = 32  # global z, shared by all frames
    noise_channels: int = 4  # per-step noise channels at low resolution (0: none)
    # Recurrent only: the noise is drawn on the output grid, the stem takes it subsampled
    # to the recurrence's grid, and the decoder adds it per cell at its input and after
    # each up-sampling stage (StyleGAN's noise inputs, learned strength from zero), so
    # fine-scale detail changes from frame to frame without passing through the state
    decoder_noise: bool = False
    # Initial strength of every noise input (learned from there). From 0 the strength's
    # gradient is 0 in expectation (the output does not depend on the noise yet), so in a
    # run of a few hundred steps it hardly moves and G stays too smooth in time
    noise_init: float = 0.0
    time_features: int = 4  # recurrent only: sin/cos clock inputs, periods 2T, T, 2T/3, ...
    # Condition G and D on the calendar features of each frame (stgan.data.calendar: the
    # data's daily, weekly, yearly cycles), so samples are made for given times; off by
    # default: measured on the quality suite it did not win on every set (README, Results)
    calendar: bool = False
    base_channels: int = 32  # channels at the lowest resolution
    num_layers: int = 2  # stacked recurrent cells, or convs per 3D stage
    up_stages: int = 2  # each doubles H and W
    temporal_up_stages: int = 1  # conv3d only: each of the first stages also doubles T
    spectral_norm: bool = False
    conditional: bool = False  # nowcasting: generate the future from context frames
    context_frames: int = 4  # T_in, used when conditional
    output_activation: Literal["none", "tanh"] = "none"  # data are standardized

    def validate(self, where: str) -> None:
        for key in ("latent_dim", "base_channels", "num_layers", "context_frames"):
            value = getattr(self, key)
            _require(value >= 1, where, key, value, "use an integer >= 1")
        _require(
            self.noise_channels >= 0,
            where,
            "noise_channels",
            self.noise_channels,
            "use an integer >= 0",
        )
        _require(
            self.time_features >= 0 and self.time_features % 2 == 0,
            where,
            "time_features",
            self.time_features,
            "use an even integer >= 0 (sine and cosine pairs)",
        )
        _require(
            not self.decoder_noise or (self.name != "conv3d" and self.noise_channels >= 1),
            where,
            "decoder_noise",
            self.decoder_noise,
            "needs a recurrent generator (convgru, convlstm) and noise_channels >= 1",
        )
        _require(
            0.0 <= self.noise_init <= 1.0,
            where,
            "noise_init",
            self.noise_init,
            "use a number from 0 to 1",
        )
        _require(0 <= self.up_stages <= 6, where, "up_stages", self.up_stages, "use 0 to 6")
        _require(
            0 <= self.temporal_up_stages <= self.up_stages,
            where,
            "temporal_up_stages",
            self.temporal_up_stages,
            f"use 0 to up_stages ({self.up_stages})",
        )


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Discriminator architecture.

    ``conv3d`` scores whole sequences; ``dual`` (as in DGMR) sums a spatial 2D D on
    ``num_frames`` random frames and a temporal 3D D on the 2x avg-pooled sequence.
    """

    name: Literal["conv3d", "dual"] = "conv3d"
    base_channels: int = 32  # doubled at each downsampling stage
    num_stages: int = 2  # stride-2 stages (any grid size works)
    spectral_norm: bool = True
    minibatch_std: bool = True
    minibatch_std_group: int = 4
    num_frames: int = 2  # dual only: frames scored by the spatial D
    # the 3D trunk (conv3d, or dual's temporal D) also sees each frame's change from the
    # one before, so a sequence too flat or too jumpy in time is told from the data at once
    increments: bool = False

    def validate(self, where: str) -> None:
        for key in ("base_channels", "num_stages", "minibatch_std_group", "num_frames"):
            value = getattr(self, key)
            _require(value >= 1, where, key, value, "use an integer >= 1")
