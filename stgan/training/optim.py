"""Optimizers (TTUR), learning-rate schedules with warm-up, and the EMA of G."""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from stgan.training.config import OptimConfig


def adam_pair(
    g: nn.Module, d: nn.Module, cfg: OptimConfig
) -> tuple[torch.optim.Adam, torch.optim.Adam]:
    """Separate Adam optimizers for G and D: their own rates and betas (TTUR).

    Both update all their tensors at once (``foreach``: the same update, fewer kernel
    calls; PyTorch turns it on by default on CUDA only, where on CPU it is as fast or faster).
    """
    return (
        torch.optim.Adam(g.parameters(), lr=cfg.lr_g, betas=cfg.betas_g, foreach=True),
        torch.optim.Adam(d.parameters(), lr=cfg.lr_d, betas=cfg.betas_d, foreach=True),
    )


def lr_factor(step: int, cfg: OptimConfig, total_steps: int) -> float:
    """The multiplier of the base LR at ``step``: linear warm-up, then the schedule."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    t = step - cfg.warmup_steps
    low = cfg.min_lr_factor
    if cfg.schedule == "step":
        return cfg.gamma ** (t // cfg.step_size)
    if cfg.schedule == "cosine":
        span = max(total_steps - cfg.warmup_steps, 1)
        return low + (1 - low) * 0.5 * (1 + math.cos(math.pi * min(t / span, 1.0)))
    if cfg.schedule == "cyclic":
        phase = (t % cfg.cycle_steps) / cfg.cycle_steps  # triangular: up then down
        return low + (1 - low) * (1 - abs(2 * phase - 1))
    return 1.0


def scheduler(optimizer: torch.optim.Optimizer, cfg: OptimConfig, total_steps: int):
    return torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, cfg, total_steps)
    )


class EMA:
    """Exponential moving average of a model's parameters (buffers are copied).

    ``ema = decay * ema + (1 - decay) * param`` after each G step.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.decay = decay
        self.model = copy.deepcopy(model).eval().requires_grad_(False)

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """One step of the average, all tensors at once (``torch._foreach_*``)."""
        torch._foreach_lerp_(
            list(self.model.parameters()), list(model.parameters()), 1.0 - self.decay
        )
        buffers = list(self.model.buffers())
        if buffers:
            torch._foreach_copy_(buffers, list(model.buffers()))
