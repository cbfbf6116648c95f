"""Embedded default dataset: synthetic hourly fields with known statistics.

The generator draws a Gaussian random field whose Fourier modes each follow an AR(1)
process, so the spatial power spectrum and the lag-1 autocorrelation are known by
construction, then adds a daily cycle and a fixed NaN "land" region. It is the data
stgan trains on when the user gives none, and the reference the metrics are checked
against.

Known statistics, recorded as global attributes of the file:

* ``spectral_slope``: every field's 2-D power spectral density (averaged over annuli of
  wavenumber ``k``) goes as ``k ** spectral_slope``.
* ``phi``: each Fourier mode is AR(1) with coefficient ``phi`` per step in the frame
  moving with the advection velocity; ``expected_lag1_autocorrelation`` is the resulting
  lag-1 autocorrelation at a fixed grid cell (slightly below ``phi`` because of advection).
* ``daily_cycle_period``: ``tas`` has a pure first-harmonic daily cycle of this period (in
  steps), peaking at 14:00 local solar time.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd
import xarray as xr

from stgan.atomic import atomic_path
from stgan.errors import SpecError

__all__ = ["make_synthetic", "ensure_synthetic", "default_cache_dir", "SYNTHETIC_VERSION"]

# Bump when the generator or its defaults change, so stale cached files are not reused.
SYNTHETIC_VERSION = 1
DEFAULT_SEED = 0

SLOPE = -3.0  # power spectral density ~ k**SLOPE
PHI = 0.9  # per-step AR(1) coefficient of every Fourier mode (co-moving frame)
PERIOD = 24  # daily cycle, in hourly steps
VELOCITY = (0.5, 0.2)  # advection (east, north), grid cells per step
MASK_FRACTION = 0.1  # share of cells in the NaN "land" rectangle

TAS_MEAN = 285.0  # K
TAS_STD = 2.5  # K, standard deviation of the random anomaly
TAS_DAILY_AMPLITUDE = 3.0  # K
TAS_LAT_GRADIENT = -0.3  # K per degree north
TAS_PEAK_HOUR = 14.0  # local solar time of the daily maximum
PR_CORRELATION = 0.5  # correlation of the latent precipitation field with the tas field
PR_THRESHOLD = 0.8  # latent standard-normal value below which it is dry
PR_SCALE = 1.0  # mm h-1
PR_EXPONENT = 1.5

LAT0, LON0, DLATLON = 40.0, -8.0, 0.25  # grid origin and spacing, degrees


def make_synthetic(
    path: str | os.PathLike[str], seed: int = 0, nt: int = 1440, ny: int = 64, nx: int = 64
) -> Path:
    """Write a synthetic hourly dataset with known statistics to a NetCDF file.

    Parameters
    ----------
    path : str or os.PathLike
        Output file. Written under a temporary name in the same directory and moved into
        place atomically, so readers never see a partial file.
    seed : int
        Seed of the random generator; the same seed gives identical values.
    nt, ny, nx : int
        Number of hourly time steps and of grid rows (latitudes) and columns (longitudes).

    Returns
    -------
    pathlib.Path
        The path written.

    Notes
    -----
    Variables ``tas`` (air temperature, K) and ``pr`` (precipitation rate, mm h-1,
    non-negative), both ``(time, lat, lon)`` float32, zlib-compressed, chunked one day by
    the full grid, NaN on the same "land" rectangle (about 10 % of cells, north-east
    corner) at every time. The generating parameters are global attributes.
    """
    _check_sizes(nt=nt, ny=ny, nx=nx)
    ds = _build_dataset(seed, nt, ny, nx)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    _write_atomic(ds, path, chunk_t=min(PERIOD, nt))
    return path


def default_cache_dir() -> Path:
    """Return the stgan cache directory.

    ``$STGAN_CACHE_DIR`` if set, else ``$XDG_CACHE_HOME/stgan``, else ``~/.cache/stgan``.
    """
    if os.environ.get("STGAN_CACHE_DIR"):
        return Path(os.environ["STGAN_CACHE_DIR"]).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "stgan"


def ensure_synthetic(cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Return the default synthetic dataset, writing it on first use.

    Parameters
    ----------
    cache_dir : str or os.PathLike, optional
        Where to keep the file; defaults to :func:`default_cache_dir`.

    Returns
    -------
    pathlib.Path
        ``<cache_dir>/synthetic_v<version>_seed0.nc``. Safe when several processes call it
        at once: each writes its own temporary file and the last atomic replace wins, with
        identical contents.
    """
    directory = Path(cache_dir).expanduser() if cache_dir is not None else default_cache_dir()
    path = directory / f"synthetic_v{SYNTHETIC_VERSION}_seed{DEFAULT_SEED}.nc"
    if not path.is_file():
        make_synthetic(path, seed=DEFAULT_SEED)
    return path


