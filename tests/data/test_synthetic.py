"""Tests for stgan/data/synthetic.py: file layout, CF metadata and the known statistics."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from stgan.data import synthetic
from stgan.data.synthetic import ensure_synthetic, make_synthetic
from stgan.errors import StganError

NT, NY, NX = 480, 48, 48  # 20 days: enough for the statistics, under a second to write


@pytest.fixture(scope="module")
def small(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_synthetic(tmp_path_factory.mktemp("syn") / "small.nc", seed=3, nt=NT, ny=NY, nx=NX)


@pytest.fixture(scope="module")
def ds(small: Path) -> xr.Dataset:
    with xr.open_dataset(small) as opened:
        return opened.load()


def _anomaly(tas: np.ndarray, period: int) -> np.ndarray:
    """Remove each cell's mean and first daily harmonic; returns ``(time, cell)``."""
    t = np.arange(tas.shape[0])
    design = np.stack(
        [np.ones_like(t), np.cos(2 * np.pi * t / period), np.sin(2 * np.pi * t / period)],
        axis=1,
    ).astype(float)  # (time, 3)
    y = tas.reshape(tas.shape[0], -1).astype(float)  # (time, cell)
    coef, *_ = np.linalg.lstsq(design, y, rcond=None)
    return y - design @ coef


