"""Generators: latent z + per-step noise (+ context frames) -> (B, T, C, H, W).

- ``RecurrentGenerator`` (``convgru`` / ``convlstm``): stacked ConvGRU/ConvLSTM cells
  unrolled over T at ``H/f x W/f`` from a state made of z (or of the context), driven at
  each step by z, the noise and a clock; one shared upsampling decoder per frame.
- ``Conv3dGenerator`` (``conv3d``): z -> a (C0, T/ft, H/f, W/f) volume -> 3D upsampling.

In conditional mode (nowcasting) a conv encoder turns the context frames
(B, T_in, C, H, W) into the initial recurrent state (or an extra input volume).

A generator built with ``calendar_features`` F > 0 takes ``calendar`` (B, T, F), the
calendar features of each generated frame (``stgan.data.calendar.features``), as extra
stem inputs: the recurrent G beside z, the noise and its clock at each step; the conv3d
G pooled to its ``T/ft`` steps as extra volume channels. So a sample is made for a given
calendar time.
Shapes below: f = 2**up_stages, (h, w) = (H'/f, W'/f), C0 = base_channels, where
(H', W') is the grid rounded up to multiples of f: a grid that does not divide is
generated padded and cropped back (``Generator.padded_hw``), so any grid works.
"""

from __future__ import annotations

import dataclasses
import math
from itertools import pairwise

import torch
from torch import nn

from stgan.models import layers
from stgan.models.config import GeneratorConfig


def _expect(name: str, tensor: torch.Tensor, shape: tuple[int, ...]) -> None:
    if tuple(tensor.shape) != shape:
        raise ValueError(f"{name}: expected shape {shape}, got {tuple(tensor.shape)}")


class ContextEncoder(nn.Module):
    """Context (B, T_in, C, H, W) -> (B, out_channels, h, w), frames share the weights."""

    def __init__(self, cfg: GeneratorConfig, channels: int, out_channels: int):
        super().__init__()
        sn, stages = cfg.spectral_norm, cfg.up_stages
        chans = [layers.stage_channels(cfg.base_channels, s) for s in range(stages, -1, -1)]
        blocks = [layers.conv_stack(2, channels, chans[0], 1, sn=sn)]
        for c_in, c_out in pairwise(chans):
            blocks += [nn.AvgPool2d(2), layers.conv_stack(2, c_in, c_out, 1, sn=sn)]
        self.frames = nn.Sequential(*blocks)
        self.mix = layers.conv(2, cfg.context_frames * chans[-1], out_channels, kernel=1, sn=sn)

    def forward(self, context: torch.Tensor) -> torch.Tensor:
        b, t = context.shape[:2]
        x = self.frames(context.flatten(0, 1))  # (B*T_in, C0, h, w)
        x = x.view(b, t * x.shape[1], *x.shape[2:])  # (B, T_in*C0, h, w)
        return self.mix(x)  # (B, out_channels, h, w)


