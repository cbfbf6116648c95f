"""The map-style torch Dataset of normalized windows ``(T, C, H, W)`` plus mask.

Each process (the main one, or each DataLoader worker) opens its own file
handles on first use: netCDF4 is not thread-safe, so handles are never shared,
and reads go straight through xarray's lazy indexing (no dask scheduler in the
hot path), one hyperslab per variable and file.
"""

from __future__ import annotations

import os

import numpy as np
import torch
from torch.utils.data import Dataset

from stgan.data.coarsen import coarsen_array
from stgan.data.io import Source
from stgan.data.transforms import Transforms
from stgan.errors import SpecError


class WindowDataset(Dataset):
    """Windows of one split, normalized, with optional random spatial patches.

    Parameters
    ----------
    source : Source
        The validated files.
    starts : np.ndarray
        Start position of each window on the time axis.
    transforms : Transforms
        Fitted normalization.
    length : int
        Window length ``T``.
    patch : int, optional
        Side ``P`` of a random square patch (on the coarsened grid); ``None`` for the full grid.
    seed : int
        Patch positions depend only on ``(seed, epoch, index)``.
    cache : bool
        Load the whole cropped array into memory once per process.

    Items are ``(x, mask)``: ``x`` float32 ``(T, C, H, W)`` with missing cells
    filled, ``mask`` bool ``(T, C, H, W)``, True where the value is valid.
    """

    def __init__(
        self,
        source: Source,
        starts: np.ndarray,
        transforms: Transforms,
        length: int,
        patch: int | None = None,
        seed: int = 0,
        cache: bool = False,
    ) -> None:
        height, width = source.grid
        if patch is not None and patch > min(height, width):
            raise SpecError(f"patch: {patch} is larger than the grid {height}x{width}; lower it")
        self.source = source
        self.starts = np.asarray(starts, dtype=np.int64)
        self.transforms = transforms
        self.length = length
        self.patch = patch
        self.seed = seed
        self.cache = cache
        self.epoch = 0
        self._handles = None
        self._memory = None
        self._pid = None

    def __len__(self) -> int:
        return len(self.starts)

    def set_epoch(self, epoch: int) -> None:
        """Draw new patch positions (call with the sampler's epoch)."""
        self.epoch = epoch

    def __getstate__(self) -> dict:
        # Workers open their own handles; never pickle open files.
        return {**self.__dict__, "_handles": None, "_memory": None, "_pid": None}

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        start = int(self.starts[index])
        ys, xs = self._region(index)
        x = self._read(start, start + self.length, ys, xs)  # (T, C, h*k, w*k)
        x = coarsen_array(x, self.source.spec.coarsen)  # (T, C, h, w)
        z, mask = self.transforms.forward(x, channel_axis=1)
        return torch.from_numpy(z), torch.from_numpy(mask)

    def _region(self, index: int) -> tuple[slice, slice]:
        """Native-grid slices of the full cropped grid or of this item's patch."""
        src, k = self.source, self.source.spec.coarsen
        if self.patch is None:
            return src.ys, src.xs
        height, width = src.grid
        rng = np.random.default_rng((self.seed, self.epoch, index))
        py, px = rng.integers(0, height - self.patch + 1), rng.integers(0, width - self.patch + 1)
        ys = slice(src.ys.start + py * k, src.ys.start + (py + self.patch) * k)
        xs = slice(src.xs.start + px * k, src.xs.start + (px + self.patch) * k)
        return ys, xs

    def _read(self, start: int, stop: int, ys: slice, xs: slice) -> np.ndarray:
        self._open()
        if self._memory is not None:
            y0, x0 = self.source.ys.start, self.source.xs.start
            return self._memory[
                start:stop, :, ys.start - y0 : ys.stop - y0, xs.start - x0 : xs.stop - x0
            ]
        return self.source.read(self._handles, start, stop, ys, xs)

    def _open(self) -> None:
        if self._pid == os.getpid():
            return
        self._handles = self.source.open_handles()
        self._pid = os.getpid()
        if self.cache:
            n = int(self.source.offsets[-1])
            self._memory = self.source.read(self._handles, 0, n, self.source.ys, self.source.xs)
