"""Building blocks shared by the generators and discriminators.

Layout inside the blocks is PyTorch's channels-first: ``(N, C, H, W)`` for 2D and
``(N, C, T, H, W)`` for 3D; the models convert from and to ``(B, T, C, H, W)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm

from stgan.errors import StganError

SLOPE = 0.2  # LeakyReLU slope, as in StyleGAN/DCGAN
UPDATE_GATE_BIAS = -2.0  # initial bias of a recurrent cell's update gate (see ConvGRUCell)


def he_init(layer: nn.Module) -> nn.Module:
    """He (Kaiming) normal weights for a LeakyReLU net and zero biases.

    PyTorch's default init shrinks the signal at each layer: a default-initialized
    generator's output varies about 400x less between latents than standardized data,
    so G starts collapsed and stays so. He init keeps the variance about constant.
    """
    nn.init.kaiming_normal_(layer.weight, a=SLOPE, nonlinearity="leaky_relu")
    if layer.bias is not None:
        nn.init.zeros_(layer.bias)
    return layer


def maybe_sn(module: nn.Module, enabled: bool) -> nn.Module:
    """Wrap ``module``'s weight in spectral normalization when ``enabled``."""
    return spectral_norm(module) if enabled else module


def conv(
    dims: int,
    in_channels: int,
    out_channels: int,
    *,
    kernel: int = 3,
    stride: int = 1,
    sn: bool = False,
) -> nn.Module:
    """A 2D or 3D convolution with 'same' padding (halved size when ``stride=2``)."""
    conv_cls = {2: nn.Conv2d, 3: nn.Conv3d}[dims]
    layer = conv_cls(in_channels, out_channels, kernel, stride=stride, padding=kernel // 2)
    return maybe_sn(he_init(layer), sn)


def linear(in_features: int, out_features: int, *, sn: bool = False) -> nn.Module:
    return maybe_sn(he_init(nn.Linear(in_features, out_features)), sn)


def conv_stack(
    dims: int, in_channels: int, out_channels: int, depth: int, *, sn: bool
) -> nn.Sequential:
    """``depth`` x (3^dims conv -> LeakyReLU), the first one changing the channels."""
    layers: list[nn.Module] = []
    for i in range(depth):
        layers += [
            conv(dims, in_channels if i == 0 else out_channels, out_channels, sn=sn),
            nn.LeakyReLU(SLOPE),
        ]
    return nn.Sequential(*layers)


def window_clock(steps: int, frames: int, features: int, phase: torch.Tensor) -> torch.Tensor:
    """(B, steps, features): sines and cosines of each step's place on a clock.

    Pair ``k`` (k = 1 .. features / 2) has period ``2 * frames / k`` (2T, T, 2T/3, ...);
    sample ``b`` starts at ``phase[b]`` steps. A step past ``frames`` continues the waves.
    """
    t = torch.arange(steps, dtype=phase.dtype, device=phase.device)
    k = torch.arange(1, features // 2 + 1, dtype=phase.dtype, device=phase.device)
    angle = torch.pi * (phase[:, None, None] + t[None, :, None]) * k / frames  # (B, T, K/2)
    return torch.cat([torch.sin(angle), torch.cos(angle)], dim=2)


def stage_channels(base: int, stage: int) -> int:
    """Channels ``stage`` doublings above the lowest resolution: halved each time, >= 8."""
    return max(base // 2**stage, min(base, 8))


def padded_size(size: int, factor: int) -> int:
    """``size`` rounded up to a multiple of ``factor``: the grid a model works on."""
    return -(-size // factor) * factor


def pad_grid(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(..., H, W) -> (..., height, width), padded about equally on both sides.

    Reflect padding, so the padded rim continues the field's texture instead of a
    constant edge a discriminator could learn to spot; replicate on an axis where the
    pad is not smaller than the grid (reflect needs a mirror image to copy).
    :func:`crop_grid` undoes it exactly.
    """
    *lead, h, w = x.shape
    if (h, w) == (height, width):
        return x
    flat = x.reshape(-1, 1, h, w)  # (N, 1, H, W): F.pad's reflect wants 3-4D here
    top, left = (height - h) // 2, (width - w) // 2
    for pad, size in (((0, 0, top, height - h - top), h), ((left, width - w - left, 0, 0), w)):
        if any(pad):
            mode = "reflect" if max(pad) < size else "replicate"
            flat = F.pad(flat, pad, mode=mode)
    return flat.reshape(*lead, height, width)


def crop_grid(x: torch.Tensor, height: int, width: int) -> torch.Tensor:
    """(..., H', W') -> (..., height, width): the interior :func:`pad_grid` padded around."""
    top, left = (x.shape[-2] - height) // 2, (x.shape[-1] - width) // 2
    return x[..., top : top + height, left : left + width]


def check_frames(frames: int, factor: int, who: str) -> None:
    """Raise if ``frames`` does not divide by ``who``'s temporal ``factor``."""
    if frames % factor:
        raise StganError(
            f"{frames} frames are not divisible by {factor} (the {who}'s temporal factor); "
            f"use a window length divisible by {factor}, e.g. {max(frames // factor, 1) * factor}"
        )


class ConvGRUCell(nn.Module):
    """Convolutional GRU: the state is one map ``h`` of shape (B, hidden, h, w)."""

    def __init__(self, in_channels: int, hidden_channels: int, *, sn: bool = False):
        super().__init__()
        self.gates = conv(2, in_channels + hidden_channels, 2 * hidden_channels, sn=sn)
        self.candidate = conv(2, in_channels + hidden_channels, hidden_channels, sn=sn)
        # Update gate starting near sigmoid(-2) = 0.12: the state is a slow, leaky memory
        # of its inputs, so frames start correlated in time as geophysical and traffic
        # fields are (lag-1 autocorrelation 0.6-0.9), and G learns faster changes where
        # the data have them. With a zero bias half the state was replaced at every step.
        with torch.no_grad():
            self.gates.bias[hidden_channels:] = UPDATE_GATE_BIAS

    def initial_state(self, h: torch.Tensor) -> torch.Tensor:
        return h

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        reset, update = torch.sigmoid(self.gates(torch.cat([x, h], dim=1))).chunk(2, dim=1)
        candidate = torch.tanh(self.candidate(torch.cat([x, reset * h], dim=1)))
        h = (1 - update) * h + update * candidate  # (B, hidden, h, w)
        return h, h


class ConvLSTMCell(nn.Module):
    """Convolutional LSTM: the state is ``(h, c)``, each (B, hidden, h, w)."""

    def __init__(self, in_channels: int, hidden_channels: int, *, sn: bool = False):
        super().__init__()
        self.gates = conv(2, in_channels + hidden_channels, 4 * hidden_channels, sn=sn)
        # forget gate biased to keep the cell (Jozefowicz et al. 2015), as the GRU above
        with torch.no_grad():
            self.gates.bias[hidden_channels : 2 * hidden_channels] = -UPDATE_GATE_BIAS

    def initial_state(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return h, torch.zeros_like(h)

    def forward(
        self, x: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor]
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        h, c = state
        i, f, o, g = self.gates(torch.cat([x, h], dim=1)).chunk(4, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)  # (B, hidden, h, w)
        return h, (h, c)


class MinibatchStd(nn.Module):
    """Append the mean per-group standard deviation as one extra channel (StyleGAN).

    Works on any ``(N, C, *spatial)``; the group is the largest divisor of N up to
    ``group_size``, so odd batch sizes still work.
    """

    def __init__(self, group_size: int = 4):
        super().__init__()
        self.group_size = group_size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, *rest = x.shape
        group = math.gcd(n, self.group_size)
        y = x.reshape(group, n // group, *rest)  # (G, N/G, C, *S)
        std = (y.var(dim=0, unbiased=False) + 1e-8).sqrt()  # (N/G, C, *S)
        std = std.flatten(1).mean(dim=1)  # (N/G,)
        std = std.repeat(group).view(n, 1, *[1] * (len(rest) - 1))  # (N, 1, 1...)
        return torch.cat([x, std.expand(n, 1, *rest[1:])], dim=1)  # (N, C + 1, *S)
