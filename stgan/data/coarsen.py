"""Coarsening: block means over ``k x k`` cells, the one rule for data and coordinates.

The remainder of a dim that ``k`` does not divide is trimmed (from the end), and a block
with any NaN is NaN, as in a plain mean: a cell is missing when any cell under it is. The
torch dataset (NumPy windows), the streamed statistics (dask) and the grid's coordinates
all coarsen through :func:`coarsen`, so they agree to the bit.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import TypeVar

import numpy as np
import xarray as xr

XarrayObject = TypeVar("XarrayObject", xr.Dataset, xr.DataArray)


def coarsen(data: XarrayObject, k: int, dims: Iterable[Hashable]) -> XarrayObject:
    """Block means of ``k`` cells along each of ``dims`` that ``data`` has; lazy if dask-backed.

    Examples
    --------
    >>> coarsen(xr.DataArray([[1.0, 3.0, 9.0], [5.0, 7.0, 9.0]], dims=("y", "x")), 2, "yx").values
    array([[4.]])
    """
    along = {d: k for d in dims if d in data.dims}
    if k == 1 or not along:
        return data
    return data.coarsen(along, boundary="trim").reduce(np.mean)


def coarsen_array(x: np.ndarray, k: int) -> np.ndarray:
    """:func:`coarsen` of a NumPy ``(..., h, w)`` array over its last two axes ``(..., h/k, w/k)``."""
    if k == 1:
        return x
    da = xr.DataArray(x)
    return coarsen(da, k, da.dims[-2:]).values


def trim(cells: slice, k: int) -> slice:
    """``cells`` (a ``start:stop`` range of a dim) shortened to a multiple of ``k``."""
    return slice(cells.start, cells.start + (cells.stop - cells.start) // k * k)
