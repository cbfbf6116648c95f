"""Generated data families with known statistics: the built-in data sets besides the default.

Each family is one small maker, ``make_<family>(path, seed)``, that writes a CF NetCDF
file (float32, zlib) deterministically from its seed and records the statistics it was
built with as global attributes (``expected_lag1_autocorrelation``, ``spectral_slope``,
``expected_zero_fraction``, ...), like :mod:`stgan.data.synthetic`. They cover what users
bring: AR(1) random fields of several persistences and spectral slopes, an advected field,
daily and seasonal cycles under noise (on a 360_day calendar), traffic-like zero-inflated
counts, and intermittent rain-like fields; odd non-square grids and NaN masks among them.

:data:`BUILTINS` is the one registry of built-in data sets: a spec's ``files:
builtin:<name>`` is looked up there (:func:`stgan.data.io.resolve_files`), and
:func:`ensure_builtin` writes a file into the cache dir on first use and reuses it after.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr
from scipy.special import ndtr

from stgan.atomic import atomic_path
from stgan.data.synthetic import default_cache_dir, ensure_synthetic
from stgan.errors import SpecError

__all__ = ["BUILTINS", "FAMILIES", "Family", "ensure_builtin", "gaussian_ar1_field"]

DEFAULT_SEED = 0
FILL = np.float32(1.0e20)


# -- the shared latent field ------------------------------------------------------------


def _psd(ny: int, nx: int, slope: float) -> np.ndarray:
    """Power spectral density ``k ** slope`` on the ``(y, x)`` FFT grid, zero at ``k = 0``."""
    k = np.hypot(np.fft.fftfreq(ny)[:, None], np.fft.fftfreq(nx)[None, :])  # cycles per cell
    psd = np.zeros_like(k)
    psd[k > 0] = k[k > 0] ** slope
    return psd


def _shift(ny: int, nx: int, velocity: tuple[float, float]) -> np.ndarray:
    """Per-step Fourier phase factor moving a field by ``velocity`` (x, y) cells."""
    ky, kx = np.fft.fftfreq(ny)[:, None], np.fft.fftfreq(nx)[None, :]
    return np.exp(-2j * np.pi * (kx * velocity[0] + ky * velocity[1]))  # (y, x)


def expected_lag1(
    ny: int, nx: int, phi: float, slope: float, velocity: tuple[float, float] = (0.0, 0.0)
) -> float:
    """Lag-1 autocorrelation at a fixed cell of :func:`gaussian_ar1_field`: ``phi``,
    damped by advection (PSD-weighted mean of ``cos(2 pi k . u)``)."""
    psd = _psd(ny, nx, slope)
    return float(phi * (psd * _shift(ny, nx, velocity).real).sum() / psd.sum())


def gaussian_ar1_field(
    rng: np.random.Generator,
    nt: int,
    ny: int,
    nx: int,
    phi: float,
    slope: float,
    velocity: tuple[float, float] = (0.0, 0.0),
) -> np.ndarray:
    """A unit-variance Gaussian random field, ``(time, y, x)`` float32.

    Its spatial PSD goes as ``k ** slope``; every Fourier mode is AR(1) with coefficient
    ``phi`` per step in the frame moving ``velocity`` (x, y) cells per step, started from
    its stationary distribution.
    """
    psd = _psd(ny, nx, slope)
    amplitude = np.sqrt(psd * 2.0 * (ny * nx) ** 2 / psd.sum())  # Re(ifft2) variance 1
    decay = phi * _shift(ny, nx, velocity)
    innovation = np.sqrt(1.0 - phi**2) * amplitude
    draws = rng.standard_normal((nt, 2, ny, nx))
    noise = (draws[:, 0] + 1j * draws[:, 1]) / np.sqrt(2.0)  # (t, y, x), E|noise|^2 = 1
    modes = np.empty((nt, ny, nx), dtype=np.complex128)
    modes[0] = amplitude * noise[0]
    for t in range(1, nt):
        modes[t] = decay * modes[t - 1] + innovation * noise[t]
    return np.fft.ifft2(modes, axes=(-2, -1)).real.astype(np.float32)


# -- the families --------------------------------------------------------------------------


def make_ar1(
    path: str | os.PathLike[str],
    seed: int = DEFAULT_SEED,
    *,
    phi: float,
    slope: float,
    shape: tuple[int, int, int],
    freq: str,
) -> Path:
    """``z``: a stationary AR(1) Gaussian random field (no cycle, no mask), unit variance.

    Known: ``phi`` (= the lag-1 autocorrelation at every cell), ``spectral_slope``.
    """
    nt, ny, nx = shape
    z = gaussian_ar1_field(np.random.default_rng(seed), nt, ny, nx, phi, slope)
    coords = _grid_coords(_times(nt, freq), ny, nx)
    attrs = {"phi": phi, "spectral_slope": slope, "expected_lag1_autocorrelation": phi}
    return _write({"z": (z, _attrs("1", "AR(1) Gaussian random field"))}, coords, attrs, path, seed)


def make_advected(path: str | os.PathLike[str], seed: int = DEFAULT_SEED) -> Path:
    """``tracer``: a field carried east-north-east at a constant velocity, NaN on a coast.

    28 x 20 cells, hourly. Known: ``phi``, ``spectral_slope``, ``advection_cells_per_step_x``
    and ``_y``, ``expected_lag1_autocorrelation`` (at a fixed cell, below ``phi``) and
    ``mask_cells`` (a fixed NaN "land" region in the south-east).
    """
    nt, ny, nx = 1500, 20, 28
    phi, slope, velocity = 0.9, -3.0, (0.8, 0.3)
    z = gaussian_ar1_field(np.random.default_rng(seed), nt, ny, nx, phi, slope, velocity)
    tracer = 10.0 + 2.0 * z
    land = _coast_mask(ny, nx)
    tracer[:, land] = np.nan
    attrs = {
        "phi": phi,
        "spectral_slope": slope,
        "advection_cells_per_step_x": velocity[0],
        "advection_cells_per_step_y": velocity[1],
        "expected_lag1_autocorrelation": expected_lag1(ny, nx, phi, slope, velocity),
        "mask_cells": int(land.sum()),
    }
    coords = _grid_coords(_times(nt, "h"), ny, nx)
    variables = {"tracer": (tracer, _attrs("1", "advected passive tracer"))}
    return _write(variables, coords, attrs, path, seed)


def make_cycles(path: str | os.PathLike[str], seed: int = DEFAULT_SEED) -> Path:
    """``tas``: a seasonal and a daily cycle under AR(1) noise, 6-hourly on a 360_day calendar.

    12 x 20 cells, two 360-day years. Known: ``daily_period`` and ``seasonal_period`` (steps),
    their amplitudes (K), ``phi`` of the anomaly and its ``spectral_slope``.
    """
    nt, ny, nx = 2880, 12, 20
    daily, seasonal = 4, 1440  # steps per day and per 360-day year
    phi, slope = 0.7, -3.0
    rng = np.random.default_rng(seed)
    t = np.arange(nt)[:, None, None]
    phase_x = np.linspace(0.0, 0.5, nx)[None, None, :]  # local time shifts along x
    tas = (
        285.0
        + 8.0 * np.cos(2 * np.pi * (t / seasonal - 0.55))
        + 3.0 * np.cos(2 * np.pi * (t / daily - phase_x))
        + 1.5 * gaussian_ar1_field(rng, nt, ny, nx, phi, slope)
    ).astype(np.float32)
    attrs = {
        "daily_period": daily,
        "seasonal_period": seasonal,
        "daily_amplitude": 3.0,
        "seasonal_amplitude": 8.0,
        "anomaly_std": 1.5,
        "phi": phi,
        "spectral_slope": slope,
    }
    times = xr.date_range("2001-01-01", periods=nt, freq="6h", calendar="360_day", use_cftime=True)
    coords = _grid_coords(times, ny, nx)
    variables = {"tas": (tas, _attrs("K", "air temperature (synthetic)", "air_temperature"))}
    return _write(variables, coords, attrs, path, seed, calendar="360_day")


def make_traffic(path: str | os.PathLike[str], seed: int = DEFAULT_SEED) -> Path:
    """``inflow``, ``outflow``: zero-inflated trip counts at fixed hot spots, 30-min steps.

    16 x 12 cells, six weeks. The Poisson rate is a fixed map (a low background and three
    hot spots) times a daily rhythm (morning and evening peaks, quiet weekend mornings)
    times a slowly varying log-normal factor. Known: ``hot_spot_y``/``_x``,
    ``daily_period`` and ``weekly_period`` (steps) and each variable's
    ``expected_zero_fraction`` (the mean of ``exp(-rate)`` over the realised rates).
    """
    nt, ny, nx = 2016, 16, 12
    rng = np.random.default_rng(seed)
    spots = ((3, 8), (9, 3), (12, 9))
    yy, xx = np.mgrid[0:ny, 0:nx]
    base = 0.05 + sum(6.0 * np.exp(-((yy - y) ** 2 + (xx - x) ** 2) / 2.0) for y, x in spots)
    hour = (np.arange(nt) % 48) / 2.0
    weekend = (np.arange(nt) // 48) % 7 >= 5
    factor = np.exp(0.3 * gaussian_ar1_field(rng, nt, ny, nx, 0.95, -2.0))  # (t, y, x)
    variables, attrs = {}, {}
    for name, peak in (("inflow", 8.5), ("outflow", 17.5)):
        rhythm = _rush_hours(hour, peak, weekend)  # (t,)
        rate = base[None] * rhythm[:, None, None] * factor
        counts = rng.poisson(rate).astype(np.float32)
        variables[name] = (counts, _attrs("1", f"trips ({name}) per cell and 30 minutes"))
        attrs[f"{name}_expected_zero_fraction"] = float(np.exp(-rate).mean())
        attrs[f"{name}_peak_hour"] = peak
    attrs |= {
        "hot_spot_y": [y for y, _ in spots],
        "hot_spot_x": [x for _, x in spots],
        "daily_period": 48,
        "weekly_period": 336,
    }
    coords = _grid_coords(_times(nt, "30min"), ny, nx, projected=True)
    return _write(variables, coords, attrs, path, seed)


def make_rain(path: str | os.PathLike[str], seed: int = DEFAULT_SEED) -> Path:
    """``rain``: intermittent rain cells drifting over a round radar domain, 10-min steps.

    32 x 28 cells, two weeks. Rain is ``scale * max(Z - threshold, 0) ** 1.5`` of an
    advected Gaussian field ``Z``; NaN outside the radar's range. Known:
    ``expected_wet_fraction`` (``P(Z > threshold)``), the latent ``phi``,
    ``spectral_slope``, advection and ``mask_cells``.
    """
    nt, ny, nx = 2016, 32, 28
    phi, slope, velocity, threshold = 0.95, -3.5, (0.3, 0.15), 1.0
    z = gaussian_ar1_field(np.random.default_rng(seed), nt, ny, nx, phi, slope, velocity)
    rain = (4.0 * np.maximum(z - threshold, 0.0) ** 1.5).astype(np.float32)
    yy, xx = np.mgrid[0:ny, 0:nx]
    outside = np.hypot(yy - (ny - 1) / 2, xx - (nx - 1) / 2) > min(ny, nx) / 2
    rain[:, outside] = np.nan
    attrs = {
        "threshold": threshold,
        "expected_wet_fraction": float(ndtr(-threshold)),
        "phi": phi,
        "spectral_slope": slope,
        "advection_cells_per_step_x": velocity[0],
        "advection_cells_per_step_y": velocity[1],
        "mask_cells": int(outside.sum()),
    }
    coords = _grid_coords(_times(nt, "10min"), ny, nx, projected=True)
    variables = {
        "rain": (rain, _attrs("mm h-1", "rain rate (synthetic)", "rainfall_rate")),
    }
    return _write(variables, coords, attrs, path, seed)


# -- the registry ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Family:
    """A generated data set: its maker ``make(path, seed)`` and the version of its file
    (bump it when the maker changes, so stale cached files are not reused)."""

    name: str
    make: Callable[..., Path]
    version: int = 1

    def ensure(self, cache_dir: str | os.PathLike[str] | None = None) -> Path:
        """``<cache_dir>/<name>_v<version>_seed0.nc``, written on first use."""
        directory = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
        path = directory / f"{self.name}_v{self.version}_seed{DEFAULT_SEED}.nc"
        if not path.is_file():
            self.make(path, DEFAULT_SEED)
        return path


FAMILIES: dict[str, Family] = {
    f.name: f
    for f in (
        Family(
            "ar1_rough",
            partial(make_ar1, phi=0.5, slope=-2.0, shape=(2000, 20, 28), freq="h"),
        ),
        Family(
            "ar1_smooth",
            partial(make_ar1, phi=0.95, slope=-4.0, shape=(2920, 16, 24), freq="6h"),
        ),
        Family("advected", make_advected),
        Family("cycles", make_cycles),
        Family("traffic", make_traffic),
        Family("rain", make_rain),
    )
}
# Every built-in data set: name -> ensure(cache_dir=None) -> path of its file.
BUILTINS: dict[str, Callable[..., Path]] = {
    "synthetic": ensure_synthetic,
    **{name: family.ensure for name, family in FAMILIES.items()},
}


def ensure_builtin(name: str, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """The file of built-in data set ``name``, written on first use; ``SpecError`` naming
    the known ones if there is no such set."""
    if name not in BUILTINS:
        known = ", ".join(f"builtin:{n}" for n in BUILTINS)
        raise SpecError(f"files: unknown built-in data set 'builtin:{name}'; known: {known}")
    return BUILTINS[name](cache_dir)


# -- file layout -----------------------------------------------------------------------------


def _rush_hours(hour: np.ndarray, peak: float, weekend: np.ndarray) -> np.ndarray:
    """Relative demand per step: a night low, a rush-hour peak at ``peak`` o'clock and a
    broad day; weekend days lose the rush hour."""
    day = 0.15 + 0.85 * np.exp(-(((hour - 14.0) / 5.0) ** 2))
    rush = np.exp(-(((hour - peak) / 1.2) ** 2))
    return np.where(weekend, 0.8 * day, day + 1.5 * rush)


def _coast_mask(ny: int, nx: int) -> np.ndarray:
    """True on "land": the cells south-east of a curved coastline, about a third of the grid."""
    yy, xx = np.mgrid[0:ny, 0:nx]
    coast = 0.35 * ny + 0.15 * ny * np.sin(np.pi * xx / nx)
    return (yy < coast - 0.25 * ny) | ((yy < coast) & (xx > 0.6 * nx))


def _times(nt: int, freq: str) -> pd.DatetimeIndex:
    return pd.date_range("2001-01-01", periods=nt, freq=freq)


def _grid_coords(
    times, ny: int, nx: int, projected: bool = False
) -> dict[str, tuple[str, np.ndarray, dict[str, str]]]:
    time = ("time", np.asarray(times), {"axis": "T", "standard_name": "time"})
    if projected:  # kilometres on a local plane
        return {
            "time": time,
            "y": ("y", np.arange(ny, dtype=float), _axis_attrs("Y", "projection_y_coordinate")),
            "x": ("x", np.arange(nx, dtype=float), _axis_attrs("X", "projection_x_coordinate")),
        }
    lat = 45.0 + 0.25 * np.arange(ny)
    lon = -10.0 + 0.25 * np.arange(nx)
    lat_attrs = {"axis": "Y", "standard_name": "latitude", "units": "degrees_north"}
    lon_attrs = {"axis": "X", "standard_name": "longitude", "units": "degrees_east"}
    return {"time": time, "lat": ("lat", lat, lat_attrs), "lon": ("lon", lon, lon_attrs)}


def _axis_attrs(axis: str, standard_name: str) -> dict[str, str]:
    return {"axis": axis, "standard_name": standard_name, "units": "km"}


def _attrs(units: str, long_name: str, standard_name: str | None = None) -> dict[str, str]:
    found = {"units": units, "long_name": long_name}
    return found | ({"standard_name": standard_name} if standard_name else {})


def _write(
    variables: dict[str, tuple[np.ndarray, dict[str, str]]],
    coords: dict,
    known: dict[str, object],
    path: str | os.PathLike[str],
    seed: int,
    calendar: str = "standard",
) -> Path:
    """Write ``variables`` (each ``(time, y, x)``) atomically with the known statistics
    as global attributes."""
    dims = tuple(coords)  # time, y, x
    data_vars = {n: (dims, v.astype(np.float32), a) for n, (v, a) in variables.items()}
    attrs = {
        "Conventions": "CF-1.8",
        "source": "stgan generated family (stgan/data/families.py)",
        "seed": int(seed),
        **known,
    }
    ds = xr.Dataset(data_vars, coords=coords, attrs=attrs)
    ny, nx = ds.sizes[dims[1]], ds.sizes[dims[2]]
    field = {
        "dtype": "float32",
        "zlib": True,
        "complevel": 1,
        "chunksizes": (min(48, ds.sizes["time"]), ny, nx),
        "_FillValue": FILL,
    }
    encoding = {n: field for n in variables}
    encoding |= {name: {"_FillValue": None} for name in dims[1:]}
    encoding["time"] = {"units": "minutes since 2001-01-01", "calendar": calendar, "dtype": "i4"}
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4", encoding=encoding)
    return path
