"""Input rules: arrays checked and laid out as ``(sample, time, y, x)`` per variable.

The dims are identified as the data loader identifies them (:mod:`stgan.data.dims`): CF
attributes, then common names; a dim identified on one side names the same-named dim of
the other. A dataset without a sample dimension is cut into non-overlapping windows of
the other side's sequence length, from its first time step; the remainder is dropped.

NaN is missing data on either side. Infinite values are refused (a file that holds them
is broken, and the metrics would turn them into null scores), and so are two files
whose time coordinates step differently (1 h real against 30 min synthetic).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict

import dask
import numpy as np
import pandas as pd
import xarray as xr

from stgan.data.dims import AXES, SAMPLE_NAMES, Dims, find_dim
from stgan.errors import DataError
from stgan.metrics.acf import default_lags
from stgan.metrics.base import Array, check_ndim

LAYOUT_AXES = ("sample", *AXES)
# The (sample or None, time, y, x) dim names of one variable.
Layout = tuple[str | None, str, str, str]


def to_samples(array: Array, length: int) -> Array:
    """Cut a ``(time, y, x)`` series into ``(n, length, y, x)`` non-overlapping windows.

    Windows start at the first step; the remainder (``time % length`` steps) is dropped.
    """
    check_ndim(array, 3, "(time, y, x)")
    n = array.shape[0] // length
    if n == 0:
        raise DataError(
            f"a series of {array.shape[0]} steps is shorter than one window of {length}"
        )
    return array[: n * length].reshape(n, length, *array.shape[1:])


def check_arrays(
    real: Mapping[str, Array], synthetic: Mapping[str, Array], lags: int | None
) -> int:
    """Check two ``{variable: (sample, time, y, x)}`` mappings; return the lag count K."""
    if set(real) != set(synthetic) or not real:
        raise DataError(f"variables differ: real has {sorted(real)}, synthetic {sorted(synthetic)}")
    for side, arrays in (("real", real), ("synthetic", synthetic)):
        shapes = {name: tuple(a.shape) for name, a in arrays.items()}
        for array in arrays.values():
            check_ndim(array, 4, "(sample, time, y, x)")
        if len(set(shapes.values())) > 1:
            raise DataError(f"{side} variables have different shapes {shapes}; give them one grid")
    name = next(iter(real))
    shape_r, shape_s = tuple(real[name].shape[1:]), tuple(synthetic[name].shape[1:])
    if shape_r != shape_s:
        raise DataError(
            f"{name!r}: real (time, y, x) is {shape_r}, synthetic {shape_s}; "
            "give both the same sequence length and grid"
        )
    length = shape_r[0]
    lags = default_lags(length) if lags is None else lags
    if not 1 <= lags < length:
        raise DataError(
            f"sequences of {length} steps are too short for {lags} lags; use lags < {length}"
        )
    return lags


def dataset_arrays(
    real: xr.Dataset,
    synthetic: xr.Dataset,
    variables: Sequence[str] | None = None,
    dims: Dims | Mapping[str, str] | None = None,
) -> tuple[dict[str, Array], dict[str, Array]]:
    """Per-variable ``(sample, time, y, x)`` arrays of two datasets, after checking them.

    Raises DataError for dims that cannot be identified, different variables or grids,
    differing ``units``, an all-NaN variable, or when neither side has a sample dimension.
    """
    arrays = layout_arrays(real, synthetic, variables, dims)
    nan_census(*arrays)
    return arrays


def layout_arrays(
    real: xr.Dataset,
    synthetic: xr.Dataset,
    variables: Sequence[str] | None = None,
    dims: Dims | Mapping[str, str] | None = None,
) -> tuple[dict[str, Array], dict[str, Array]]:
    """``dataset_arrays`` without the NaN check, so without reading any data.

    ``dims`` (axis -> dim name, or a data source's :class:`~stgan.data.dims.Dims`) names
    dims that carry neither CF attributes nor common names, as a spec's ``dims:`` does.
    Dask-backed datasets give dask arrays, still lazy: open large files with ``chunks``
    along the sample (or time) dimension and the metrics stream them in batches.
    """
    named = asdict(dims) if isinstance(dims, Dims) else dict(dims or {})
    names = _variables(real, synthetic, variables)
    layouts = {n: _pair_layouts(real[n], synthetic[n], named) for n in names}
    for name in names:
        _check_pair(real[name], synthetic[name], name, layouts[name])
    length = _sequence_length(real[names[0]], synthetic[names[0]], layouts[names[0]])
    check_time_steps(
        *(time_index(ds, layout[1]) for ds, layout in zip((real, synthetic), layouts[names[0]]))
    )
    return tuple(
        {n: _samples(ds[n], layouts[n][side], length) for n in names}
        for side, ds in enumerate((real, synthetic))
    )


def nan_census(real: Mapping[str, Array], synthetic: Mapping[str, Array]) -> dict[str, int]:
    """Synthetic NaN cells at grid points where the real data has no NaN, per variable.

    One pass over ``(sample, time, y, x)`` NumPy or dask arrays (dask streams its chunks).
    Raises DataError for a variable with an infinite value, or all NaN, on either side.
    """
    counts = dask.compute(
        {
            name: [
                (np.isnan(arrays[name]).sum(axis=(0, 1)), np.isinf(arrays[name]).sum())
                for arrays in (real, synthetic)
            ]
            for name in real
        }
    )[0]  # {name: [((y, x) NaN counts, Inf count) of real, of synthetic]}
    for name, per_side in counts.items():
        for side, arrays, (nans, infs) in zip(("real", "synthetic"), (real, synthetic), per_side):
            check_finite(name, side, int(infs))
            if int(nans.sum()) == np.prod(arrays[name].shape):
                raise DataError(f"{name!r} is all NaN in the {side} data; drop it or fix the file")
    return {
        name: int(nans_s[nans_r == 0].sum()) for name, ((nans_r, _), (nans_s, _)) in counts.items()
    }


def check_finite(name: str, side: str, infinite: int) -> None:
    """Raise DataError when ``infinite`` values of variable ``name`` are +-Inf."""
    if infinite:
        raise DataError(
            f"{name!r} has {infinite} infinite value(s) in the {side} data; set them to NaN "
            "(missing) or fix the file"
        )


def time_index(ds: xr.Dataset | xr.DataArray, dim: str | None) -> pd.Index | None:
    """The time coordinate along ``dim`` as an index, or None when there is none."""
    if dim is None or dim not in ds.coords or ds[dim].ndim != 1:
        return None
    return ds.indexes.get(dim)


def check_time_steps(real: pd.Index | None, synthetic: pd.Index | None) -> None:
    """Raise DataError when both time coordinates have a step and the steps differ.

    The step of a series is its most common one (:func:`stgan.data.windows.time_steps`);
    a side without a datetime coordinate of two or more steps is not compared.
    """
    steps = [_time_step(index) for index in (real, synthetic)]
    if None not in steps and steps[0] != steps[1]:
        every = [str(step.to_pytimedelta()) for step in steps]  # e.g. 1:00:00, 1 day, 0:00:00
        raise DataError(
            f"time steps differ: real every {every[0]}, synthetic every {every[1]}; resample "
            "one to the other's step (xarray's resample) before comparing"
        )


def _time_step(index: pd.Index | None) -> pd.Timedelta | None:
    from stgan.data.windows import time_steps

    if index is None or len(index) < 2:
        return None
    try:
        return time_steps(index)[0]
    except (DataError, TypeError, ValueError):  # not datetimes, or not increasing
        return None


def _variables(real: xr.Dataset, synthetic: xr.Dataset, chosen: Sequence[str] | None) -> list[str]:
    if chosen is not None:
        missing = [
            f"{n!r} in {side}"
            for n in chosen
            for side, ds in (("real", real), ("synthetic", synthetic))
            if n not in ds
        ]
        if missing:
            present = [sorted(_gridded(ds)) for ds in (real, synthetic)]
            raise DataError(
                f"variables not found: {', '.join(missing)}; real has {present[0]}, "
                f"synthetic {present[1]}"
            )
        return list(chosen)
    gridded = [_gridded(ds) for ds in (real, synthetic)]
    if gridded[0] != gridded[1] or not gridded[0]:
        raise DataError(
            f"variables differ: only in real {sorted(gridded[0] - gridded[1])}, only in "
            f"synthetic {sorted(gridded[1] - gridded[0])}; choose shared ones "
            "(--variables a,b or variables=[...])"
        )
    return sorted(gridded[0])


def _gridded(ds: xr.Dataset) -> set[str]:
    """Names of the variables with at least (time, y, x) dimensions."""
    return {n for n, v in ds.data_vars.items() if v.ndim >= 3}


def _pair_layouts(
    real: xr.DataArray, synthetic: xr.DataArray, named: Mapping[str, str]
) -> tuple[Layout, Layout]:
    """The layouts of one variable on both sides; a dim identified on one side (by name,
    CF attributes or common name) names the same-named dim of the other."""
    found = [{axis: _find(da, axis, named) for axis in LAYOUT_AXES} for da in (real, synthetic)]
    for axis in LAYOUT_AXES:
        for this, other, da in ((found[0], found[1], real), (found[1], found[0], synthetic)):
            if this[axis] is None and other[axis] in da.dims:
                this[axis] = other[axis]
    return _layout(real, found[0]), _layout(synthetic, found[1])


def _find(da: xr.DataArray, axis: str, named: Mapping[str, str]) -> str | None:
    name = named.get(axis)
    return name if name in da.dims else find_dim(da, axis)


def _layout(da: xr.DataArray, found: Mapping[str, str | None]) -> Layout:
    layout = tuple(found[axis] for axis in LAYOUT_AXES)
    used = [d for d in layout if d is not None]
    if None in layout[1:] or len(set(used)) != len(used) or set(used) != set(da.dims):
        identified = ", ".join(f"{axis}={dim}" for axis, dim in found.items() if dim)
        raise DataError(
            f"{da.name!r} has dims {da.dims} (identified: {identified or 'none'}); expected "
            f"time, y, x and optionally a sample dim ({'/'.join(SAMPLE_NAMES)}): give the "
            "coordinates CF 'axis' attributes (T, Y, X) or common names (time, lat, lon)"
        )
    return layout


def _check_pair(
    real: xr.DataArray, synthetic: xr.DataArray, name: str, layouts: tuple[Layout, Layout]
) -> None:
    units = real.attrs.get("units"), synthetic.attrs.get("units")
    if units[0] != units[1]:
        raise DataError(f"{name!r}: real units {units[0]!r}, synthetic {units[1]!r}; convert one")
    for axis, dim_r, dim_s in zip(("y", "x"), layouts[0][2:], layouts[1][2:], strict=True):
        coords = [
            da[d].values if d in da.coords else np.arange(da.sizes[d])
            for da, d in ((real, dim_r), (synthetic, dim_s))
        ]
        if coords[0].shape != coords[1].shape or not np.allclose(coords[0], coords[1]):
            raise DataError(
                f"{name!r}: real and synthetic grids differ along {axis} ({dim_r} with "
                f"{coords[0].size} points vs {dim_s} with {coords[1].size}); regrid one onto the other"
            )


def _sequence_length(
    real: xr.DataArray, synthetic: xr.DataArray, layouts: tuple[Layout, Layout]
) -> int:
    for da, (sample, time, _, _) in zip((real, synthetic), layouts):
        if sample is not None:
            return da.sizes[time]
    raise DataError(
        f"neither dataset has a sample dimension ({'/'.join(SAMPLE_NAMES)}); add one to "
        "either, or cut the series with stgan.metrics.to_samples"
    )


def _samples(da: xr.DataArray, layout: Layout, length: int) -> Array:
    sample, time, y, x = layout
    if sample is None:
        return to_samples(da.transpose(time, y, x).data, length)
    return da.transpose(sample, time, y, x).data
