"""Discriminators: (B, T, C, H, W) sequences (+ context) -> one logit per sample (B,).

- ``Conv3dDiscriminator`` (``conv3d``): strided 3D convs over (T, H, W).
- ``DualDiscriminator`` (``dual``, as in DGMR): a spatial 2D D on ``num_frames`` random
  frames plus a temporal 3D D on the 2x avg-pooled sequence, scores summed.

With ``increments`` the 3D trunk also sees each frame's change from the one before.

In conditional mode pass ``context`` (B, T_in, C, H, W): it is concatenated before the
sequence along time, so D judges whether the future continues the context. A D built
with ``calendar_features`` F > 0 takes ``calendar`` (B, T_in + T, F), the calendar
features of each frame (context first), as F constant input channels beside the data's
C, so it can tell a sequence that does not fit its calendar time. Each trunk
reflect-pads the grid to its factor ``2**num_stages``, so any grid size and any number
of frames works.
"""

from __future__ import annotations

from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn

from stgan.models import layers
from stgan.models.config import DiscriminatorConfig


class ConvTrunk(nn.Module):
    """(N, C, *S) -> (N,): stem -> ``num_stages`` x (conv, stride-2 conv) -> mbstd -> conv -> mean -> linear."""

    def __init__(
        self, dims: int, cfg: DiscriminatorConfig, channels: int, increments: bool = False
    ):
        super().__init__()
        sn, base = cfg.spectral_norm, cfg.base_channels
        chans = [base * 2**s for s in range(cfg.num_stages + 1)]
        # 3D with ``increments``: the input's frames and their changes (with_increments)
        self.increments = increments
        blocks = [layers.conv_stack(dims, channels * (1 + increments), base, 1, sn=sn)]
        for c_in, c_out in pairwise(chans):
            blocks += [
                layers.conv_stack(dims, c_in, c_in, 1, sn=sn),
                layers.conv(dims, c_in, c_out, stride=2, sn=sn),  # halves every axis
                nn.LeakyReLU(layers.SLOPE),
            ]
        if cfg.minibatch_std:
            blocks.append(layers.MinibatchStd(cfg.minibatch_std_group))
        blocks.append(
            layers.conv_stack(dims, chans[-1] + int(cfg.minibatch_std), chans[-1], 1, sn=sn)
        )
        self.features = nn.Sequential(*blocks)
        self.head = layers.linear(chans[-1], 1, sn=sn)
        self.factor = 2**cfg.num_stages

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.increments:
            x = with_increments(x)  # (N, 2C, T, H, W)
        # a grid not divisible by the stride-2 stages' factor is reflect-padded to it, so
        # no stage pads one edge with zeros (an edge D could tell real from fake by)
        h, w = x.shape[-2:]
        x = layers.pad_grid(
            x, layers.padded_size(h, self.factor), layers.padded_size(w, self.factor)
        )
        x = self.features(layers.channels_last(x)).flatten(2).mean(dim=2)  # (N, C_last)
        return self.head(x).squeeze(1)  # (N,)


def _with_context(x: torch.Tensor, context: torch.Tensor | None) -> torch.Tensor:
    return x if context is None else torch.cat([context, x], dim=1)  # (B, T_in + T, C, H, W)


def with_calendar(x: torch.Tensor, calendar: torch.Tensor | None, features: int) -> torch.Tensor:
    """(B, T', C, H, W) and calendar (B, T', F) -> (B, T', C + F, H, W): each frame's
    calendar features as constant channels. ``features`` (F) is what the D was built for."""
    if not features:
        return x
    b, t = x.shape[:2]
    if calendar is None or tuple(calendar.shape) != (b, t, features):
        got = None if calendar is None else tuple(calendar.shape)
        raise ValueError(f"calendar: expected shape {(b, t, features)}, got {got}")
    planes = calendar.to(x.dtype)[..., None, None].expand(-1, -1, -1, *x.shape[-2:])
    return torch.cat([x, planes], dim=2)  # (B, T', C + F, H, W)


def with_increments(seq: torch.Tensor) -> torch.Tensor:
    """(B, C, T', H, W) -> (B, 2C, T', H, W): each frame and its change from the frame
    before (zero for the first frame)."""
    steps = F.pad(seq.diff(dim=2), (0, 0, 0, 0, 1, 0))  # (B, C, T', H, W)
    return torch.cat([seq, steps], dim=1)


class Conv3dDiscriminator(nn.Module):
    """3D convolutions over the whole (context +) sequence."""

    def __init__(self, cfg: DiscriminatorConfig, channels: int, calendar_features: int = 0):
        super().__init__()
        self.calendar_features = calendar_features
        self.trunk = ConvTrunk(3, cfg, channels + calendar_features, cfg.increments)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        calendar: torch.Tensor | None = None,
    ) -> torch.Tensor:
        x = with_calendar(_with_context(x, context), calendar, self.calendar_features)
        return self.trunk(x.transpose(1, 2))  # (B, C + F, T', H, W) -> (B,)


class DualDiscriminator(nn.Module):
    """Spatial D on random frames + temporal D on the pooled sequence (DGMR).

    The frames are drawn with ``self.generator`` (a CPU ``torch.Generator``) when set,
    else with the global RNG, so seeding makes them reproducible. The spatial D sees
    the generated frames only; the temporal D also sees the context.
    """

    def __init__(self, cfg: DiscriminatorConfig, channels: int, calendar_features: int = 0):
        super().__init__()
        self.num_frames = cfg.num_frames
        self.calendar_features = calendar_features
        self.generator: torch.Generator | None = None
        self.spatial = ConvTrunk(2, cfg, channels + calendar_features)
        self.temporal = ConvTrunk(3, cfg, channels + calendar_features, cfg.increments)

    def forward(
        self,
        x: torch.Tensor,
        context: torch.Tensor | None = None,
        calendar: torch.Tensor | None = None,
    ) -> torch.Tensor:
        b, t = x.shape[:2]
        seq = with_calendar(_with_context(x, context), calendar, self.calendar_features)
        picked = torch.randperm(t, generator=self.generator)[: self.num_frames].to(x.device)
        frames = seq[:, -t:][:, picked].flatten(0, 1)  # (B*num_frames, C + F, H, W)
        spatial = self.spatial(frames).view(b, -1).sum(dim=1)  # (B,)
        seq = seq.transpose(1, 2)  # (B, C + F, T', H, W)
        seq = F.avg_pool3d(seq, (1, 2, 2), ceil_mode=True)  # (B, C + F, T', H/2, W/2)
        return spatial + self.temporal(seq)  # (B,)
