"""Building blocks shared by the generators and discriminators.

Layout inside the blocks is PyTorch's channels-first: ``(N, C, H, W)`` for 2D and
``(N, C, T, H, W)`` for 3D; the models convert from and to ``(B, T, C, H, W)``.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize
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


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) or (N, C, T, H, W) stored channels-last (NHWC / NDHWC), the layout in
    which oneDNN's CPU convolutions and their backward run fastest at stgan's channel
    counts (about 2x for the generator's decoder, 1.2x for the discriminators); the
    values and the shape stay the same."""
    fmt = torch.channels_last if x.dim() == 4 else torch.channels_last_3d
    return x.contiguous(memory_format=fmt)


def is_parametrized(module: nn.Module) -> bool:
    """Whether ``module``'s weight is recomputed at each access (spectral norm)."""
    return parametrize.is_parametrized(module)


def channel_split(conv: nn.Conv2d, channels: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``conv``'s weight split at input channel ``channels``: the parts that see the first
    ``channels`` channels of its input and the rest, so that ``conv(cat([a, b]))`` is
    ``F.conv2d(a, first) + F.conv2d(b, rest)`` plus the bias (a conv is linear in its input
    and 'same' zero padding pads each channel alone)."""
    weight = conv.weight
    return weight[:, :channels], weight[:, channels:]


def conv_same(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None):
    """A stride-1 2D convolution with 'same' zero padding, as :func:`conv` builds them."""
    return F.conv2d(x, weight, bias, padding=weight.shape[-1] // 2)


class RecurrentCell(nn.Module):
    """A convolutional recurrent cell: ``forward`` takes one step; ``unroll`` takes all.

    ``unroll`` computes the part of each gate convolution that sees the input for every
    step in one batched convolution (the input does not depend on the state), and only
    the part that sees the state step by step: the same function as ``forward`` step by
    step, up to float rounding. A spectral-normalized cell steps ``forward`` (its power
    iteration advances at every call, as it always did).
    """

    in_channels: int
    hidden_channels: int

    def initial_state(self, h: torch.Tensor):
        return h

    def unroll(self, xs: torch.Tensor, state) -> tuple[torch.Tensor, object]:
        """Inputs (B, T, in, h, w) from ``state`` -> outputs (B, T, hidden, h, w), last state."""
        if any(is_parametrized(m) for m in self.children()):
            outputs = []
            for step in range(xs.shape[1]):
                out, state = self(xs[:, step], state)
                outputs.append(out)
            return torch.stack(outputs, dim=1), state
        b, t = xs.shape[:2]
        x_parts = self.input_parts(xs.flatten(0, 1))  # (B*T, gates, h, w)
        # one view per step at once: indexing step by step would zero-fill and add a
        # full-size gradient for every step in the backward pass
        x_parts = x_parts.view(b, t, *x_parts.shape[1:]).unbind(1)
        # the state's weights sliced once (contiguous): their gradient is summed over the
        # steps in one tensor, not scattered into a zero-filled weight at every step
        weights = [w.contiguous() for w in self.state_weights()]
        outputs = []
        for x_part in x_parts:
            out, state = self.step(x_part, state, *weights)
            outputs.append(out)
        return torch.stack(outputs, dim=1), state  # (B, T, hidden, h, w)


class ConvGRUCell(RecurrentCell):
    """Convolutional GRU: the state is one map ``h`` of shape (B, hidden, h, w)."""

    def __init__(self, in_channels: int, hidden_channels: int, *, sn: bool = False):
        super().__init__()
        self.in_channels, self.hidden_channels = in_channels, hidden_channels
        self.gates = conv(2, in_channels + hidden_channels, 2 * hidden_channels, sn=sn)
        self.candidate = conv(2, in_channels + hidden_channels, hidden_channels, sn=sn)
        # Update gate starting near sigmoid(-2) = 0.12: the state is a slow, leaky memory
        # of its inputs, so frames start correlated in time as geophysical and traffic
        # fields are (lag-1 autocorrelation 0.6-0.9), and G learns faster changes where
        # the data have them. With a zero bias half the state was replaced at every step.
        with torch.no_grad():
            self.gates.bias[hidden_channels:] = UPDATE_GATE_BIAS

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        reset, update = torch.sigmoid(self.gates(torch.cat([x, h], dim=1))).chunk(2, dim=1)
        candidate = torch.tanh(self.candidate(torch.cat([x, reset * h], dim=1)))
        h = (1 - update) * h + update * candidate  # (B, hidden, h, w)
        return h, h

    def input_parts(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in, h, w) -> (N, 3 * hidden, h, w): what the input adds to the gates (reset,
        update) and to the candidate, biases included."""
        gates_x, _ = channel_split(self.gates, self.in_channels)
        candidate_x, _ = channel_split(self.candidate, self.in_channels)
        weight = torch.cat([gates_x, candidate_x])
        return conv_same(x, weight, torch.cat([self.gates.bias, self.candidate.bias]))

    def state_weights(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The parts of the gates' and the candidate's weights that see the state."""
        return (
            channel_split(self.gates, self.in_channels)[1],
            channel_split(self.candidate, self.in_channels)[1],
        )

    def step(
        self,
        x_part: torch.Tensor,
        h: torch.Tensor,
        gates_h: torch.Tensor,
        candidate_h: torch.Tensor,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``forward`` given the input's part of the convolutions (:meth:`input_parts`) and
        the state's weights (:meth:`state_weights`)."""
        gates_x, candidate_x = x_part.split([2 * self.hidden_channels, self.hidden_channels], 1)
        gates = torch.sigmoid(gates_x + conv_same(h, gates_h))
        reset, update = gates.chunk(2, dim=1)
        candidate = torch.tanh(candidate_x + conv_same(reset * h, candidate_h))
        h = torch.lerp(h, candidate, update)  # (1 - update) * h + update * candidate
        return h, h


class ConvLSTMCell(RecurrentCell):
    """Convolutional LSTM: the state is ``(h, c)``, each (B, hidden, h, w)."""

    def __init__(self, in_channels: int, hidden_channels: int, *, sn: bool = False):
        super().__init__()
        self.in_channels, self.hidden_channels = in_channels, hidden_channels
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
        return self._cell(self.gates(torch.cat([x, h], dim=1)), c)

    def input_parts(self, x: torch.Tensor) -> torch.Tensor:
        """(N, in, h, w) -> (N, 4 * hidden, h, w): the input's part of the gates, bias included."""
        gates_x, _ = channel_split(self.gates, self.in_channels)
        return conv_same(x, gates_x, self.gates.bias)

    def state_weights(self) -> tuple[torch.Tensor]:
        """The part of the gates' weight that sees the state."""
        return (channel_split(self.gates, self.in_channels)[1],)

    def step(
        self, x_part: torch.Tensor, state: tuple[torch.Tensor, torch.Tensor], gates_h: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """``forward`` given the input's part of the gates (:meth:`input_parts`) and the
        state's weights (:meth:`state_weights`)."""
        h, c = state
        return self._cell(x_part + conv_same(h, gates_h), c)

    @staticmethod
    def _cell(
        gates: torch.Tensor, c: torch.Tensor
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        i, f, o, g = gates.chunk(4, dim=1)
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
        # the variance over the group written out: Tensor.var over a leading dim is a
        # strided reduction, 25x slower on CPU for D's (4, 16, 128, 4, 4)
        var = (y - y.mean(dim=0)).square().mean(dim=0)  # (N/G, C, *S)
        std = (var + 1e-8).sqrt()
        std = std.flatten(1).mean(dim=1)  # (N/G,)
        std = std.repeat(group).view(n, 1, *[1] * (len(rest) - 1))  # (N, 1, 1...)
        return torch.cat([x, std.expand(n, 1, *rest[1:])], dim=1)  # (N, C + 1, *S)
