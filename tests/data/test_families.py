"""Tests for stgan/data/families.py: each family's known statistics measured on its data,
determinism, and the registry of built-in data sets that ``files: builtin:<name>`` reads."""

from __future__ import annotations

from functools import partial
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

from stgan.data import families
from stgan.data.families import BUILTINS, FAMILIES, Family, ensure_builtin, make_ar1
from stgan.data.io import resolve_files
from stgan.data.spec import spec_from_dict
from stgan.errors import SpecError


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> dict[str, xr.Dataset]:
    """Every family at seed 0, loaded (about 3 s to write all six)."""
    directory = tmp_path_factory.mktemp("families")
    found = {}
    for name, family in FAMILIES.items():
        with xr.open_dataset(family.make(directory / f"{name}.nc", 0)) as ds:
            found[name] = ds.load()
    return found


def _cells(values: np.ndarray) -> np.ndarray:
    """``(time, y, x)`` -> ``(time, cell)`` over the cells that are never NaN."""
    flat = values.reshape(values.shape[0], -1).astype(float)
    return flat[:, ~np.isnan(flat).any(axis=0)]


def _lag1(values: np.ndarray) -> float:
    """Lag-1 autocorrelation pooled over cells, each cell's mean removed."""
    x = _cells(values)
    x = x - x.mean(axis=0)
    return float((x[1:] * x[:-1]).sum() / (x**2).sum())


def _spectral_slope(field: np.ndarray) -> float:
    """Log-log slope of the mean 2-D power spectrum of periodic ``(t, y, x)`` fields."""
    ny, nx = field.shape[-2:]
    power = (np.abs(np.fft.fft2(field)) ** 2).mean(axis=0)
    k = np.hypot(np.fft.fftfreq(ny)[:, None], np.fft.fftfreq(nx)[None, :])
    fit = k > 0
    return float(np.polyfit(np.log(k[fit]), np.log(power[fit]), 1)[0])


def test_registry_holds_the_default_and_at_least_five_families() -> None:
    assert "synthetic" in BUILTINS and set(FAMILIES) <= set(BUILTINS)
    assert len(FAMILIES) >= 5


def test_files_are_small_float32_with_time_y_x(data: dict[str, xr.Dataset]) -> None:
    shapes = set()
    for name, ds in data.items():
        nt, ny, nx = (ds.sizes[d] for d in list(ds.dims))
        assert nt <= 3000 and ny <= 32 and nx <= 32, name
        shapes.add((ny, nx))
        for var in ds.data_vars.values():
            assert var.dtype == np.float32 and var.dims == tuple(ds.dims), name
        assert ds.attrs["seed"] == 0
    assert any(ny != nx and ny % 8 and nx % 8 for ny, nx in shapes)  # odd, non-square grids


@pytest.mark.parametrize(("name", "variable"), [("ar1_rough", "z"), ("ar1_smooth", "z")])
def test_ar1_lag1_and_spectral_slope(data: dict[str, xr.Dataset], name, variable) -> None:
    ds = data[name]
    values = ds[variable].values
    assert _lag1(values) == pytest.approx(ds.attrs["expected_lag1_autocorrelation"], abs=0.03)
    assert _spectral_slope(values[::5]) == pytest.approx(ds.attrs["spectral_slope"], abs=0.2)
    assert np.nanstd(values) == pytest.approx(1.0, abs=0.15)


def test_persistences_span_half_to_095(data: dict[str, xr.Dataset]) -> None:
    phis = [ds.attrs["phi"] for ds in data.values() if "phi" in ds.attrs]
    assert min(phis) <= 0.5 and max(phis) >= 0.95
    assert _lag1(data["ar1_rough"].z.values) < 0.6 < 0.9 < _lag1(data["ar1_smooth"].z.values)


def test_advected_lag1_is_below_phi_and_mask_is_fixed(data: dict[str, xr.Dataset]) -> None:
    ds = data["advected"]
    expected = ds.attrs["expected_lag1_autocorrelation"]
    assert expected < ds.attrs["phi"] - 0.03  # advection decorrelates a fixed cell
    assert _lag1(ds.tracer.values) == pytest.approx(expected, abs=0.03)
    nan = np.isnan(ds.tracer.values)
    assert (nan == nan[0]).all() and nan[0].sum() == ds.attrs["mask_cells"] > 0