class FrameDecoder(nn.Module):
    """(N, C0, h, w) -> (N, channels, H, W): ``up_stages`` x (2x nearest -> conv).

    With ``cfg.decoder_noise``, ``forward`` also takes noise (N, noise_channels, H, W) on
    the output grid and adds one of its channels per cell at the decoder's input and after
    each stage (subsampled to that stage's grid), times a learned per-feature strength
    that starts at ``noise_init`` (zero by default, as StyleGAN's noise inputs): G then
    starts as without it and adds per-frame detail as far as D asks for it.
    """

    def __init__(self, cfg: GeneratorConfig, channels: int):
        super().__init__()
        chans = [layers.stage_channels(cfg.base_channels, s) for s in range(cfg.up_stages + 1)]
        blocks: list[nn.Module] = []
        for c_in, c_out in pairwise(chans):
            blocks += [
                nn.Upsample(scale_factor=2),
                layers.conv_stack(2, c_in, c_out, 1, sn=cfg.spectral_norm),
            ]
        blocks.append(layers.conv(2, chans[-1], channels, sn=cfg.spectral_norm))
        self.net = nn.Sequential(*blocks)
        self.noise_strength = (
            nn.ParameterList(nn.Parameter(torch.full((c,), cfg.noise_init)) for c in chans)
            if cfg.decoder_noise
            else None
        )

    def forward(self, x: torch.Tensor, noise: torch.Tensor | None = None) -> torch.Tensor:
        x = layers.channels_last(x)
        if self.noise_strength is None:
            return self.net(x).contiguous()  # (N, channels, H, W)
        *stages, out = self.net  # (Upsample, conv_stack) pairs, then the output conv
        x = self.add_noise(x, noise, 0)
        for k in range(0, len(stages), 2):
            x = self.add_noise(stages[k + 1](stages[k](x)), noise, k // 2 + 1)
        return out(x).contiguous()  # (N, channels, H, W)

    def add_noise(self, x: torch.Tensor, noise: torch.Tensor, point: int) -> torch.Tensor:
        """x (N, c, h_k, w_k) plus noise channel ``point`` (cycling) on x's grid, scaled."""
        stride = noise.shape[-1] // x.shape[-1]
        channel = point % noise.shape[1]
        cells = noise[:, channel : channel + 1, ::stride, ::stride]  # (N, 1, h_k, w_k)
        return x + cells * self.noise_strength[point].view(1, -1, 1, 1)


class Generator(nn.Module):
    """Shared interface: ``latents`` draws (z, noise), ``forward`` maps them to sequences.

    ``forward(z, noise, context=None, calendar=None)`` takes z (B, latent_dim), noise
    (B, noise_steps(T), noise_channels, *noise_hw), when conditional, context
    (B, T_in, C, H, W) and, when built with ``calendar_features`` F > 0, calendar
    (B, T, F); it returns (B, T, C, H, W).
    """

    def __init__(
        self,
        cfg: GeneratorConfig,
        channels: int,
        height: int,
        width: int,
        frames: int,
        calendar_features: int = 0,
    ):
        super().__init__()
        factor = 2**cfg.up_stages
        self.cfg, self.channels, self.frames = cfg, channels, frames
        self.calendar_features = calendar_features
        self.height, self.width = height, width
        # A grid that does not divide by the factor is made on the next larger one that
        # does (pad_grid's rim) and cropped back to the data's grid (crop_grid)
        self.padded_hw = (layers.padded_size(height, factor), layers.padded_size(width, factor))
        self.low_hw = (self.padded_hw[0] // factor, self.padded_hw[1] // factor)
        # the noise maps' grid: the recurrence's, or the output's for the decoder's noise
        self.noise_hw = self.padded_hw if cfg.decoder_noise else self.low_hw
        self.out_act = nn.Tanh() if cfg.output_activation == "tanh" else nn.Identity()
        # Per-channel strength of the per-step noise, learned from ``noise_init`` (by
        # default zero, as StyleGAN's noise inputs): G starts from z alone, smooth in time,
        # and adds frame-to-frame noise only as far as D asks for it. At full strength
        # from the start, noise drawn afresh at every step made frames nearly independent
        # (lag-1 autocorrelation 0.2-0.4 where the data had 0.7-0.9) and training did not
        # undo it.
        self.noise_strength = nn.Parameter(torch.full((cfg.noise_channels,), cfg.noise_init))
        # Each channel's lower bound in normalized space (no negative counts or rainfall)
        # and whether it has one; training sets them from the data (set_lower).
        self.register_buffer("lower", torch.zeros(channels))
        self.register_buffer("has_lower", torch.zeros(channels, dtype=torch.bool))

    def noise_steps(self, frames: int) -> int:
        """Noise maps drawn for ``frames`` output frames (one per frame here)."""
        return frames

    def latents(
        self,
        batch: int,
        frames: int | None = None,
        generator: torch.Generator | None = None,
        device: torch.device | str | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Draw ``z`` (B, latent_dim) and noise (B, steps, noise_channels, *noise_hw).

        On ``device`` (default the model's), where ``generator`` must live; ``None`` uses
        the global RNG. Sequences of ``frames`` (default: the built length) are
        ``g(*g.latents(B, frames))`` (plus the context frames when conditional):

        >>> from stgan.models import GeneratorConfig, build_generator
        >>> g = build_generator(GeneratorConfig(), channels=1, height=16, width=16, frames=8)
        >>> g(*g.latents(2, frames=5)).shape
        torch.Size([2, 5, 1, 16, 16])
        """
        device = device or next(self.parameters()).device
        steps = self.noise_steps(frames or self.frames)
        z = torch.randn(batch, self.cfg.latent_dim, generator=generator, device=device)
        noise_shape = (batch, steps, self.cfg.noise_channels, *self.noise_hw)
        return z, torch.randn(noise_shape, generator=generator, device=device)

    @torch.no_grad()
    def set_lower(self, lower: torch.Tensor) -> None:
        """(C,) lower bounds in normalized space (``Transforms.normalized_lower``), -inf for none."""
        bounded = torch.isfinite(lower)
        self.has_lower.copy_(bounded)
        self.lower.copy_(torch.where(bounded, lower, 0.0))

    def bounded(self, x: torch.Tensor) -> torch.Tensor:
        """(B, T, C, H, W) output clamped to ``lower`` where a channel has one: zero is
        then a value G can produce exactly and often, as the data's dry or empty cells are."""
        lower = torch.where(self.has_lower, self.lower, -math.inf).to(x.dtype)
        return torch.maximum(x, lower.view(1, 1, -1, 1, 1))

    def to_grid(self, x: torch.Tensor) -> torch.Tensor:
        """(..., H', W') made on the padded grid -> (..., H, W), the data's grid."""
        return layers.crop_grid(x, self.height, self.width)

    def encode_context(self, encoder: nn.Module, context: torch.Tensor) -> torch.Tensor:
        """Context (B, T_in, C, H, W) padded to the model's grid, through ``encoder``."""
        return encoder(layers.pad_grid(context, *self.padded_hw))

    def scale_noise(self, noise: torch.Tensor) -> torch.Tensor:
        """Noise (B, steps, noise_channels, h, w) times the learned per-channel strength."""
        return noise * self.noise_strength.view(1, 1, -1, 1, 1)

    def check_inputs(
        self,
        z: torch.Tensor,
        noise: torch.Tensor,
        context: torch.Tensor | None,
        calendar: torch.Tensor | None,
        frames: int,
    ) -> None:
        b = z.shape[0]
        _expect("z", z, (b, self.cfg.latent_dim))
        if self.calendar_features or calendar is not None:
            if calendar is None:
                raise ValueError(
                    f"this generator needs calendar (B, T, {self.calendar_features}) features"
                )
            _expect("calendar", calendar, (b, frames, self.calendar_features))
        _expect("noise", noise, (b, noise.shape[1], self.cfg.noise_channels, *self.noise_hw))
        if self.cfg.conditional != (context is not None):
            need = "needs" if self.cfg.conditional else "takes no"
            raise ValueError(
                f"this generator {need} context frames (conditional={self.cfg.conditional})"
            )
        if context is not None:
            _expect(
                "context",
                context,
                (b, self.cfg.context_frames, self.channels, self.height, self.width),
            )


class RecurrentGenerator(Generator):
    """ConvGRU/ConvLSTM generator, unrolled over time at low resolution."""

    def __init__(
        self,
        cfg: GeneratorConfig,
        channels: int,
        height: int,
        width: int,
        frames: int,
        calendar_features: int = 0,
        *,
        cell: type[nn.Module],
    ):
        super().__init__(cfg, channels, height, width, frames, calendar_features)
        c0, sn = cfg.base_channels, cfg.spectral_norm
        self.z_proj = layers.linear(cfg.latent_dim, c0 * self.low_hw[0] * self.low_hw[1], sn=sn)
        stem_in = c0 + cfg.noise_channels + cfg.time_features + calendar_features
        self.stem = layers.conv_stack(2, stem_in, c0, 1, sn=sn)
        self.cells = nn.ModuleList(cell(c0, c0, sn=sn) for _ in range(cfg.num_layers))
        # The initial state: the encoded context, or (unconditional) a map of z. From a
        # zero state every sequence began at the same point and drifted to its z's fixed
        # point, so all samples shared one transient and frames hardly changed within one.
        states = cfg.num_layers * c0
        self.encoder = ContextEncoder(cfg, channels, states) if cfg.conditional else None
        self.state_proj = (
            None
            if cfg.conditional
            else layers.linear(cfg.latent_dim, states * self.low_hw[0] * self.low_hw[1], sn=sn)
        )
        self.decoder = FrameDecoder(cfg, channels)

    def initial_states(self, z: torch.Tensor, context: torch.Tensor | None) -> list:
        """One state per cell, from the encoded context or from z (split per cell)."""
        if self.encoder is None:
            h = torch.tanh(self.state_proj(z)).view(len(z), -1, *self.low_hw)
        else:
            h = self.encode_context(self.encoder, context)
        hs = h.chunk(len(self.cells), dim=1)  # each (B, C0, h, w)
        return [cell.initial_state(h) for cell, h in zip(self.cells, hs, strict=True)]

    def clock(self, z: torch.Tensor, steps: int) -> torch.Tensor:
        """(B, steps, time_features) clock inputs, which drive the state through the window.

        With constant inputs the recurrence settled on a fixed point within a few steps
        and frames stopped changing (a traffic day's swing was lost). Windows start
        anywhere in the data's cycles, so an unconditional sample starts its clock at a
        uniform random phase in [0, 2T), read from z[:, 0] (its normal CDF): G draws each
        cycle at any phase. A conditional G starts at 0 and reads the phase from the context.
        """
        if self.cfg.conditional:
            phase = torch.zeros_like(z[:, 0])
        else:
            phase = 2 * self.frames * torch.special.ndtr(z[:, 0])
        return layers.window_clock(steps, self.frames, self.cfg.time_features, phase)

    def forward(
        self,
        z: torch.Tensor,
        noise: torch.Tensor,
        context: torch.Tensor | None = None,
        calendar: torch.Tensor | None = None,
    ) -> torch.Tensor:
        b, t = noise.shape[:2]
        self.check_inputs(z, noise, context, calendar, t)
        z_map = self.z_proj(z).view(b, -1, *self.low_hw)  # (B, C0, h, w)
        fine = None  # the decoder's noise (B*T, noise_channels, H', W')
        if self.cfg.decoder_noise:
            fine, step = noise.flatten(0, 1), 2**self.cfg.up_stages
            noise = noise[..., ::step, ::step]  # the stem's: on the recurrence's grid
        noise = self.scale_noise(noise)  # (B, T, noise_channels, h, w)
        states = self.initial_states(z, context)
        clock = self.clock(z, t)
        if self.calendar_features:
            clock = torch.cat([clock, calendar.to(clock.dtype)], dim=2)  # (B, T, K + F)
        clock = clock[..., None, None].expand(-1, -1, -1, *self.low_hw)  # (B, T, K + F, h, w)
        inputs = StemInputs(per_sequence=[z_map], per_step=[noise, clock])
        x = self.stem_all_steps(inputs)  # (B, T, C0, h, w)
        for i, cell in enumerate(self.cells):  # layer by layer: each one over all steps
            x, states[i] = cell.unroll(x, states[i])
        x = self.to_grid(self.decoder(x.flatten(0, 1), fine))  # (B*T, C, H, W)
        return self.bounded(self.out_act(x.view(b, t, *x.shape[1:])))  # (B, T, C, H, W)

    def stem_all_steps(self, inputs: StemInputs) -> torch.Tensor:
        """The stem (conv -> LeakyReLU) on every step's inputs -> (B, T, C0, h, w).

        The stem does not depend on the recurrent state, so all steps go through it at
        once, and the part of its convolution that sees the per-sequence inputs (z's map)
        is computed once per sequence: the same function as the stem on each step's
        concatenated inputs, up to float rounding. A spectral-normalized stem runs once
        per step, as it always did (its power iteration advances at every call).
        """
        conv, act = self.stem
        if layers.is_parametrized(conv):
            return torch.stack([self.stem(inputs.at(s)) for s in range(inputs.steps)], dim=1)
        seq_weight, step_weight = layers.channel_split(conv, inputs.sequence_channels)
        per_sequence = layers.conv_same(inputs.sequence(), seq_weight, conv.bias)  # (B, C0, h, w)
        steps = inputs.steps_stacked()  # (B, T, C_step, h, w)
        per_step = layers.conv_same(steps.flatten(0, 1), step_weight)  # (B*T, C0, h, w)
        per_step = per_step.view(*steps.shape[:2], *per_step.shape[1:])
        return act(per_step + per_sequence[:, None])  # (B, T, C0, h, w)


@dataclasses.dataclass
class StemInputs:
    """What the recurrent generator's stem sees at each step, in channel order: the
    per-sequence maps (the same at every step, each (B, c, h, w)), then the per-step ones
    (each (B, T, c, h, w)). A new input is one more entry in its list (and its channels
    in the stem's ``stem_in``)."""

    per_sequence: list[torch.Tensor]
    per_step: list[torch.Tensor]

    @property
    def steps(self) -> int:
        return self.per_step[0].shape[1]

    @property
    def sequence_channels(self) -> int:
        return sum(x.shape[1] for x in self.per_sequence)

    def sequence(self) -> torch.Tensor:
        """(B, C_seq, h, w): the per-sequence maps concatenated."""
        return torch.cat(self.per_sequence, dim=1)

    def steps_stacked(self) -> torch.Tensor:
        """(B, T, C_step, h, w): the per-step maps concatenated."""
        return torch.cat(self.per_step, dim=2)

    def at(self, step: int) -> torch.Tensor:
        """(B, C_seq + C_step, h, w): every input at ``step``, concatenated."""
        return torch.cat([*self.per_sequence, *(x[:, step] for x in self.per_step)], dim=1)


class Conv3dGenerator(Generator):
    """z -> (C0, T/ft, h, w) volume -> ``up_stages`` x (upsample -> 3D convs)."""

    def __init__(
        self,
        cfg: GeneratorConfig,
        channels: int,
        height: int,
        width: int,
        frames: int,
        calendar_features: int = 0,
    ):
        super().__init__(cfg, channels, height, width, frames, calendar_features)
        layers.check_frames(frames, 2**cfg.temporal_up_stages, "generator")
        c0, sn = cfg.base_channels, cfg.spectral_norm
        self.low_t = frames // 2**cfg.temporal_up_stages
        volume = c0 * self.low_t
        self.z_proj = layers.linear(cfg.latent_dim, volume * self.low_hw[0] * self.low_hw[1], sn=sn)
        self.encoder = ContextEncoder(cfg, channels, volume) if cfg.conditional else None
        stem_in = c0 * (2 if cfg.conditional else 1) + cfg.noise_channels + calendar_features
        blocks = [layers.conv_stack(3, stem_in, c0, cfg.num_layers, sn=sn)]
        chans = [layers.stage_channels(c0, s) for s in range(cfg.up_stages + 1)]
        for stage, (c_in, c_out) in enumerate(pairwise(chans)):
            scale = (2 if stage < cfg.temporal_up_stages else 1, 2, 2)
            blocks += [
                nn.Upsample(scale_factor=scale),
                layers.conv_stack(3, c_in, c_out, cfg.num_layers, sn=sn),
            ]
        blocks.append(layers.conv(3, chans[-1], channels, sn=sn))
        self.net = nn.Sequential(*blocks)

    def noise_steps(self, frames: int) -> int:
        if frames != self.frames:
            raise ValueError(
                f"conv3d generator was built for {self.frames} frames, asked for {frames}"
            )
        return self.low_t

    def forward(
        self,
        z: torch.Tensor,
        noise: torch.Tensor,
        context: torch.Tensor | None = None,
        calendar: torch.Tensor | None = None,
    ) -> torch.Tensor:
        self.check_inputs(z, noise, context, calendar, self.frames)
        _expect("noise", noise, (z.shape[0], self.low_t, *noise.shape[2:]))
        b = z.shape[0]
        parts = [self.z_proj(z).view(b, -1, self.low_t, *self.low_hw)]  # (B, C0, t, h, w)
        parts.append(self.scale_noise(noise).transpose(1, 2))  # (B, nc, t, h, w)
        if self.calendar_features:
            # each low step gets the mean features of the frames it becomes
            pooled = calendar.view(b, self.low_t, -1, self.calendar_features).mean(dim=2)
            planes = pooled.transpose(1, 2)[..., None, None].expand(-1, -1, -1, *self.low_hw)
            parts.append(planes.to(parts[0].dtype))  # (B, F, t, h, w)
        if self.encoder is not None:
            encoded = self.encode_context(self.encoder, context)  # (B, C0*t, h, w)
            parts.append(encoded.view(b, -1, self.low_t, *self.low_hw))  # (B, C0, t, h, w)
        x = self.to_grid(self.net(torch.cat(parts, dim=1)))  # (B, C, T, H, W)
        return self.bounded(self.out_act(x.transpose(1, 2)))  # (B, T, C, H, W)
