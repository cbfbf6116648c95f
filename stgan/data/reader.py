"""Reading windows straight from NetCDF files, fast and exactly as xarray would.

:class:`FileReader` reads hyperslabs of a file's variables through ``netCDF4`` directly
(raw values, then xarray's own CF decoding where a variable needs any), without xarray's
per-call indexing machinery. :class:`BlockCache` holds the prepared (normalized) data in
blocks aligned to the files' chunks when they fit a byte budget, so a window is a slice
of memory; larger data are streamed window by window (memory does not grow with them).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import netCDF4
import numpy as np
import xarray as xr
from xarray.backends.netCDF4_ import NETCDF4_PYTHON_LOCK

from stgan.errors import DataError, reason

BLOCK_CACHE_BYTES = 512 * 2**20  # per process (the main one or each DataLoader worker)
CHUNKS_CACHED = 8  # HDF5 keeps this many chunks per variable: all a window touches
MIN_BLOCK_CELLS = 2**18  # a block of fewer cells is lengthened in time (1 MiB of float32)
HELD_BLOCK_WINDOWS = 8  # blocks of data held whole span this many windows
BYTES_PER_CELL = 5  # a prepared cell: float32 value and bool mask
_CF_KEYS = ("scale_factor", "add_offset", "_Unsigned")
HDF5_CALLS = NETCDF4_PYTHON_LOCK  # xarray's lock for netCDF4 files (it is not reentrant)
_DEFERRED: list[netCDF4.Dataset] = []  # files freed while that lock was held


class VariableReader:
    """One variable of an open file, read as ``(time, y, x)`` in xarray's decoded values.

    Parameters
    ----------
    variable : netCDF4.Variable
        The variable; its automatic masking and scaling is switched off (as xarray does).
    order : tuple of str
        The names of its time, y and x dims.
    """

    def __init__(self, variable: netCDF4.Variable, order: tuple[str, str, str]) -> None:
        variable.set_auto_maskandscale(False)
        variable.set_auto_chartostring(False)
        self.variable = variable
        self.axes = tuple(variable.dimensions.index(d) for d in order)  # file axis of t, y, x
        self.attrs = {k: variable.getncattr(k) for k in variable.ncattrs()}
        self.raw_is_decoded = _raw_is_decoded(variable.name, variable.dtype, self.attrs)

    @property
    def chunks(self) -> tuple[int, int, int]:
        """The storage chunk in ``(time, y, x)`` order (one time step for contiguous data)."""
        chunking = self.variable.chunking()  # None in a netCDF-3 file
        shape = self.variable.shape
        if chunking is None or chunking == "contiguous":
            return 1, shape[self.axes[1]], shape[self.axes[2]]
        return tuple(int(chunking[a]) for a in self.axes)

    def read_raw(self, t: slice, ys: slice, xs: slice) -> np.ndarray:
        """Raw values ``(t, h, w)`` as stored (the caller holds :data:`HDF5_CALLS`)."""
        key: list[slice] = [slice(None)] * 3
        for axis, part in zip(self.axes, (t, ys, xs)):
            key[axis] = part
        raw = self.variable[tuple(key)]
        return raw.transpose(self.axes) if self.axes != (0, 1, 2) else raw

    def decode(self, raw: np.ndarray) -> np.ndarray:
        """xarray's decoded values of raw ones, in the decoded dtype (NaN where missing)."""
        return raw if self.raw_is_decoded else _decode(self.variable.name, raw, self.attrs)


def _decode(name: str, raw: np.ndarray, attrs: dict) -> np.ndarray:
    """xarray's CF decoding (mask, scale, offset, unsigned) of raw values."""
    encoded = xr.Variable(("time", "y", "x"), raw, dict(attrs))
    return xr.conventions.decode_cf_variable(name, encoded).values


def _raw_is_decoded(name: str, dtype: np.dtype, attrs: dict) -> bool:
    """Whether xarray's decoding leaves raw values of this variable as they are.

    True for floating data with no scale, offset or unsigned flag whose fill values
    (if any) are NaN: the common case, read without the decoding call.
    """
    if dtype.kind != "f" or any(k in attrs for k in _CF_KEYS):
        return False
    fills = [attrs[k] for k in ("_FillValue", "missing_value") if k in attrs]
    if not all(np.isnan(np.asarray(f, dtype=np.float64)).all() for f in fills):
        return False
    sample = np.array([[[1.5]]], dtype=dtype)
    return _decode(name, sample, attrs).dtype == dtype  # not a time or a timedelta


