"""Tiny NetCDF fixtures built in a few lines, as xarray's own tests do."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import xarray as xr
import yaml


def make_dataset(
    nt: int = 48,
    ny: int = 6,
    nx: int = 8,
    start: str = "2000-01-01",
    freq: str = "h",
    calendar: str = "standard",
    variables: tuple[str, ...] = ("tas",),
    seed: int = 0,
    drop_steps: tuple[int, ...] = (),
    nan_cells: tuple[tuple[int, int], ...] = (),
) -> xr.Dataset:
    """A (time, lat, lon) dataset of random fields with CF attributes."""
    rng = np.random.default_rng(seed)
    time = xr.date_range(
        start, periods=nt, freq=freq, calendar=calendar, use_cftime=calendar != "standard"
    )
    keep = np.setdiff1d(np.arange(nt), drop_steps)
    data_vars = {}
    for i, name in enumerate(variables):
        values = (280 + 5 * i + rng.standard_normal((nt, ny, nx))).astype(np.float32)
        for y, x in nan_cells:
            values[:, y, x] = np.nan
        data_vars[name] = (("time", "lat", "lon"), values[keep], {"units": "K", "long_name": name})
    coords = {
        "time": ("time", time[keep], {"axis": "T"}),
        "lat": ("lat", np.linspace(50, 55, ny), {"units": "degrees_north", "axis": "Y"}),
        "lon": ("lon", np.linspace(-5, 2, nx), {"units": "degrees_east", "axis": "X"}),
    }
    return xr.Dataset(data_vars, coords, attrs={"Conventions": "CF-1.8"})


def write_spec(path: Path, **fields) -> Path:
    """Write a data spec YAML with sensible defaults for the tiny fixtures."""
    spec = {
        "files": "data.nc",
        "variables": {"tas": {"transform": "standardize"}},
        "window": {"length": 4, "stride": 2},
        "split": {"fractions": [0.5, 0.25, 0.25]},
    }
    spec.update(fields)
    path.write_text(yaml.safe_dump(spec))
    return path


@pytest.fixture
def tiny(tmp_path: Path) -> Path:
    """A directory holding data.nc (48 hourly steps, 6x8 grid) and spec.yaml."""
    make_dataset().to_netcdf(tmp_path / "data.nc")
    write_spec(tmp_path / "spec.yaml")
    return tmp_path


def tiny_pipeline(directory: Path, **sections) -> Path:
    make_dataset(nt=40, ny=8, nx=8, variables=("tas", "pr"), nan_cells=((0, 0),)).to_netcdf(
        directory / "data.nc"
    )
    raw = {
        "name": "tiny",
        "data": {
            "files": "data.nc",
            "variables": ["tas", "pr"],
            "window": {"length": 4, "stride": 1},
            "split": {"fractions": [0.7, 0.3, 0.0]},
        },
        "model": {
            "generator": {
                "name": "convgru",
                "latent_dim": 4,
                "noise_channels": 2,
                "base_channels": 4,
                "num_layers": 1,
                "up_stages": 1,
            },
            "discriminator": {
                "name": "conv3d",
                "base_channels": 4,
                "num_stages": 1,
                "minibatch_std_group": 2,
            },
        },
        "optim": {"warmup_steps": 2, "schedule": "cosine"},
        "train": {"steps": 6, "batch_size": 2, "log_every": 1, "hist_every": 3, "ckpt_every": 3},
        "report": {"split": "val"},  # the data have no test split
    }
    for key, value in sections.items():
        raw[key] = {**raw.get(key, {}), **value} if isinstance(value, dict) else value
    path = directory / "pipeline.yaml"
    path.write_text(yaml.safe_dump(raw))
    return path


@pytest.fixture
def pipeline(tmp_path):
    return tiny_pipeline(tmp_path)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    """Run ``python -m stgan ARGS`` in a child process, as a user would."""
    return subprocess.run([sys.executable, "-m", "stgan", *args], capture_output=True, text=True)
