"""Differentiable augmentation of D's inputs (DiffAugment, Zhao et al. 2020), in space and time.

With few training windows D learns them by heart and stops teaching G. DiffAugment
transforms every sequence D sees, real and fake alike and in both phases, with
differentiable operations, so G's gradient passes through them and G is not taught to
make the transformed sequences. Each sample gets its own draw; cells moved in from
outside the window are zero (the mean, in normalized units), as in DiffAugment:

- ``translation``: a spatial shift of up to 1/8 of the grid each way;
- ``cutout``: a rectangle of half the grid's height and width zeroed in every frame;
- ``time_shift``: a shift along time of up to 1/8 of the window's frames.

A conditional model's context frames move with the sequence (they are one sequence in
time); a calendar's features move with their frames under ``time_shift``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal, get_args

import torch

Tensor = torch.Tensor

Augmentation = Literal["translation", "cutout", "time_shift"]  # what ``loss.augment`` names
AUGMENTATIONS = get_args(Augmentation)
SHIFT_RATIO = 1 / 8  # translation and time_shift: the largest shift, as a share of the axis
CUTOUT_RATIO = 1 / 2  # the cut-out rectangle's sides, as a share of the grid's


def augment(
    policies: Sequence[str],
    x: Tensor,
    mask: Tensor,
    context: Tensor | None = None,
    calendar: Tensor | None = None,
) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
    """``x`` and its mask (B, T, C, H, W), the context (B, T_in, C, H, W) before them and
    the calendar (B, T_in + T, F) of their frames, each augmented by ``policies`` in order
    (one draw per sample, shared by all four). Cells moved in from outside are invalid in
    the mask as they are zero in ``x``."""
    if not policies:
        return x, mask, context, calendar
    channels = x.shape[2]
    frames = torch.cat([x, mask.to(x.dtype)], dim=2)  # the mask moves with its cells
    if context is not None:
        frames = torch.cat([torch.cat([context, torch.ones_like(context)], dim=2), frames], 1)
    for policy in policies:
        if policy == "translation":
            frames = translate(frames)
        elif policy == "cutout":
            frames = cutout(frames)
        elif policy == "time_shift":
            frames, calendar = time_shift(frames, calendar)
        else:
            raise ValueError(f"unknown augmentation {policy!r}; one of {AUGMENTATIONS}")
    before = 0 if context is None else context.shape[1]
    x, mask = frames[:, before:, :channels], (frames[:, before:, channels:] > 0).to(mask.dtype)
    context = None if context is None else frames[:, :before, :channels]
    return x, mask, context, calendar


def shifted_positions(size: int, batch: int, ratio: float, device: torch.device) -> Tensor:
    """(batch, size) source position of each position after a random shift of up to
    ``round(size * ratio)`` either way; -1 where the source lies outside."""
    reach = int(size * ratio + 0.5)
    shift = torch.randint(-reach, reach + 1, (batch, 1), device=device)
    source = torch.arange(size, device=device) + shift
    return torch.where((source >= 0) & (source < size), source, -1)


def translate(x: Tensor, ratio: float = SHIFT_RATIO) -> Tensor:
    """(B, T, C, H, W) shifted in y and x per sample, zero where nothing moved in."""
    b, t, c, h, w = x.shape
    ys = shifted_positions(h, b, ratio, x.device)[:, :, None]  # (B, H, 1)
    xs = shifted_positions(w, b, ratio, x.device)[:, None, :]  # (B, 1, W)
    valid = (ys >= 0) & (xs >= 0)  # (B, H, W)
    cells = (ys.clamp(min=0) * w + xs.clamp(min=0)).view(b, 1, 1, h * w).expand(b, t, c, h * w)
    moved = x.flatten(3).gather(3, cells).view_as(x)
    return moved * valid[:, None, None].to(x.dtype)


def cutout(x: Tensor, ratio: float = CUTOUT_RATIO) -> Tensor:
    """(B, T, C, H, W) with a rectangle of ``ratio`` of each side zeroed in every frame, its
    centre drawn per sample anywhere on the grid (DiffAugment's cutout)."""
    b, _, _, h, w = x.shape
    inside = [_cut_range(size, b, ratio, x.device) for size in (h, w)]  # (B, H), (B, W)
    keep = ~(inside[0][:, :, None] & inside[1][:, None, :])  # (B, H, W)
    return x * keep[:, None, None].to(x.dtype)


def _cut_range(size: int, batch: int, ratio: float, device: torch.device) -> Tensor:
    """(batch, size): True on a run of ``round(size * ratio)`` positions about a random centre."""
    side = int(size * ratio + 0.5)
    centre = torch.randint(0, size + (1 - side % 2), (batch, 1), device=device)
    position = torch.arange(size, device=device)
    return (position >= centre - side // 2) & (position < centre - side // 2 + side)


def time_shift(
    x: Tensor, calendar: Tensor | None = None, ratio: float = SHIFT_RATIO
) -> tuple[Tensor, Tensor | None]:
    """(B, T, C, H, W) shifted along time per sample, zero frames where nothing moved in;
    the calendar (B, T, F) moved with its frames."""
    b, t = x.shape[:2]
    frames = shifted_positions(t, b, ratio, x.device)  # (B, T)
    valid = (frames >= 0).to(x.dtype)
    index = frames.clamp(min=0)
    moved = x.gather(1, index.view(b, t, 1, 1, 1).expand_as(x)) * valid.view(b, t, 1, 1, 1)
    if calendar is None:
        return moved, None
    if calendar.shape[1] != t:
        raise ValueError(f"calendar has {calendar.shape[1]} frames, the sequence {t}")
    index = index[..., None].expand_as(calendar)
    return moved, calendar.gather(1, index) * valid[..., None].to(calendar.dtype)
