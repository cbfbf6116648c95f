"""Report scalars from anywhere in the step; average and write them in one place."""

from __future__ import annotations

from collections import defaultdict

import torch
import torch.distributed as dist


class Stats:
    """Collects ``report(name, value)`` calls and gives the means since the last ``collect``.

    Under ``torch.distributed`` the means are averaged across ranks, so every
    rank must call ``collect`` at the same steps.
    """

    def __init__(self) -> None:
        self._sums: dict[str, float] = defaultdict(float)
        self._counts: dict[str, int] = defaultdict(int)

    def report(self, name: str, value: float | torch.Tensor) -> None:
        self._sums[name] += (
            float(value.detach()) if isinstance(value, torch.Tensor) else float(value)
        )
        self._counts[name] += 1

    def collect(self) -> dict[str, float]:
        names = sorted(self._sums)
        means = torch.tensor([self._sums[n] / self._counts[n] for n in names], dtype=torch.float64)
        if dist.is_available() and dist.is_initialized() and names:
            dist.all_reduce(means)
            means /= dist.get_world_size()
        self._sums.clear()
        self._counts.clear()
        return dict(zip(names, means.tolist()))
