"""The training grid as plain data, and CF-compliant NetCDF output.

:func:`describe_grid` records what a checkpoint needs to write physical, georeferenced
output without the training files: dim names, the y/x coordinates (after crop and
coarsen; the centre ``P x P`` region for a model trained on patches), the time step,
calendar and units, the variables' attributes, the global attributes worth keeping and
the static mask. It is plain data (str/int/float/bool/list/dict), so it rides in a
checkpoint loaded with ``torch.load(weights_only=True)``.

The static mask is the set of cells that are NaN at every time step in the files (land
in an ocean field, say; all splits, as it describes the grid, not the training set), per
variable, stored as run-lengths ``[start, length]`` of the row-major flattened region: a
coastline costs a few numbers per row, not one per cell. The transforms' statistics
cannot give it (they hold a NaN fraction, not where).

:func:`write_netcdf` writes a dataset as CF-1.8 NetCDF4: float32 with zlib, a
``_FillValue``, ``history``/``stgan_version`` attributes, atomically.
"""

from __future__ import annotations

import datetime as dt
import os
import shlex
import sys
from pathlib import Path

import cftime
import numpy as np
import pandas as pd
import xarray as xr

from stgan import __version__
from stgan.atomic import atomic_path
from stgan.data.coarsen import coarsen
from stgan.data.dims import AXIS_LETTERS, AXIS_UNITS
from stgan.data.io import Source, open_file
from stgan.data.windows import time_steps
from stgan.errors import DataError

CONVENTIONS = "CF-1.8"
GRID_FORMAT = 1
FILL_VALUE = np.float32(1.0e20)  # the CMIP convention; NaN in memory
STANDARD_CALENDARS = ("standard", "gregorian", "proleptic_gregorian")
KEPT_GLOBAL_ATTRS = (
    "title",
    "institution",
    "source",
    "references",
    "license",
    "attribution",
    "acknowledgement",
    "acknowledgment",
    "project",
)
# Encoding details and references to variables that the output does not carry.
DROPPED_ATTRS = frozenset(
    {
        "_FillValue",
        "missing_value",
        "scale_factor",
        "add_offset",
        "valid_min",
        "valid_max",
        "valid_range",
        "actual_range",
        "units_metadata",
        "coordinates",
        "grid_mapping",
        "bounds",
        "cell_measures",
        "ancillary_variables",
        "calendar",
    }
)


# CF 4.1/4.2: these units make a coordinate latitude or longitude.
STANDARD_NAME_FROM_UNITS = {
    **dict.fromkeys(AXIS_UNITS["y"], "latitude"),
    **dict.fromkeys(AXIS_UNITS["x"], "longitude"),
}


# ---------------------------------------------------------------------------
# describe_grid: the training grid as plain data
# ---------------------------------------------------------------------------


def describe_grid(source: Source, patch: int | None = None, cycles: tuple[str, ...] = ()) -> dict:
    """The grid, time axis, attributes and static mask of ``source``, as plain data.

    Parameters
    ----------
    source : Source
        The validated files of a data spec (after crop and coarsen).
    patch : int, optional
        Side ``P`` of the square patches a model was trained on: the description is then
        of the ``P x P`` region at the centre of the grid (recorded under ``"region"``).

    Returns
    -------
    dict
        Keys ``format``, ``dims`` (time/y/x names), ``region`` (index ranges in the
        cropped, coarsened grid), ``coords`` (name -> dims, values, dtype, attrs),
        ``time`` (step_seconds, calendar, units, first, attrs, cycles), ``variables`` (name ->
        attrs, in channel order), ``mask`` (name -> run-lengths of always-missing
        cells) and ``global_attrs``.
    """
    dims = source.dims
    height, width = source.grid
    region = _centre_region(height, width, patch)
    first = open_file(source.files[0])
    try:
        coords = _grid_coords(first, source, region)
        time = _time_description(first[dims.time], source)
    finally:
        first.close()
    time["cycles"] = list(cycles)
    return {
        "format": GRID_FORMAT,
        "dims": {"time": dims.time, "y": dims.y, "x": dims.x},
        "region": {
            "y": [region[0].start, region[0].stop],
            "x": [region[1].start, region[1].stop],
            "grid": [height, width],
            "patch": patch,
        },
        "coords": coords,
        "time": time,
        "variables": {v: _plain_attrs(source.attrs[v]) for v in source.variables},
        "mask": _static_mask_runs(source, region),
        "global_attrs": {
            k: _plain(v) for k, v in source.global_attrs.items() if k in KEPT_GLOBAL_ATTRS
        },
    }