class FileReader:
    """One NetCDF file opened for reading the spec's variables, in channel order.

    Each process opens its own (netCDF4 handles are not thread- or fork-safe). Every
    netCDF4 call goes through :data:`HDF5_CALLS`, the lock xarray's netCDF4 backend holds
    while dask's threads read, because the HDF5 library under both is not thread-safe.
    A reader nobody closed is closed when it is freed, under the same lock; where the
    garbage collector frees it while that lock is held (a dask thread reading, or this
    thread inside a read) the file is closed by the next reader call instead, never
    by netCDF4's own deallocation, which would call HDF5 unlocked from whatever thread
    the collector ran in (a segmentation fault).
    """

    def __init__(self, path: Path, variables: list[str], order: tuple[str, str, str]) -> None:
        with HDF5_CALLS:
            _close_deferred()
            try:
                self.dataset = netCDF4.Dataset(path)
            except OSError as exc:
                raise DataError(
                    f"{path}: cannot be read as NetCDF ({reason(exc)}); "
                    "check the file is not corrupt"
                ) from None
            self.variables = [VariableReader(self.dataset[v], order) for v in variables]
            if self.dataset.data_model.startswith("NETCDF4"):  # netCDF-3: no chunk cache
                for v in self.variables:  # the chunks of one window, not netCDF's 64 MiB
                    chunk_bytes = v.variable.dtype.itemsize * int(np.prod(v.chunks))
                    v.variable.set_var_chunk_cache(size=CHUNKS_CACHED * chunk_bytes, nelems=61)

    @property
    def chunks(self) -> tuple[int, int, int]:
        """The first variable's storage chunk, ``(time, y, x)``."""
        with HDF5_CALLS:
            return self.variables[0].chunks

    def read(self, t: slice, ys: slice, xs: slice) -> np.ndarray:
        """float32 ``(t, C, h, w)`` of the file's own time steps ``t`` (NaN kept)."""
        out = np.empty(
            (t.stop - t.start, len(self.variables), ys.stop - ys.start, xs.stop - xs.start),
            dtype=np.float32,
        )
        for c, variable in enumerate(self.variables):
            with HDF5_CALLS:
                _close_deferred()
                raw = variable.read_raw(t, ys, xs)
            out[:, c] = variable.decode(raw)  # (t, h, w), cast to float32
        return out

    def close(self) -> None:
        with HDF5_CALLS:
            _close_deferred()
            _close(self.dataset)

    def __del__(self) -> None:
        if "dataset" not in self.__dict__ or not self.dataset.isopen():
            return
        if HDF5_CALLS.acquire(blocking=False):
            try:
                _close(self.dataset)
            finally:
                HDF5_CALLS.release()
        else:
            _DEFERRED.append(self.dataset)  # held open, so netCDF4 does not close it unlocked


def _close(dataset: netCDF4.Dataset) -> None:
    if dataset.isopen():
        dataset.close()


def _close_deferred() -> None:
    """Close the files freed while the lock was held (the caller holds it)."""
    while _DEFERRED:
        _close(_DEFERRED.pop())


def read_files(
    readers: list[FileReader], offsets: np.ndarray, start: int, stop: int, ys: slice, xs: slice
) -> np.ndarray:
    """float32 ``(T, C, h, w)`` of global time steps ``[start, stop)`` of files that start
    at ``offsets`` (``(n_files + 1,)``), one hyperslab read per variable and file."""
    parts = []
    for i in np.flatnonzero((offsets[:-1] < stop) & (offsets[1:] > start)):
        first, last = int(offsets[i]), int(offsets[i + 1])
        t = slice(max(start, first) - first, min(stop, last) - first)
        parts.append(readers[i].read(t, ys, xs))  # (t, C, h, w)
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=0)


