"""Open and validate the NetCDF files a data spec names, lazily.

:func:`open_source` checks files, variables, dims and grids once and returns a
:class:`Source`, which knows how to read one window of ``(time, channel, y, x)``
straight from the files (one hyperslab read per variable and file through
:mod:`stgan.data.reader`, no xarray or dask in the hot path) and how to present
the same data as a dask-backed ``xr.Dataset`` for streaming statistics.
"""

from __future__ import annotations

import glob
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from stgan.data.coarsen import coarsen, trim
from stgan.data.dims import Dims, detect_dims
from stgan.data.reader import BLOCK_CACHE_BYTES, BlockCache, FileReader, read_files
from stgan.data.spec import DataSpec
from stgan.errors import DataError, SpecError, reason


def resolve_files(spec: DataSpec) -> list[Path]:
    """Expand the spec's paths and globs (relative to the spec file) into existing files."""
    files: list[Path] = []
    for pattern in spec.files:
        if pattern.startswith("builtin:"):
            files.append(_builtin(pattern.removeprefix("builtin:")))
            continue
        full = Path(spec.base_dir, pattern).expanduser().resolve()
        if glob.has_magic(str(full)):
            matches = sorted(Path(p) for p in glob.glob(str(full)))
            if not matches:
                raise DataError(
                    f"files: glob '{pattern}' matches no file (looked in {full.parent})"
                )
            files.extend(matches)
        elif full.is_file():
            files.append(full)
        else:
            raise DataError(f"files: '{pattern}' not found (looked for {full}); check the path")
    return files


def _builtin(name: str) -> Path:
    from stgan.data.families import ensure_builtin  # the one registry of built-in data sets

    return ensure_builtin(name)


def open_file(path: Path, chunks: dict | None = None) -> xr.Dataset:
    """Open one NetCDF file lazily; an unreadable file is a one-line ``DataError``."""
    try:
        return xr.open_dataset(path, engine="netcdf4", chunks=chunks, cache=False)
    except (OSError, ValueError, RuntimeError) as exc:
        raise DataError(
            f"{path}: cannot be read as NetCDF ({reason(exc)}); check the file is not corrupt"
        ) from None


def _list(items) -> str:
    return ", ".join(str(i) for i in items) or "(none)"


@dataclass
class Source:
    """The validated files of a spec: grid, time axis, and how to read windows.

    ``time`` is the concatenated time index of all files (a ``DatetimeIndex``
    or, for non-standard calendars, a ``CFTimeIndex``). ``ys``/``xs`` are the
    index crops on the native grid; ``grid`` is the ``(H, W)`` after coarsening.
    """

    spec: DataSpec
    files: list[Path]
    dims: Dims
    time: pd.Index
    offsets: np.ndarray  # (n_files + 1,) first global time index of each file
    ys: slice
    xs: slice
    coords: dict[str, xr.DataArray]
    attrs: dict[str, dict]
    global_attrs: dict

    @property
    def variables(self) -> list[str]:
        return self.spec.variable_names

    @property
    def grid(self) -> tuple[int, int]:
        k = self.spec.coarsen
        return (self.ys.stop - self.ys.start) // k, (self.xs.stop - self.xs.start) // k

    @property
    def calendar(self) -> str:
        return getattr(self.time, "calendar", "standard")

    def open_handles(self) -> list[FileReader]:
        """Open every file for reading windows; each process calls this for its own handles."""
        order = (self.dims.time, self.dims.y, self.dims.x)
        return [FileReader(f, self.variables, order) for f in self.files]

    def read(
        self, handles: list[FileReader], start: int, stop: int, ys: slice, xs: slice
    ) -> np.ndarray:
        """Read global time steps ``[start, stop)`` on native-grid slices ``ys, xs``.

        Returns float32 ``(T, C, h, w)``, still in physical units (NaN kept): the values
        xarray decodes, one hyperslab read per variable and file.
        """
        return read_files(handles, self.offsets, start, stop, ys, xs)

    def block_cache(
        self,
        handles: list[FileReader],
        length: int,
        prepare: Callable[[np.ndarray], tuple[np.ndarray, ...]],
        budget: int = BLOCK_CACHE_BYTES,
        span: tuple[int, int] | None = None,
    ) -> BlockCache:
        """Windows of ``length`` steps of the crop, made by ``prepare`` (coarsening
        included) from blocks read once and held if those touching ``span`` (global
        steps) fit ``budget`` bytes (see :class:`~stgan.data.reader.BlockCache`)."""
        return BlockCache(
            handles,
            self.offsets,
            self.ys,
            self.xs,
            self.spec.coarsen,
            length,
            prepare,
            budget,
            span,
        )

    def to_dask(self) -> xr.Dataset:
        """The cropped, coarsened variables as one dask-backed dataset along time."""
        pieces = [open_file(f, chunks={})[self.variables] for f in self.files]
        ds = xr.concat(
            pieces, dim=self.dims.time, data_vars="all", coords="minimal", compat="override"
        )
        ds = ds.isel({self.dims.y: self.ys, self.dims.x: self.xs})
        return coarsen(ds, self.spec.coarsen, (self.dims.y, self.dims.x))