def _centre_region(height: int, width: int, patch: int | None) -> tuple[slice, slice]:
    """The ``patch x patch`` index ranges at the centre of the grid (all of it for None)."""
    if patch is None:
        return slice(0, height), slice(0, width)
    y0, x0 = (height - patch) // 2, (width - patch) // 2
    return slice(y0, y0 + patch), slice(x0, x0 + patch)


def _grid_coords(ds: xr.Dataset, source: Source, region: tuple[slice, slice]) -> dict:
    """Numeric coords on y and/or x (or scalar), cropped, coarsened and cut to ``region``."""
    dims = source.dims
    crop = {dims.y: source.ys, dims.x: source.xs}
    cut = {dims.y: region[0], dims.x: region[1]}
    k = source.spec.coarsen
    out = {}
    for name in [dims.y, dims.x, *(c for c in ds.coords if c not in (dims.y, dims.x))]:
        coord = ds[name]
        if not set(coord.dims) <= {dims.y, dims.x} or coord.dtype.kind not in "biuf":
            continue
        on = [d for d in coord.dims if d in crop]
        coord = coord.isel({d: crop[d] for d in on})
        coord = coarsen(coord, k, on)
        coord = coord.isel({d: cut[d] for d in on})
        out[str(name)] = {
            "dims": [str(d) for d in coord.dims],
            "values": coord.values.tolist(),
            "dtype": str(coord.dtype),
            "attrs": _plain_attrs(coord.attrs),
        }
    return out


def _time_description(time: xr.DataArray, source: Source) -> dict:
    step, _ = time_steps(source.time)
    first = source.time[0]
    calendar = time.encoding.get("calendar", source.calendar)
    units = time.encoding.get("units", f"seconds since {first.isoformat()}")
    return {
        "step_seconds": int(round(step.total_seconds())),
        "calendar": str(calendar),
        "units": str(units),
        "first": first.isoformat(),
        "attrs": _plain_attrs(time.attrs),
    }


def _static_mask_runs(source: Source, region: tuple[slice, slice]) -> dict[str, list[list[int]]]:
    """Per variable, the run-lengths of cells NaN at every time step (one dask pass)."""
    dims = source.dims
    always = source.to_dask().isnull().all(dims.time).compute()
    runs = {}
    for name in source.variables:
        cells = always[name].transpose(dims.y, dims.x).values[region]  # (H, W)
        runs[name] = _runs(cells.ravel())
    return runs


def _runs(flags: np.ndarray) -> list[list[int]]:
    """``[start, length]`` of each run of True in a 1-D bool array."""
    edges = np.diff(np.concatenate([[0], flags.astype(np.int8), [0]]))
    starts, stops = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    return [[int(a), int(b - a)] for a, b in zip(starts, stops)]


def _plain(value):
    """Attribute values as plain Python data (NetCDF gives NumPy scalars and arrays)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def _plain_attrs(attrs: dict) -> dict:
    return {str(k): _plain(v) for k, v in attrs.items() if k not in DROPPED_ATTRS}


# ---------------------------------------------------------------------------
# From the description back to xarray objects
# ---------------------------------------------------------------------------


def grid_region(grid: dict) -> tuple[slice, slice]:
    """Index ranges of the described grid in the source's cropped, coarsened grid."""
    region = grid["region"] if "region" in grid else grid["window"]  # "window" in older checkpoints
    return slice(*region["y"]), slice(*region["x"])


def grid_shape(grid: dict) -> tuple[int, int]:
    """``(H, W)`` of the described grid."""
    ys, xs = grid_region(grid)
    return ys.stop - ys.start, xs.stop - xs.start