def _radial_psd(field: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Radially averaged PSD of a Hann-windowed ``(..., y, x)`` field, in cycles per cell."""
    ny, nx = field.shape[-2:]
    window = np.outer(np.hanning(ny), np.hanning(nx))
    power = np.abs(np.fft.fft2(field * window)) ** 2
    power = power.reshape(-1, ny, nx).mean(axis=0)
    k = np.hypot(np.fft.fftfreq(ny)[:, None], np.fft.fftfreq(nx)[None, :])
    dk = 1.0 / min(ny, nx)
    bins = np.rint(k / dk).astype(int)
    counts = np.bincount(bins.ravel())
    mean_power = np.bincount(bins.ravel(), weights=power.ravel()) / np.maximum(counts, 1)
    return np.arange(len(counts)) * dk, mean_power


def test_same_seed_same_values_different_seed_differs(tmp_path: Path) -> None:
    def values(seed: int, name: str) -> np.ndarray:
        with xr.open_dataset(make_synthetic(tmp_path / name, seed=seed, nt=30, ny=8, nx=10)) as d:
            return np.stack([d.tas.values, d.pr.values])

    a, b, c = values(1, "a.nc"), values(1, "b.nc"), values(2, "c.nc")
    np.testing.assert_array_equal(a, b)
    valid = ~np.isnan(a)
    assert not np.allclose(a[valid], c[valid])


def test_shorter_series_is_prefix_of_longer(tmp_path: Path) -> None:
    with (
        xr.open_dataset(make_synthetic(tmp_path / "s.nc", seed=5, nt=30, ny=8, nx=8)) as short,
        xr.open_dataset(make_synthetic(tmp_path / "l.nc", seed=5, nt=50, ny=8, nx=8)) as long,
    ):
        np.testing.assert_array_equal(short.tas.values, long.tas.values[:30])


def test_layout_and_cf_metadata(small: Path, ds: xr.Dataset) -> None:
    assert ds.tas.dims == ds.pr.dims == ("time", "lat", "lon")
    assert dict(ds.sizes) == {"time": NT, "lat": NY, "lon": NX}
    assert ds.tas.dtype == ds.pr.dtype == np.float32

    time = ds.time
    assert time.values[0] == np.datetime64("2000-01-01T00:00")
    assert np.all(np.diff(time.values) == np.timedelta64(1, "h"))
    assert time.encoding["units"] == "hours since 2000-01-01"
    assert time.encoding["calendar"] == "standard"
    assert time.attrs["axis"] == "T" and time.attrs["standard_name"] == "time"

    for name, axis, units, std in [
        ("lat", "Y", "degrees_north", "latitude"),
        ("lon", "X", "degrees_east", "longitude"),
    ]:
        coord = ds[name]
        assert {"axis": axis, "units": units, "standard_name": std}.items() <= coord.attrs.items()
        assert np.allclose(np.diff(coord.values), np.diff(coord.values)[0])  # regular
    assert ds.lat.min() >= 40.0 and ds.lat.max() <= 56.0

    assert ds.tas.attrs["units"] == "K" and ds.tas.attrs["standard_name"] == "air_temperature"
    assert "long_name" in ds.tas.attrs
    assert ds.pr.attrs["units"] == "mm h-1"
    assert ds.pr.attrs["standard_name"] == "lwe_precipitation_rate"

    attrs = ds.attrs
    assert attrs["Conventions"] == "CF-1.8" and attrs["source"] == "stgan synthetic"
    assert "title" in attrs
    assert attrs["seed"] == 3
    assert (attrs["spectral_slope"], attrs["phi"], attrs["period"]) == (-3.0, 0.9, 24)

    for var in ("tas", "pr"):
        enc = ds[var].encoding
        assert enc["zlib"] and enc["chunksizes"] == (24, NY, NX)


def test_tas_values_are_plausible(ds: xr.Dataset) -> None:
    tas = ds.tas.values
    assert abs(np.nanmean(tas) - 285.0) < 2.0
    assert 1.0 < np.nanstd(tas) < 8.0


def test_mask_is_fixed_and_about_ten_percent(ds: xr.Dataset) -> None:
    for var in ("tas", "pr"):
        nan = np.isnan(ds[var].values)  # (time, lat, lon)
        assert (nan == nan[0]).all(), f"{var}: mask changes with time"
        assert nan.sum() == NT * ds.attrs["mask_cells"]
    mask = np.isnan(ds.tas.values[0])
    np.testing.assert_array_equal(mask, np.isnan(ds.pr.values[0]))
    assert 0.08 < mask.mean() < 0.12


def test_pr_is_non_negative_and_intermittent(ds: xr.Dataset) -> None:
    pr = ds.pr.values
    valid = pr[~np.isnan(pr)]
    assert (valid >= 0).all()
    assert 0.05 < (valid > 0).mean() < 0.6  # both dry and wet cells


def test_lag1_autocorrelation_matches_phi(ds: xr.Dataset) -> None:
    valid = ~np.isnan(ds.tas.values[0])
    anom = _anomaly(ds.tas.values[:, valid], ds.attrs["period"])  # (time, cell)
    r1 = (anom[1:] * anom[:-1]).sum() / (anom**2).sum()
    expected = ds.attrs["expected_lag1_autocorrelation"]
    assert 0.0 < ds.attrs["phi"] - expected < 0.05  # advection lowers it slightly
    assert r1 == pytest.approx(expected, abs=0.03)  # seeds 0-39: mean -0.006, sd 0.006


def test_spatial_spectrum_slope(ds: xr.Dataset) -> None:
    tas = ds.tas.values
    rows = ~np.isnan(tas[0]).any(axis=1)  # the land rectangle spans the northern rows
    n_rows = int(rows.sum())
    assert rows[:n_rows].all()
    anom = _anomaly(tas[:, :n_rows], ds.attrs["period"]).reshape(-1, n_rows, NX)
    k, psd = _radial_psd(anom[::6])  # (time, y, x) -> radial mean over every 6th step
    fit = (k >= 3.0 / n_rows) & (k <= 0.3)
    slope = np.polyfit(np.log(k[fit]), np.log(psd[fit]), 1)[0]
    assert slope == pytest.approx(ds.attrs["spectral_slope"], abs=0.3)  # seeds 0-39: sd 0.06


def test_invalid_size_is_a_user_error(tmp_path: Path) -> None:
    with pytest.raises(StganError, match="nt=0"):
        make_synthetic(tmp_path / "x.nc", nt=0)
    assert list(tmp_path.iterdir()) == []


def test_ensure_synthetic_writes_once_then_reuses(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[Path] = []
    real = synthetic.make_synthetic

    def tiny(path: Path, seed: int = 0) -> Path:  # the default size is for users, not tests
        calls.append(Path(path))
        return real(path, seed=seed, nt=48, ny=8, nx=8)

    monkeypatch.setattr(synthetic, "make_synthetic", tiny)
    first = ensure_synthetic(tmp_path)
    assert first.parent == tmp_path and first.name == "synthetic_v1_seed0.nc"
    mtime = first.stat().st_mtime_ns
    second = ensure_synthetic(tmp_path)
    assert second == first and second.stat().st_mtime_ns == mtime
    assert len(calls) == 1
    assert [p.name for p in tmp_path.iterdir()] == [first.name]  # no temporary left
    with xr.open_dataset(first) as d:
        assert d.attrs["seed"] == 0


def test_cache_dir_from_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("STGAN_CACHE_DIR", str(tmp_path / "a"))
    assert synthetic.default_cache_dir() == tmp_path / "a"
    monkeypatch.delenv("STGAN_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert synthetic.default_cache_dir() == tmp_path / "xdg" / "stgan"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert synthetic.default_cache_dir() == tmp_path / "home" / ".cache" / "stgan"


def test_atomic_write_leaves_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "x.nc"
    make_synthetic(target, nt=24, ny=8, nx=8)
    make_synthetic(target, nt=24, ny=8, nx=8, seed=1)  # overwrite in place
    assert sorted(os.listdir(target.parent)) == ["x.nc"]
    with xr.open_dataset(target) as d:
        assert d.attrs["seed"] == 1


# Each process sees no file, waits so the other sees none either, then writes a tiny file.
_RACER = """
import sys, time
from stgan.data import synthetic as s
real = s.make_synthetic
def slow_tiny(path, seed=0):
    time.sleep(0.5)
    return real(path, seed=seed, nt=48, ny=8, nx=8)
s.make_synthetic = slow_tiny
s.ensure_synthetic(sys.argv[1])
"""


@pytest.mark.slow  # two fresh interpreters import stgan.data (and torch)
def test_ensure_synthetic_concurrent_processes(tmp_path: Path) -> None:
    env = os.environ | {"PYTHONPATH": os.pathsep.join(sys.path)}
    procs = [
        subprocess.Popen([sys.executable, "-c", _RACER, str(tmp_path)], env=env) for _ in range(2)
    ]
    assert [p.wait(timeout=60) for p in procs] == [0, 0]
    (path,) = tmp_path.iterdir()  # one file, no temporaries
    with xr.open_dataset(path) as d:
        assert d.sizes["time"] == 48 and d.attrs["seed"] == 0
