"""Which dimension of a dataset is time, y, x or the sample axis: the one owner of that knowledge.

A dim is identified by, in order: a name the caller gives (the spec's ``dims:``), the CF
attributes of its coordinate (``axis``, ``standard_name``, latitude/longitude ``units``), then
a table of common names (case-insensitive). The data loader (:mod:`stgan.data.io`) and the
metrics' input rules (:mod:`stgan.metrics.inputs`) both ask here, so data that trains is data
that can be evaluated.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import xarray as xr

from stgan.errors import DataError

AXES = ("time", "y", "x")  # the axes every gridded variable has
SAMPLE_NAMES = ("sample", "member", "realization", "ensemble")
TIME_NAMES = ("time", "t", "valid_time", "date", "datetime")
Y_NAMES = ("lat", "latitude", "y", "rlat", "nav_lat", "south_north", "grid_latitude")
X_NAMES = ("lon", "longitude", "x", "rlon", "nav_lon", "west_east", "grid_longitude")
COMMON_NAMES = {"sample": SAMPLE_NAMES, "time": TIME_NAMES, "y": Y_NAMES, "x": X_NAMES}
AXIS_STANDARD_NAMES = {
    "sample": ("realization",),
    "time": ("time",),
    "y": ("latitude", "grid_latitude", "projection_y_coordinate"),
    "x": ("longitude", "grid_longitude", "projection_x_coordinate"),
}
AXIS_UNITS = {
    "y": ("degrees_north", "degree_north", "degrees_N"),
    "x": ("degrees_east", "degree_east", "degrees_E"),
}
AXIS_LETTERS = {"time": "T", "y": "Y", "x": "X"}

Data = xr.Dataset | xr.DataArray


@dataclass(frozen=True)
class Dims:
    """The names of the time, y and x dims in the files."""

    time: str
    y: str
    x: str


def _is_axis(attrs: Mapping, axis: str) -> bool:
    """True if a coordinate's CF ``attrs`` mark it as ``axis`` (sample, time, y or x)."""
    letter = AXIS_LETTERS.get(axis)
    return (
        (letter is not None and attrs.get("axis") == letter)
        or attrs.get("standard_name") in AXIS_STANDARD_NAMES[axis]
        or attrs.get("units") in AXIS_UNITS.get(axis, ())
    )


def find_dim(data: Data, axis: str) -> str | None:
    """The one dim of ``data`` that is ``axis`` by CF attributes, else by common name.

    Returns None when no dim, or more than one, qualifies.
    """
    by_attrs = [d for d in data.dims if d in data.coords and _is_axis(data[d].attrs, axis)]
    if len(by_attrs) == 1:
        return str(by_attrs[0])
    by_name = [d for d in data.dims if str(d).lower() in COMMON_NAMES[axis]]
    return str(by_name[0]) if len(by_name) == 1 else None


def detect_dims(data: Data, named: Mapping[str, str | None], where: str) -> Dims:
    """The time/y/x dims of ``data``: those ``named`` (axis -> dim), the rest detected.

    Raises
    ------
    DataError
        If a named dim is absent, an axis cannot be identified, or two axes share a dim.
    """
    names = {}
    for axis in AXES:
        name = named.get(axis)
        if name is not None and name not in data.dims:
            raise DataError(f"{where}: dims.{axis} '{name}' is not a dim; dims are {_list(data)}")
        names[axis] = name if name is not None else find_dim(data, axis)
        if names[axis] is None:
            raise DataError(
                f"{where}: cannot identify the {axis} dim among dims {_list(data)}; "
                f"name it in the spec, e.g. 'dims: {{{axis}: NAME}}'"
            )
    if len(set(names.values())) < len(AXES):
        raise DataError(
            f"{where}: dims detected as {names} are not distinct; set them under 'dims:' in the spec"
        )
    return Dims(**names)


def _list(data: Data) -> str:
    return ", ".join(str(d) for d in data.dims) or "(none)"