def _check_sizes(**sizes: int) -> None:
    minimum = {"nt": 2, "ny": 4, "nx": 4}
    for name, value in sizes.items():
        if not isinstance(value, (int, np.integer)) or value < minimum[name]:
            raise SpecError(
                f"make_synthetic: {name}={value!r} is invalid; expected an integer >= "
                f"{minimum[name]}"
            )


def _spectral_amplitude(ny: int, nx: int) -> tuple[np.ndarray, np.ndarray]:
    """Fourier amplitude giving a unit-variance field with PSD ~ k**SLOPE, and |k|."""
    ky = np.fft.fftfreq(ny)[:, None]  # cycles per cell
    kx = np.fft.fftfreq(nx)[None, :]
    k = np.hypot(ky, kx)  # (y, x)
    psd = np.zeros_like(k)
    psd[k > 0] = k[k > 0] ** SLOPE  # no mean mode: the field has zero spatial mean
    # Re(ifft2(c)) with E|c_k|^2 = psd_k has variance sum(psd) / (2 N^2); make it 1.
    n = ny * nx
    psd *= 2.0 * n**2 / psd.sum()
    return np.sqrt(psd), psd


def _advection_phase(ny: int, nx: int) -> np.ndarray:
    """Per-step Fourier phase factor moving a field by ``VELOCITY`` cells."""
    ky = np.fft.fftfreq(ny)[:, None]
    kx = np.fft.fftfreq(nx)[None, :]
    u, v = VELOCITY
    return np.exp(-2j * np.pi * (kx * u + ky * v))  # (y, x)


def _expected_lag1(ny: int, nx: int) -> float:
    """Lag-1 autocorrelation at a fixed cell: ``phi`` damped by advection, PSD-weighted."""
    _, psd = _spectral_amplitude(ny, nx)
    shift = _advection_phase(ny, nx).real  # cos(2 pi k . u)
    return float(PHI * (psd * shift).sum() / psd.sum())


def _latent_fields(rng: np.random.Generator, nfield: int, nt: int, ny: int, nx: int) -> np.ndarray:
    """Independent unit-variance fields, AR(1) per Fourier mode and advected.

    Returns ``(field, time, y, x)`` float32. Noise is drawn step by step in order, so a
    shorter series is a prefix of a longer one with the same seed.
    """
    amplitude, _ = _spectral_amplitude(ny, nx)
    decay = PHI * _advection_phase(ny, nx)
    innovation = np.sqrt(1.0 - PHI**2) * amplitude
    out = np.empty((nfield, nt, ny, nx), dtype=np.float32)
    state = np.zeros((nfield, ny, nx), dtype=np.complex128)
    for start in range(0, nt, PERIOD):
        n = min(PERIOD, nt - start)
        draws = rng.standard_normal((n, nfield, 2, ny, nx))
        noise = (draws[:, :, 0] + 1j * draws[:, :, 1]) / np.sqrt(2.0)  # E|noise|^2 = 1
        modes = np.empty((n, nfield, ny, nx), dtype=np.complex128)
        for i in range(n):
            # Start from the stationary distribution, then step the AR(1) recursion.
            if start + i == 0:
                state = amplitude * noise[i]
            else:
                state = decay * state + innovation * noise[i]
            modes[i] = state
        fields = np.fft.ifft2(modes, axes=(-2, -1)).real  # (t, field, y, x)
        out[:, start : start + n] = fields.transpose(1, 0, 2, 3)
    return out


def _land_mask(ny: int, nx: int) -> np.ndarray:
    """True on a north-east rectangle of about ``MASK_FRACTION`` of the cells."""
    height = max(1, round(0.3 * ny))
    width = min(nx, max(1, round(MASK_FRACTION * ny * nx / height)))
    mask = np.zeros((ny, nx), dtype=bool)
    mask[ny - height :, nx - width :] = True
    return mask


