"""An endless, resumable stream of training batches.

Shuffling comes from ``DistributedSampler`` (seeded, ``set_epoch`` each epoch;
one replica when not distributed), so the order depends only on the seed, the
epoch and the rank. The stream remembers ``(epoch, position)`` so a resumed run
continues with exactly the batch the interrupted one would have read next.

Each batch carries the calendar features of its windows' frames (:class:`CalendarWindows`).
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, DistributedSampler

from stgan.data.dataset import WindowDataset
from stgan.errors import SpecError
from stgan.threads import follow_share, one_thread_per_worker
from stgan.training.distributed import Dist


class CalendarWindows(Dataset):
    """A split's windows with the calendar features of their frames.

    Parameters
    ----------
    windows : WindowDataset
        The windows; item ``i`` starts at time position ``windows.starts[i]``.
    table : np.ndarray
        ``(N_time, F)`` features of every time step of the data
        (``stgan.data.calendar.features`` of its time axis); F may be 0.

    Items are ``(x, mask, calendar)``: ``x`` and ``mask`` as ``WindowDataset`` gives them,
    ``(T, C, H, W)``, and ``calendar`` float32 ``(T, F)``.
    """

    def __init__(self, windows: WindowDataset, table: np.ndarray) -> None:
        self.windows = windows
        self.table = torch.from_numpy(np.ascontiguousarray(table, dtype=np.float32))

    def __len__(self) -> int:
        return len(self.windows)

    def set_epoch(self, epoch: int) -> None:
        self.windows.set_epoch(epoch)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x, mask = self.windows[index]
        return x, mask, self._calendar(index)

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, ...]]:
        """A DataLoader batch through ``WindowDataset.__getitems__`` (views of its cached
        blocks, so the collate's copy is the only one)."""
        items = self.windows.__getitems__(indices)
        return [(x, mask, self._calendar(i)) for i, (x, mask) in zip(indices, items, strict=True)]

    def _calendar(self, index: int) -> torch.Tensor:
        start = int(self.windows.starts[index])
        return self.table[start : start + self.windows.length]  # (T, F)


class BatchStream:
    def __init__(
        self,
        dataset: CalendarWindows,
        batch_size: int,
        num_workers: int,
        seed: int,
        dist: Dist,
        epoch: int = 0,
        position: int = 0,
    ) -> None:
        self.sampler = DistributedSampler(
            dataset,
            num_replicas=dist.world_size,
            rank=dist.rank,
            shuffle=True,
            seed=seed,
            drop_last=True,
        )
        if len(self.sampler) < batch_size:
            raise SpecError(
                f"train.batch_size: {batch_size} is more than the {len(self.sampler)} train windows "
                f"per process; lower it, shorten window.stride or widen the train split"
            )
        self.dataset = dataset
        self.batch_size = batch_size
        self.num_workers = num_workers
        self.seed = seed
        self.epoch = epoch
        self.position = position
        self._iterator = None

    def state(self) -> dict:
        return {"epoch": self.epoch, "position": self.position}

    def next(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The next ``(x, mask, calendar)`` batch, ``(B, T, C, H, W)`` twice and ``(B, T, F)``;
        a new epoch starts as needed."""
        if self._iterator is None:
            self._iterator = self._epoch_iterator()
        try:
            batch = next(self._iterator)
        except StopIteration:
            self.epoch, self.position = self.epoch + 1, 0
            self._iterator = self._epoch_iterator()
            batch = next(self._iterator)
        self.position += 1
        follow_share()  # once per step: give cores back when other stgan processes start
        return batch

    def _epoch_iterator(self):
        self.sampler.set_epoch(self.epoch)
        self.dataset.set_epoch(self.epoch)
        indices = list(self.sampler)[self.position * self.batch_size :]
        loader = DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            sampler=indices,
            num_workers=self.num_workers,
            worker_init_fn=one_thread_per_worker,
            drop_last=True,
            # Its own generator, so creating a loader never draws from the global RNG.
            generator=torch.Generator().manual_seed(self.seed + self.epoch),
        )
        return iter(loader)