def grid_coords(grid: dict) -> dict[str, xr.Variable]:
    """The y/x coordinates (and auxiliary ones) as xarray variables.

    The y and x coordinate variables carry CF ``axis`` "Y"/"X", so their dims are found
    again (:mod:`stgan.data.dims`) whatever they are named.
    """
    axes = {grid["dims"][axis]: AXIS_LETTERS[axis] for axis in ("y", "x")}
    return {
        name: xr.Variable(
            c["dims"],
            np.asarray(c["values"], dtype=c["dtype"]),
            cf_attrs(name, c["attrs"], axes.get(name) if c["dims"] == [name] else None),
        )
        for name, c in grid["coords"].items()
    }


def cf_attrs(name: str, attrs: dict, axis: str | None = None) -> dict:
    """``attrs`` completed where CF allows: latitude/longitude ``standard_name`` from the
    units, ``long_name`` = ``name`` when neither name is given, and ``axis`` when given
    and not set."""
    attrs = dict(attrs)
    if axis is not None:
        attrs.setdefault("axis", axis)
    inferred = STANDARD_NAME_FROM_UNITS.get(attrs.get("units"))
    if inferred and "standard_name" not in attrs:
        attrs["standard_name"] = inferred
    if "standard_name" not in attrs and "long_name" not in attrs:
        attrs["long_name"] = name
    return attrs


def static_mask(grid: dict) -> np.ndarray:
    """Bool ``(C, H, W)``, True where a variable is missing at every time step."""
    height, width = grid_shape(grid)
    masks = []
    for name in grid["variables"]:
        flat = np.zeros(height * width, dtype=bool)
        for start, length in grid["mask"].get(name, []):
            flat[start : start + length] = True
        masks.append(flat.reshape(height, width))
    return np.stack(masks)


def time_coordinate(grid: dict, start: str, periods: int) -> xr.DataArray:
    """``periods`` times from ``start`` (ISO string) at the grid's step, calendar and units."""
    t = grid["time"]
    calendar = t["calendar"]
    times = xr.date_range(
        start=start,
        periods=periods,
        freq=f"{t['step_seconds']}s",
        calendar=calendar,
        use_cftime=calendar not in STANDARD_CALENDARS,
    )
    name = grid["dims"]["time"]
    attrs = {"standard_name": "time", "axis": "T", **t["attrs"]}
    coord = xr.DataArray(times, dims=name, name=name, attrs=attrs)
    offsets = np.asarray(cftime.date2num(_datetimes(times), t["units"], calendar))
    whole = np.array_equal(offsets, np.round(offsets)) and np.abs(offsets).max() < 2**31
    # CF 1.8 (the classic NetCDF types) has no int64: int32 where exact, else double.
    coord.encoding = {
        "units": t["units"],
        "calendar": calendar,
        "dtype": "int32" if whole else "float64",
    }
    return coord


def next_time(grid: dict, time) -> str:
    """The ISO time one step of the grid after ``time`` (a Timestamp or cftime datetime)."""
    return (time + dt.timedelta(seconds=grid["time"]["step_seconds"])).isoformat()


def _datetimes(times: pd.Index) -> np.ndarray:
    if isinstance(times, pd.DatetimeIndex):
        return np.asarray(times.to_pydatetime())
    return np.asarray(times)


def same_calendar(a: str, b: str) -> bool:
    """True if two CF calendar names mean the same calendar."""
    aliases = {
        "365_day": "noleap",
        "366_day": "all_leap",
        **dict.fromkeys(STANDARD_CALENDARS, "standard"),
    }
    return aliases.get(a, a) == aliases.get(b, b)


def select_grid(ds: xr.Dataset, grid: dict, where: str) -> xr.Dataset:
    """``ds`` on the described grid: equal to it, or cut from a larger grid holding it.

    Raises
    ------
    DataError
        If ``ds`` lacks the y/x dims or its grid does not contain the described one;
        the message names both grids.
    """
    names = grid["dims"]
    missing = [names[a] for a in ("y", "x") if names[a] not in ds.dims]
    if missing:
        raise DataError(
            f"{where}: has no dim {', '.join(missing)} "
            f"(its dims are {', '.join(map(str, ds.dims))}); "
            f"it must be on the training grid ({_describe(grid_coords(grid), names)})"
        )
    coords = grid_coords(grid)
    cut = {}
    for axis in ("y", "x"):
        dim = names[axis]
        found = locate(ds[dim].values, coords[dim].values)
        if found is None:
            raise DataError(
                f"{where}: its grid ({_describe(ds, names)}) differs from the training grid "
                f"({_describe(coords, names)}); regrid it to the training grid first"
            )
        cut[dim] = found
    return ds.isel(cut)