def _build_dataset(seed: int, nt: int, ny: int, nx: int) -> xr.Dataset:
    rng = np.random.default_rng(seed)
    latent = _latent_fields(rng, 2, nt, ny, nx)  # (2, time, y, x)
    lat = LAT0 + DLATLON * np.arange(ny)
    lon = LON0 + DLATLON * np.arange(nx)
    hours = np.arange(nt)

    # Daily cycle by local solar time (15 degrees of longitude per hour).
    local_hour = hours[:, None, None] + lon[None, None, :] / 15.0 - TAS_PEAK_HOUR  # (t, 1, x)
    daily = TAS_DAILY_AMPLITUDE * np.cos(2.0 * np.pi * local_hour / PERIOD)
    gradient = TAS_LAT_GRADIENT * (lat - lat.mean())[None, :, None]  # (1, y, 1)
    # Work in float32, in place, to keep memory near the size of the output.
    tas = latent[0] * np.float32(TAS_STD)
    tas += (TAS_MEAN + gradient + daily).astype(np.float32)  # broadcast (t, y, x)

    rho = PR_CORRELATION
    pr = latent[1]  # reuse: pr latent = rho * tas latent + sqrt(1 - rho^2) * independent
    pr *= np.float32(np.sqrt(1.0 - rho**2))
    pr += np.float32(rho) * latent[0]  # still unit variance
    pr -= np.float32(PR_THRESHOLD)
    np.maximum(pr, 0.0, out=pr)
    np.power(pr, np.float32(PR_EXPONENT), out=pr)
    pr *= np.float32(PR_SCALE)

    mask = _land_mask(ny, nx)
    tas[:, mask] = np.nan
    pr[:, mask] = np.nan

    dims = ("time", "lat", "lon")
    coords = {
        "time": ("time", pd.date_range("2000-01-01", periods=nt, freq="h").values, _TIME_ATTRS),
        "lat": ("lat", lat, _LAT_ATTRS),
        "lon": ("lon", lon, _LON_ATTRS),
    }
    data_vars = {"tas": (dims, tas, _TAS_ATTRS), "pr": (dims, pr, _PR_ATTRS)}
    attrs = _global_attrs(seed, nt, ny, nx, int(mask.sum()))
    return xr.Dataset(data_vars, coords=coords, attrs=attrs)


_TIME_ATTRS = {"axis": "T", "standard_name": "time", "long_name": "time"}
_LAT_ATTRS = {
    "units": "degrees_north",
    "axis": "Y",
    "standard_name": "latitude",
    "long_name": "latitude",
}
_LON_ATTRS = {
    "units": "degrees_east",
    "axis": "X",
    "standard_name": "longitude",
    "long_name": "longitude",
}
_TAS_ATTRS = {
    "units": "K",
    "standard_name": "air_temperature",
    "long_name": "Near-surface air temperature (synthetic)",
    "cell_methods": "time: point",
}
_PR_ATTRS = {
    "units": "mm h-1",
    "standard_name": "lwe_precipitation_rate",
    "long_name": "Precipitation rate (synthetic)",
    "cell_methods": "time: mean",
}


def _global_attrs(seed: int, nt: int, ny: int, nx: int, mask_cells: int) -> dict[str, object]:
    return {
        "Conventions": "CF-1.8",
        "title": "stgan synthetic spatiotemporal fields with known statistics",
        "source": "stgan synthetic",
        # No timestamp: the file depends on the parameters alone.
        "history": f"stgan.data.synthetic.make_synthetic(seed={seed}, nt={nt}, ny={ny}, nx={nx})",
        "comment": (
            "Advected Gaussian random field, AR(1) per Fourier mode with power-law spectrum, "
            "plus a daily cycle; NaN on a fixed land rectangle. pr is a rectified power of a "
            "second latent field correlated with the tas anomaly."
        ),
        "synthetic_version": SYNTHETIC_VERSION,
        "seed": int(seed),
        "spectral_slope": SLOPE,
        "phi": PHI,
        "expected_lag1_autocorrelation": _expected_lag1(ny, nx),
        "period": PERIOD,
        "advection_cells_per_step_x": VELOCITY[0],
        "advection_cells_per_step_y": VELOCITY[1],
        "mask_cells": mask_cells,
        "tas_mean": TAS_MEAN,
        "tas_anomaly_std": TAS_STD,
        "tas_daily_amplitude": TAS_DAILY_AMPLITUDE,
        "tas_lat_gradient": TAS_LAT_GRADIENT,
        "pr_latent_correlation": PR_CORRELATION,
        "pr_threshold": PR_THRESHOLD,
        "pr_scale": PR_SCALE,
        "pr_exponent": PR_EXPONENT,
    }


def _write_atomic(ds: xr.Dataset, path: Path, chunk_t: int) -> None:
    ny, nx = ds.sizes["lat"], ds.sizes["lon"]
    field = {
        "dtype": "float32",
        "zlib": True,
        "complevel": 1,
        "shuffle": True,
        "chunksizes": (chunk_t, ny, nx),
        "_FillValue": np.float32(1.0e20),
    }
    encoding = {
        "tas": field,
        "pr": field,
        "time": {"units": "hours since 2000-01-01", "calendar": "standard", "dtype": "int32"},
        "lat": {"_FillValue": None},
        "lon": {"_FillValue": None},
    }
    with atomic_path(path) as tmp:
        ds.to_netcdf(tmp, engine="netcdf4", format="NETCDF4", encoding=encoding)