class BlockCache:
    """Windows of several files: held whole in prepared blocks when those fit a byte
    budget, streamed from the files otherwise.

    When the prepared data fit in ``budget`` they are held whole, in blocks read on
    first use. In y and x a block is the file's storage chunk (within the crop, rounded
    up to a multiple of the coarsening factor ``k``). In time, block ``j`` of a file
    starts at ``j * S`` and reaches ``S + T - 1`` steps (``S``: whole chunks, about
    ``HELD_BLOCK_WINDOWS`` windows and at least ``MIN_BLOCK_CELLS`` cells), so every window
    inside one file and one chunk column lies inside exactly one block. A block is read
    once as float32 ``(L, C, By, Bx)`` and kept as what ``prepare`` makes of it
    (coarsened, normalized values and mask, each ``(L, C, By/k, Bx/k)``), so a window is
    a slice of a block, or a copy of slices of the blocks under it where it crosses files
    or chunk columns.

    Larger data are streamed: each window is read from the files (HDF5 keeps the chunks
    it touched, ``CHUNKS_CACHED`` per variable, for windows that overlap) and prepared
    alone, so memory does not grow with the data.

    Parameters
    ----------
    readers : list of FileReader
        The open files, in time order.
    offsets : np.ndarray
        ``(n_files + 1,)`` first global time index of each file.
    ys, xs : slice
        The crop on the native grid; its sides are multiples of ``k``.
    k : int
        The coarsening factor ``prepare`` applies.
    length : int
        The window length ``T``.
    prepare : callable
        ``(L, C, By, Bx)`` float32 physical values (NaN kept; the caller's to change) to a
        tuple of ``(L, C, By/k, Bx/k)`` arrays. Block-local: a cell's result may depend
        only on the ``k x k`` cells above it. Read-only arrays it returns are taken as
        shared between blocks (an all-valid mask).
    budget : int
        Bytes the prepared data may take (counted at ``BYTES_PER_CELL``, overlaps twice)
        to be held.
    span : tuple of int, optional
        Global time steps ``[a, b)`` the windows lie in (a split); only the blocks
        touching them count against the budget. ``None``: all steps.
    """

    def __init__(
        self,
        readers: list[FileReader],
        offsets: np.ndarray,
        ys: slice,
        xs: slice,
        k: int,
        length: int,
        prepare: Callable[[np.ndarray], tuple[np.ndarray, ...]],
        budget: int = BLOCK_CACHE_BYTES,
        span: tuple[int, int] | None = None,
    ) -> None:
        self.readers = readers
        self.offsets = offsets
        self.ys, self.xs, self.k, self.length = ys, xs, k, length
        self.prepare = prepare
        self.sides = [
            _block_sides(r.chunks, ys, xs, k, HELD_BLOCK_WINDOWS * length) for r in readers
        ]
        self.held = self._prepared_bytes(span or (0, int(offsets[-1]))) <= budget
        self.budget = budget
        self.blocks: dict[tuple[int, int, int, int], tuple[np.ndarray, ...]] = {}

    def _prepared_bytes(self, span: tuple[int, int]) -> int:
        """What the blocks touching global steps ``span`` take once prepared (overlaps
        counted twice)."""
        cells = len(self.readers[0].variables) * (self.ys.stop - self.ys.start) // self.k
        cells *= (self.xs.stop - self.xs.start) // self.k
        steps = 0
        for (s, _, _), first, last in zip(self.sides, self.offsets[:-1], self.offsets[1:]):
            starts = np.arange(0, int(last - first), s)
            stops = np.minimum(starts + s + self.length - 1, int(last - first))
            touched = (starts < span[1] - first) & (stops > span[0] - first)
            steps += int((stops - starts)[touched].sum())
        return steps * cells * BYTES_PER_CELL

    def read(
        self, start: int, stop: int, ys: slice, xs: slice, copy: bool = True
    ) -> tuple[np.ndarray, ...]:
        """The prepared arrays ``(T, C, h/k, w/k)`` of global time steps ``[start, stop)``
        on native-grid slices ``ys, xs`` (their starts a multiple of ``k`` into the crop).

        ``copy=False``: where the window lies in one block, views of the cached block
        (read-only by contract: the caller copies before changing them).
        """
        if not self.held:
            return self.prepare(read_files(self.readers, self.offsets, start, stop, ys, xs))
        pieces = [
            (key, inside, within)
            for i in np.flatnonzero((self.offsets[:-1] < stop) & (self.offsets[1:] > start))
            for key, inside, within in self._pieces(int(i), start, stop, ys, xs)
        ]
        if len(pieces) == 1:
            key, inside, _ = pieces[0]
            views = tuple(b[inside] for b in self._block(key))
            return tuple(v.copy() for v in views) if copy else views
        out = None
        for key, inside, within in pieces:
            block = self._block(key)
            if out is None:
                shape = (stop - start, block[0].shape[1])
                shape += ((ys.stop - ys.start) // self.k, (xs.stop - xs.start) // self.k)
                out = tuple(np.empty(shape, b.dtype) for b in block)
            for target, source in zip(out, block):
                target[within] = source[inside]
        return out

    def _pieces(self, i: int, start: int, stop: int, ys: slice, xs: slice):
        """Per block of file ``i`` under the window: its key and the (coarsened) slices
        ``(t, :, y, x)`` of the piece in the block and in the window."""
        s, ly, lx = self.sides[i]
        first, k = int(self.offsets[i]), self.k
        t = slice(max(start, first) - first, min(stop, int(self.offsets[i + 1])) - first)
        for kt, bt, wt in _split(t, s, 0, s + self.length - 1):
            wt = _shift(wt, start - first)
            for ky, by, wy in _split(ys, ly, self.ys.start, ly):
                wy = _shift(wy, ys.start)
                for kx, bx, wx in _split(xs, lx, self.xs.start, lx):
                    wx = _shift(wx, xs.start)
                    inside = (bt, slice(None), _over(by, k), _over(bx, k))
                    within = (wt, slice(None), _over(wy, k), _over(wx, k))
                    yield (i, kt, ky, kx), inside, within

    def _block(self, key: tuple[int, int, int, int]) -> tuple[np.ndarray, ...]:
        block = self.blocks.get(key)
        if block is None:
            i, kt, ky, kx = key
            s, ly, lx = self.sides[i]
            n = int(self.offsets[i + 1] - self.offsets[i])
            t = slice(kt * s, min(kt * s + s + self.length - 1, n))
            ys = slice(self.ys.start + ky * ly, min(self.ys.start + (ky + 1) * ly, self.ys.stop))
            xs = slice(self.xs.start + kx * lx, min(self.xs.start + (kx + 1) * lx, self.xs.stop))
            block = self.prepare(self.readers[i].read(t, ys, xs))  # (L, C, By/k, Bx/k) each
            self.blocks[key] = block
        return block

    @property
    def nbytes(self) -> int:
        """Bytes of the blocks held (shared read-only arrays not counted)."""
        return sum(b.nbytes for block in self.blocks.values() for b in block if b.flags.writeable)


def _block_sides(
    chunks: tuple[int, int, int], ys: slice, xs: slice, k: int, steps: int
) -> tuple[int, int, int]:
    """``(S, By, Bx)``: the time stride of blocks (whole chunks, at least ``steps`` steps
    and ``MIN_BLOCK_CELLS`` cells) and the chunk's y and x within the crop, rounded up to
    a multiple of ``k``."""
    by = min(-(-chunks[1] // k) * k, ys.stop - ys.start)
    bx = min(-(-chunks[2] // k) * k, xs.stop - xs.start)
    steps = max(steps, -(-MIN_BLOCK_CELLS // (by * bx)))
    return chunks[0] * -(-steps // chunks[0]), by, bx


def _split(span: slice, side: int, origin: int, reach: int):
    """``(j, slice in block j, absolute slice)`` for the blocks that cover ``span``:
    block ``j`` starts at ``origin + j * side`` and reaches ``reach >= side`` cells."""
    start = span.start
    while start < span.stop:
        j = (start - origin) // side
        lo = origin + j * side
        stop = min(span.stop, lo + reach)
        yield j, slice(start - lo, stop - lo), slice(start, stop)
        start = stop


def _shift(part: slice, origin: int) -> slice:
    """``part`` relative to ``origin``."""
    return slice(part.start - origin, part.stop - origin)


def _over(part: slice, k: int) -> slice:
    """A native-grid slice (ends multiples of ``k``) on the coarsened grid."""
    return slice(part.start // k, part.stop // k)