def locate(values: np.ndarray, wanted: np.ndarray) -> slice | None:
    """The slice of ``values`` equal (to float precision) to ``wanted``, or None."""
    values, wanted = np.asarray(values, dtype=float), np.asarray(wanted, dtype=float)
    for start in np.flatnonzero(np.isclose(values, wanted[0], rtol=1e-6, atol=1e-9)):
        piece = values[start : start + wanted.size]
        if piece.size == wanted.size and np.allclose(piece, wanted, rtol=1e-6, atol=1e-9):
            return slice(int(start), int(start) + wanted.size)
    return None


def _describe(coords, names: dict) -> str:
    parts = []
    for axis in ("y", "x"):
        values = np.asarray(coords[names[axis]].values)
        parts.append(f"{names[axis]} {values.size} points {values[0]:g}..{values[-1]:g}")
    return ", ".join(parts)


# ---------------------------------------------------------------------------
# write_netcdf
# ---------------------------------------------------------------------------


def check_output_path(path: str | Path) -> Path:
    """Raise ``DataError`` unless ``path`` can be written: its directory exists and is writable."""
    path = Path(path)
    parent = path.parent
    if path.is_dir():
        raise DataError(f"--out {path}: is a directory; give a file name such as {path / 'syn.nc'}")
    if not parent.is_dir():
        raise DataError(f"--out {path}: directory {parent} does not exist; create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise DataError(
            f"--out {path}: directory {parent} is not writable; choose another directory"
        )
    return path


def write_netcdf(ds: xr.Dataset, path: str | Path, command: str | None = None) -> Path:
    """Write ``ds`` as CF-1.8 NetCDF4, float32 + zlib, atomically.

    Parameters
    ----------
    ds : xr.Dataset
        Data variables and coordinates with their CF attributes; a time coordinate's
        ``units``/``calendar``/``dtype`` encoding is kept.
    path : str or Path
        Output file; written under a temporary name in the same directory and renamed,
        so an interrupted write leaves no partial file at ``path``.
    command : str, optional
        The command that produced the data, for ``history``; defaults to ``sys.argv``.

    Returns
    -------
    Path
        The path written.
    """
    path = check_output_path(path)
    out = ds.copy()
    out.attrs = {
        "Conventions": CONVENTIONS,
        **{k: v for k, v in ds.attrs.items() if k not in ("Conventions", "history")},
        "history": _history(command, ds.attrs.get("history")),
        "stgan_version": __version__,
    }
    encoding = _encoding(out)
    for variable in out.variables.values():
        variable.encoding = {}
    with atomic_path(path) as tmp:
        out.to_netcdf(tmp, engine="netcdf4", format="NETCDF4", encoding=encoding)
    return path


def _history(command: str | None, previous: str | None) -> str:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    line = f"{stamp}: {command or shlex.join(sys.argv)}"
    return f"{line}\n{previous}" if previous else line  # newest first, as NCO does


def _encoding(ds: xr.Dataset) -> dict[str, dict]:
    encoding: dict[str, dict] = {}
    for name, coord in ds.coords.items():
        kept = {k: coord.encoding[k] for k in ("units", "calendar", "dtype") if k in coord.encoding}
        encoding[str(name)] = {**kept, "_FillValue": None}  # CF: no missing coordinates
    for name, var in ds.data_vars.items():
        if var.dtype.kind != "f":
            continue
        encoding[str(name)] = {
            "dtype": "float32",
            "zlib": True,
            "complevel": 4,
            "_FillValue": FILL_VALUE,
        }
        if var.ndim >= 3 and 0 not in var.shape:  # one chunk per sample (leading dim)
            encoding[str(name)]["chunksizes"] = (1, *var.shape[1:])
    return encoding
