"""``stgan evaluate --real SPEC_OR_PIPELINE.yaml``: synthetic sequences against a split.

The real side is a data spec (or a pipeline, which names one): its ``--split`` is cut by
the one windowing rule of ``stgan.comparison``, as in-training evaluation and ``stgan run``
cut it, and its training split is the floor. A pipeline also gives its criterion, acf lags
and seed, so the report equals the one ``stgan run`` wrote for the same synthetic file.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from stgan.comparison import Comparison, Crop, Cut, comparison_options, split_comparison
from stgan.data.io import Dims
from stgan.data.spec import DataSpec
from stgan.errors import DataError


@dataclass(frozen=True)
class RealSide:
    """What a YAML file on ``--real`` says about the comparison."""

    spec: DataSpec
    split: str
    context_frames: int = 0
    options: dict[str, Any] = field(default_factory=dict)  # a pipeline's comparison_options


def read_real_side(path: Path, split: str | None) -> RealSide:
    """A data spec, or a pipeline (its spec, report split, criterion, lags and seed)."""
    from stgan.config import load_yaml
    from stgan.data.spec import load_spec
    from stgan.training.config import load_pipeline

    if "data" not in load_yaml(path):
        return RealSide(load_spec(path), split or "test")
    config = load_pipeline(path)
    return RealSide(
        config.spec, split or config.report.split, config.context_frames, comparison_options(config)
    )


def evaluate_split(
    real_path: Path,
    synthetic_path: Path,
    split: str | None = None,
    lags: int | None = None,
    device: torch.device | None = None,
    with_figures: bool = False,
) -> tuple[dict[str, Any], dict]:
    """The report (with floor and score) and, if asked, its figures."""
    side = read_real_side(real_path, split)
    if lags is not None:
        side = replace(side, options={**side.options, "lags": lags})
    synthetic_ds = _open_synthetic(synthetic_path)
    try:
        comparison, dims = _comparison(side, synthetic_ds, device)
        synthetic = _synthetic_arrays(synthetic_ds, side.spec.variable_names, dims, comparison)
    finally:
        synthetic_ds.close()
    report = comparison.report(synthetic)
    figures = comparison.figures(report, synthetic) if with_figures else {}
    return report, figures


def _comparison(side: RealSide, synthetic: xr.Dataset, device) -> tuple[Comparison, Dims]:
    from stgan.data.io import open_source
    from stgan.data.spec import WindowSpec
    from stgan.data.windows import build_layout
    from stgan.metrics.inputs import check_time_steps, time_index

    source = open_source(side.spec)
    dims = source.dims
    check_time_steps(source.time, time_index(synthetic, dims.time))
    frames = synthetic.sizes.get(dims.time, 0)
    window = WindowSpec(length=side.context_frames + frames, stride=side.spec.window.stride)
    layout = build_layout(source.time, side.spec.split, window)
    comparison = split_comparison(
        source,
        layout,
        side.split,
        Cut(synthetic.sizes["sample"], frames, side.context_frames, _crop(source, synthetic)),
        **side.options,
        device=device,
    )
    return comparison, dims


def _open_synthetic(path: Path) -> xr.Dataset:
    from stgan.commands.evaluate import open_lazy

    ds = open_lazy(path, "--synthetic")
    if "sample" not in ds.dims:
        ds.close()
        raise DataError(
            f"--synthetic {path}: has no 'sample' dimension; against a data spec it must hold "
            "sequences as stgan generate writes them (sample, time, y, x)"
        )
    return ds


def _crop(source, synthetic: xr.Dataset) -> Crop:
    """Where the synthetic grid (the whole grid, or a patch model's centre) lies."""
    from stgan.data.cf import locate

    cut = []
    for axis, name in (("y", source.dims.y), ("x", source.dims.x)):
        found = None
        if name in synthetic.dims:
            found = locate(source.coords[axis].values, synthetic[name].values)
        if found is None:
            raise DataError(
                f"--synthetic: its '{name}' grid is not part of the data spec's grid; "
                "compare files on the same grid"
            )
        cut.append(found)
    return Crop(*cut)


def _check_finite(arrays: dict[str, np.ndarray], side: str) -> None:
    """NaN is missing data; +-Inf is a broken file: refused, naming the variable and count."""
    from stgan.metrics.inputs import check_finite

    for name, values in arrays.items():
        check_finite(name, side, int(np.isinf(values).sum()))


def _synthetic_arrays(
    ds: xr.Dataset, variables: list[str], dims: Dims, comparison: Comparison
) -> dict[str, np.ndarray]:
    missing = [v for v in variables if v not in ds.data_vars]
    if missing:
        raise DataError(
            f"--synthetic: variable(s) {missing} of the data spec are missing; it has "
            f"{list(map(str, ds.data_vars))}"
        )
    real = next(iter(comparison.real.arrays.values()))  # (N, T, y, x)
    order = ("sample", dims.time, dims.y, dims.x)
    if set(ds[variables[0]].dims) != set(order):
        raise DataError(
            f"--synthetic: '{variables[0]}' has dims {ds[variables[0]].dims}; expected {order}"
        )
    arrays = {v: ds[v].transpose(*order).values for v in variables}
    _check_finite(comparison.real.arrays, "real")
    _check_finite(arrays, "synthetic")
    shape = next(iter(arrays.values())).shape[1:]
    if shape != real.shape[1:]:
        raise DataError(
            f"--synthetic: sequences of shape {shape} (time, y, x); the real windows have "
            f"{real.shape[1:]}"
        )
    return arrays