def open_source(spec: DataSpec) -> Source:
    """Validate the spec's files and return a :class:`Source` (no data is loaded)."""
    files = resolve_files(spec)
    opened = [(f, open_file(f)) for f in files]
    first_path, first = opened[0]
    dims = detect_dims(first, asdict(spec.dims), str(first_path))
    for path, ds in opened:
        _check_variables(ds, spec, dims, path)
    for path, ds in opened[1:]:
        _check_same_grid(first, first_path, ds, path, dims)
    opened.sort(key=lambda item: item[1][dims.time].values[0] if item[1].sizes[dims.time] else 0)
    counts = [ds.sizes[dims.time] for _, ds in opened]
    time = xr.concat([ds[dims.time] for _, ds in opened], dim=dims.time).to_index()
    ys = _crop(first, dims.y, spec, "y")
    xs = _crop(first, dims.x, spec, "x")
    k = spec.coarsen
    ys, xs = trim(ys, k), trim(xs, k)
    if ys.stop <= ys.start or xs.stop <= xs.start:
        raise SpecError(f"coarsen: factor {k} leaves no cells of the cropped grid; lower it")
    coords = {
        axis: coarsen(first[name].isel({name: s}), k, [name])
        for axis, name, s in (("y", dims.y, ys), ("x", dims.x, xs))
    }
    source = Source(
        spec=spec,
        files=[f for f, _ in opened],
        dims=dims,
        time=time,
        offsets=np.concatenate([[0], np.cumsum(counts)]),
        ys=ys,
        xs=xs,
        coords=coords,
        attrs={v: dict(first[v].attrs) for v in spec.variable_names},
        global_attrs=dict(first.attrs),
    )
    for _, ds in opened:
        ds.close()
    _check_patch(spec.patch, source.grid)
    return source


def _check_patch(patch: int | None, grid: tuple[int, int]) -> None:
    """Raise if square patches of side ``patch`` do not fit the (cropped, coarsened) grid."""
    if patch is not None and patch > min(grid):
        raise SpecError(
            f"patch: {patch} is larger than the grid {grid[0]}x{grid[1]} (after crop and "
            f"coarsen); lower it to at most {min(grid)}"
        )


def _check_variables(ds: xr.Dataset, spec: DataSpec, dims: Dims, path: Path) -> None:
    for dim in (dims.time, dims.y, dims.x):
        if dim not in ds.dims:
            raise DataError(f"{path}: has no dim '{dim}'; its dims are {_list(ds.dims)}")
    for name in spec.variable_names:
        if name not in ds.data_vars:
            raise DataError(
                f"{path}: variable '{name}' not found; variables present: {_list(ds.data_vars)}"
            )
        if set(ds[name].dims) != {dims.time, dims.y, dims.x}:
            raise DataError(
                f"{path}: variable '{name}' has dims ({', '.join(map(str, ds[name].dims))}); "
                f"expected ({dims.time}, {dims.y}, {dims.x}); select or squeeze the others first"
            )


def _check_same_grid(
    first: xr.Dataset, first_path: Path, ds: xr.Dataset, path: Path, dims: Dims
) -> None:
    for dim in (dims.y, dims.x):
        a, b = first[dim].values, ds[dim].values
        if a.shape != b.shape or not np.allclose(a, b):
            raise DataError(
                f"{path}: its {dim} grid ({b.size} points) differs from {first_path.name}'s ({a.size} points); "
                f"all files must share one grid, regrid them first"
            )


def _crop(ds: xr.Dataset, dim: str, spec: DataSpec, axis: str) -> slice:
    size = ds.sizes[dim]
    bounds = getattr(spec.crop, axis) if spec.crop is not None else None
    if bounds is None:
        return slice(0, size)
    if spec.crop.by == "index":
        start, stop = int(bounds[0]), int(bounds[1])
        if stop > size:
            raise SpecError(
                f"crop.{axis}: [{start}, {stop}] exceeds the {size} points of dim '{dim}'"
            )
        return slice(start, stop)
    values = ds[dim].values
    lo, hi = min(bounds), max(bounds)
    inside = np.flatnonzero((values >= lo) & (values <= hi))
    if inside.size == 0:
        raise SpecError(
            f"crop.{axis}: [{lo}, {hi}] holds no '{dim}' value; the data span {values.min()} to {values.max()}"
        )
    return slice(int(inside[0]), int(inside[-1]) + 1)
