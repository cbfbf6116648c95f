"""A running mean of per-item tensors: the state behind the acf and psd curves."""

from __future__ import annotations

from collections.abc import Callable

import torch

from stgan.errors import DataError
from stgan.metrics.base import Array, add_state, as_tensor

# batch -> (sum over the batch's items, number of items), both tensors
Summarize = Callable[[torch.Tensor], tuple[torch.Tensor, torch.Tensor]]

# On CPU, batches are cut into chunks of about this many values (4 MB in float64): small
# temporaries are reused from cache instead of page-faulted in, which runs 3-7x faster.
# GPUs prefer few large kernels and get the batch whole.
CPU_CHUNK_VALUES = 2**19


class MeanAccumulator:
    """Sum (float64) and count of the items ``summarize`` extracts from each batch.

    Parameters
    ----------
    summarize : callable
        Maps a batch tensor to ``(sum of its items, item count)``.
    device : torch device, optional
        Where batches are computed; default: each batch's own device (CPU for arrays).
    what : str
        Name used in the error raised when no item was seen.
    """

    def __init__(self, summarize: Summarize, device: torch.device | str | None, what: str) -> None:
        self.summarize = summarize
        self.device = device
        self.what = what
        self.total: torch.Tensor | None = None
        self.count: torch.Tensor | None = None

    def update(self, batch: Array) -> None:
        for chunk in _chunks(as_tensor(batch, self.device)):
            total, count = self.summarize(chunk)
            # accumulate in float64 so that long streams of float32 batches lose nothing
            self.total = add_state(self.total, total.to(torch.float64))
            self.count = add_state(self.count, count.to(torch.int64))

    def merge(self, other: MeanAccumulator) -> None:
        self.total = add_state(self.total, other.total)
        self.count = add_state(self.count, other.count)

    def mean(self) -> torch.Tensor:
        """The mean item; DataError when there was none."""
        if self.count is None or int(self.count) == 0:
            raise DataError(f"no {self.what} to average; check the NaN mask and the input")
        return self.total / self.count


def _chunks(x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """``x`` split along its first axis into cache-sized chunks on CPU, whole elsewhere."""
    if x.device.type != "cpu" or len(x) == 0:
        return (x,)
    return x.split(max(1, CPU_CHUNK_VALUES // max(1, x[0].numel())))
