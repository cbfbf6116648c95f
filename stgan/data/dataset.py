"""The map-style torch Dataset of normalized windows ``(T, C, H, W)`` plus mask.

Each process (the main one, or each DataLoader worker) opens its own file
handles on first use: netCDF4 is not thread-safe, so handles are never shared.
Windows are slices of a per-process cache of prepared (coarsened, normalized,
masked) blocks aligned to the files' chunks (:class:`stgan.data.reader.BlockCache`:
held whole when the data fit its byte budget, streamed otherwise), read through
netCDF4 directly (no xarray indexing or dask scheduler in the hot path). A
DataLoader batch takes its items through :meth:`WindowDataset.__getitems__` as
views of the blocks, so the collate's copy into the batch is the only copy; a
wrapper that wants this path forwards ``__getitems__``.
"""

from __future__ import annotations

import os
import warnings

import numpy as np
import torch
from torch.utils.data import Dataset

from stgan.data.coarsen import coarsen_array
from stgan.data.io import Source
from stgan.data.reader import BLOCK_CACHE_BYTES
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
    block_bytes : int
        Without ``cache``: the byte budget of each process's block cache.

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
        block_bytes: int = BLOCK_CACHE_BYTES,
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
        self.block_bytes = block_bytes
        self.epoch = 0
        self._blocks = None
        self._memory = None
        self._pid = None
        self._all_valid: dict[tuple[int, ...], np.ndarray] = {}
        self._patch_epoch = None
        self._patch_corners = None

    def __len__(self) -> int:
        return len(self.starts)

    def set_epoch(self, epoch: int) -> None:
        """Draw new patch positions (call with the sampler's epoch)."""
        self.epoch = epoch

    def __getstate__(self) -> dict:
        # Workers open their own handles; never pickle open files.
        dropped = ("_blocks", "_memory", "_pid", "_patch_epoch", "_patch_corners")
        return {**self.__dict__, **dict.fromkeys(dropped), "_all_valid": {}}

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self._item(index, copy=True)

    def __getitems__(self, indices: list[int]) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """The items of a DataLoader batch, read in time order. Their tensors may be views
        of this process's cached blocks: the DataLoader's collate copies them into the
        batch; anything else must copy before changing them."""
        items = {i: self._item(i, copy=False) for i in sorted(indices, key=self._start)}
        return [items[i] for i in indices]

    def _start(self, index: int) -> int:
        return int(self.starts[index])

    def _item(self, index: int, copy: bool) -> tuple[torch.Tensor, torch.Tensor]:
        start = int(self.starts[index])
        ys, xs = self._region(index)
        z, mask = self._window(start, start + self.length, ys, xs, copy)  # (T, C, h, w) each
        if copy:
            return torch.from_numpy(z), torch.from_numpy(mask)
        with warnings.catch_warnings():  # a shared all-valid mask is read-only: never written
            warnings.simplefilter("ignore", UserWarning)
            return torch.from_numpy(z), torch.from_numpy(mask)

    def _region(self, index: int) -> tuple[slice, slice]:
        """Native-grid slices of the full cropped grid or of this item's patch."""
        src, k = self.source, self.source.spec.coarsen
        if self.patch is None:
            return src.ys, src.xs
        py, px = self._corners()[index]
        ys = slice(src.ys.start + py * k, src.ys.start + (py + self.patch) * k)
        xs = slice(src.xs.start + px * k, src.xs.start + (px + self.patch) * k)
        return ys, xs

    def _corners(self) -> np.ndarray:
        """``(N, 2)`` patch corners (coarsened grid) of every item this epoch, drawn at once."""
        if self._patch_epoch != self.epoch:
            height, width = self.source.grid
            rng = np.random.default_rng((self.seed, self.epoch))
            high = np.array([height - self.patch + 1, width - self.patch + 1])
            self._patch_corners = rng.integers(0, high, size=(len(self), 2))
            self._patch_epoch = self.epoch
        return self._patch_corners

    def _prepare(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Physical ``(L, C, h*k, w*k)`` (ours to change) -> normalized ``(L, C, h, w)``, mask.

        A mask with no missing cell is one read-only array shared by every such block.
        """
        x = coarsen_array(x, self.source.spec.coarsen)
        z, mask = self.transforms.forward(x, channel_axis=1, in_place=True)
        if mask.all():
            mask = self._all_valid.get(mask.shape)
            if mask is None:
                mask = self._all_valid[z.shape] = np.ones(z.shape, dtype=bool)
                mask.flags.writeable = False
        return z, mask

    def _window(
        self, start: int, stop: int, ys: slice, xs: slice, copy: bool
    ) -> tuple[np.ndarray, np.ndarray]:
        """Normalized values and mask ``(T, C, h, w)`` of a window; views of cached data
        where ``copy`` is False (see :meth:`__getitems__`)."""
        self._open()
        if self._memory is None:
            return self._blocks.read(start, stop, ys, xs, copy)
        src, k = self.source, self.source.spec.coarsen
        cells = (
            slice(start, stop),
            slice(None),
            slice((ys.start - src.ys.start) // k, (ys.stop - src.ys.start) // k),
            slice((xs.start - src.xs.start) // k, (xs.stop - src.xs.start) // k),
        )
        return tuple(a[cells].copy() if copy else a[cells] for a in self._memory)

    def _open(self) -> None:
        if self._pid == os.getpid():
            return
        handles = self.source.open_handles()
        self._pid = os.getpid()
        self._all_valid = {}
        if self.cache:
            n = int(self.source.offsets[-1])
            self._memory = self._prepare(
                self.source.read(handles, 0, n, self.source.ys, self.source.xs)
            )
            for handle in handles:
                handle.close()
        else:
            span = (int(self.starts.min()), int(self.starts.max()) + self.length)
            self._blocks = self.source.block_cache(
                handles, self.length, self._prepare, self.block_bytes, span
            )