def test_cycles_amplitudes_on_a_360_day_calendar(data: dict[str, xr.Dataset]) -> None:
    ds = data["cycles"]
    assert ds.indexes["time"].calendar == "360_day"
    assert ds.time.encoding["calendar"] == "360_day"
    assert ds.indexes["time"][30 * 4].day == 1  # day 31 does not exist
    t = np.arange(ds.sizes["time"])
    columns = [np.ones_like(t, dtype=float)]
    for period in (ds.attrs["seasonal_period"], ds.attrs["daily_period"]):
        columns += [np.cos(2 * np.pi * t / period), np.sin(2 * np.pi * t / period)]
    coef, *_ = np.linalg.lstsq(np.stack(columns, axis=1), _cells(ds.tas.values), rcond=None)
    assert np.hypot(coef[1], coef[2]).mean() == pytest.approx(ds.attrs["seasonal_amplitude"], 0.05)
    assert np.hypot(coef[3], coef[4]).mean() == pytest.approx(ds.attrs["daily_amplitude"], 0.05)


def test_traffic_zero_inflated_hot_spots_and_rhythm(data: dict[str, xr.Dataset]) -> None:
    ds = data["traffic"]
    assert np.all(np.diff(ds.time.values) == np.timedelta64(30, "m"))
    spots = set(zip(ds.attrs["hot_spot_y"], ds.attrs["hot_spot_x"]))
    for name in ("inflow", "outflow"):
        counts = ds[name].values  # (time, y, x)
        assert (counts >= 0).all() and (counts == np.round(counts)).all()
        zero = (counts == 0).mean()
        assert zero == pytest.approx(ds.attrs[f"{name}_expected_zero_fraction"], abs=0.01)
        assert 0.5 < zero < 0.95
        busiest = np.unravel_index(counts.mean(axis=0).argmax(), counts.shape[1:])
        assert tuple(int(i) for i in busiest) in spots
        total = counts.sum(axis=(1, 2)).reshape(-1, 7, ds.attrs["daily_period"])  # week, day
        weekday = total[:, :5].mean(axis=(0, 1))  # (48,) mean profile of a weekday
        assert np.argmax(weekday) / 2.0 == pytest.approx(ds.attrs[f"{name}_peak_hour"], abs=1)
        assert total[:, :5].mean() > 1.2 * total[:, 5:].mean()  # quieter weekends


def test_rain_is_intermittent_inside_a_fixed_radar_mask(data: dict[str, xr.Dataset]) -> None:
    ds = data["rain"]
    rain = ds.rain.values
    nan = np.isnan(rain)
    assert (nan == nan[0]).all() and nan[0].sum() == ds.attrs["mask_cells"]
    assert not nan[0][ds.sizes["y"] // 2, ds.sizes["x"] // 2] and nan[0][0, 0]  # round domain
    valid = rain[~nan]
    assert (valid >= 0).all()
    assert (valid > 0).mean() == pytest.approx(ds.attrs["expected_wet_fraction"], abs=0.04)
    dry_frames = (np.nan_to_num(rain).max(axis=(1, 2)) == 0).mean()
    assert dry_frames < 0.5  # rain cells somewhere most of the time, patchy within a frame


def test_same_seed_same_values_other_seed_differs(tmp_path: Path) -> None:
    def values(seed: int, name: str) -> np.ndarray:
        with xr.open_dataset(FAMILIES["traffic"].make(tmp_path / name, seed)) as ds:
            return ds.inflow.values

    a, b, c = values(1, "a.nc"), values(1, "b.nc"), values(2, "c.nc")
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_ensure_writes_once_into_the_cache_then_reuses(tmp_path: Path) -> None:
    calls = []

    def tiny(path: Path, seed: int) -> Path:
        calls.append(path)
        return make_ar1(path, seed, phi=0.5, slope=-2.0, shape=(24, 6, 8), freq="h")

    family = Family("tiny", tiny, version=3)
    first = family.ensure(tmp_path)
    assert first == tmp_path / "tiny_v3_seed0.nc"
    mtime = first.stat().st_mtime_ns
    assert family.ensure(tmp_path) == first and first.stat().st_mtime_ns == mtime
    assert len(calls) == 1 and [p.name for p in tmp_path.iterdir()] == [first.name]


def test_builtin_name_in_a_spec_resolves_through_the_registry(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    small = Family("ar1_rough", partial(make_ar1, phi=0.5, slope=-2.0, shape=(24, 6, 8), freq="h"))
    monkeypatch.setitem(families.BUILTINS, "ar1_rough", small.ensure)
    monkeypatch.setenv("STGAN_CACHE_DIR", str(tmp_path))
    spec = spec_from_dict(
        {
            "files": "builtin:ar1_rough",
            "variables": {"z": {}},
            "window": {"length": 4},
            "split": {"fractions": [0.5, 0.25, 0.25]},
        },
        base_dir=tmp_path,
    )
    assert resolve_files(spec) == [tmp_path / "ar1_rough_v1_seed0.nc"]


def test_unknown_builtin_is_one_line_naming_the_known_ones() -> None:
    with pytest.raises(SpecError) as error:
        ensure_builtin("nope")
    message = str(error.value)
    assert "\n" not in message and "'builtin:nope'" in message
    assert all(f"builtin:{name}" in message for name in BUILTINS)
