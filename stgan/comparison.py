"""One way to compare a generator with real data, for every stage that scores one.

In-training evaluation (``stgan.training.evaluation``), ``stgan run``'s report
(``stgan.pipeline``) and ``stgan evaluate --real SPEC.yaml`` all go through here:

1. the real windows of a split, by one rule (:func:`real_windows`: the windows training
   draws, at the spec's length and stride inside gap-free runs, spread evenly up to the
   count; the last ``frames`` steps after a conditional generator's context), in physical
   units on the trained grid;
2. the floor: the training split's windows by the same rule, against the real ones;
3. synthetic samples from ``stgan.sampling.sample_sequences`` (seeded per sample), NaN
   where the paired real window is missing; sample ``i`` is made for the calendar of
   real window ``i`` (:meth:`Comparison.calendar`), so like is compared with like;
4. ``evaluate_arrays`` with one seed, and ``selection_score`` of the report.

So the same checkpoint, split, count and seed give the same numbers in all three places.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import xarray as xr

from stgan.data.io import Source
from stgan.data.windows import TimeLayout, spread_evenly
from stgan.errors import SpecError
from stgan.metrics.registry import DEFAULT_CRITERION, MIN_SAMPLES, selection_score
from stgan.metrics.report import evaluate_arrays

if TYPE_CHECKING:
    from stgan.training.config import PipelineConfig

FIGURE_SAMPLES = 8  # the figures show a few sequences; the histograms pool their values


@dataclass(frozen=True)
class Crop:
    """Index ranges of the trained grid inside the source's (cropped, coarsened) grid."""

    y: slice
    x: slice

    @classmethod
    def of_grid(cls, grid: Mapping[str, Any]) -> Crop:
        """From a grid description (``stgan.data.cf.describe_grid``)."""
        from stgan.data.cf import grid_region

        return cls(*grid_region(grid))


@dataclass(frozen=True)
class Cut:
    """What a comparison takes from a split: ``count`` windows of ``context_frames`` past
    steps (conditional generators) and the ``frames`` after them, on ``crop``."""

    count: int
    frames: int
    context_frames: int
    crop: Crop


@dataclass(frozen=True)
class RealWindows:
    """Real windows of one split in physical units, NaN where missing."""

    arrays: dict[str, np.ndarray]  # {variable: (N, T, y, x)}
    context: np.ndarray | None  # (N, T_in, C, y, x), conditional generators only
    units: dict[str, str]
    north_up: bool
    times: np.ndarray | None = None  # (N, T) times of the frames in ``arrays``

    @property
    def count(self) -> int:
        return len(next(iter(self.arrays.values())))

    def calendar(self, cycles: tuple[str, ...]) -> np.ndarray | None:
        """``(N, T, F)`` calendar features of each window's frames (F = 2 per cycle), the
        ones sample ``i`` is made for; None without cycles."""
        from stgan.data.calendar import features

        if not cycles:
            return None
        if self.times is None:
            raise ValueError("these real windows were made without their times")
        table = features(self.times.ravel(), cycles)  # (N * T, F)
        return table.reshape(*self.times.shape, -1)


def window_starts(layout: TimeLayout, split: str, count: int) -> np.ndarray:
    """Start positions of the ``count`` windows of ``split`` a comparison uses."""
    if split not in layout.windows:
        raise SpecError(f"split '{split}' is not defined; defined: {', '.join(layout.windows)}")
    starts = layout.windows[split]
    if len(starts) < MIN_SAMPLES:
        raise SpecError(
            f"split '{split}' has {len(starts)} window(s); a comparison needs at least "
            f"{MIN_SAMPLES}: enlarge that split (or set eval.every=0 to train without evaluating)"
        )
    return starts[spread_evenly(len(starts), count)]


def sample_start_times(
    source: Source, layout: TimeLayout, split: str, count: int, context_frames: int
) -> list[str]:
    """ISO start times of ``count`` samples, sample ``i`` that of real window ``i % N`` of the
    comparison of ``split`` (its first frame after the context): the times a generator
    conditioned on the calendar makes them for, so like is compared with like."""
    starts = window_starts(layout, split, count) + context_frames
    return [source.time[starts[i % len(starts)]].isoformat() for i in range(count)]


def comparison_options(config: PipelineConfig) -> dict[str, Any]:
    """What a pipeline's settings say about a comparison: the selection criterion, the acf
    lags and the seed of the samples and metrics (``Comparison``'s keyword arguments)."""
    return {
        "criterion": config.eval.criterion,
        "lags": config.eval.lags,
        "seed": config.report.seed,
    }


def cropped(source: Source, crop: Crop) -> xr.Dataset:
    """The source's variables on the trained grid, physical units, dask-backed."""
    dims = source.dims
    return source.to_dask().isel({dims.y: crop.y, dims.x: crop.x})


def real_windows(
    source: Source, layout: TimeLayout, split: str, cut: Cut, data: xr.Dataset | None = None
) -> RealWindows:
    """The comparison's windows of ``split``, ``(N, T, y, x)`` per variable; ``data``:
    ``cropped(source, cut.crop)`` when the caller has it open already."""
    from stgan.figures import y_descends

    starts = window_starts(layout, split, cut.count)
    dims, context_frames = source.dims, cut.context_frames
    ds = cropped(source, cut.crop) if data is None else data
    steps = xr.DataArray(starts[:, None] + np.arange(context_frames + cut.frames), dims=("w", "s"))
    windows = ds.isel({dims.time: steps}).transpose("w", "s", dims.y, dims.x).compute()
    times = np.asarray(source.time)[steps.values[:, context_frames:]]  # (N, T)
    variables = list(source.variables)
    values = np.stack([windows[v].values for v in variables], axis=2).astype(np.float32)
    # (N, T_in + T, C, y, x)
    return RealWindows(
        arrays={v: values[:, context_frames:, c] for c, v in enumerate(variables)},
        context=values[:, :context_frames] if context_frames else None,
        units={v: str(source.attrs.get(v, {}).get("units", "")) for v in variables},
        north_up=y_descends(source.coords["y"].values),
        times=times,
    )


class Comparison:
    """Real windows of a split against synthetic samples, with the floor and the score.

    ``floor``: the training split's windows (same rule, same count), or ``None`` when no
    second real sample is at hand. The floor is measured once, on first use.
    ``whole_sequence=False`` leaves out the whole-sequence metrics (``evaluate_arrays``):
    the cheap comparison of in-training quick evaluations.
    """

    def __init__(
        self,
        real: RealWindows,
        floor: RealWindows | None,
        criterion: tuple[str, ...] = DEFAULT_CRITERION,
        lags: int | None = None,
        seed: int = 0,
        device: torch.device | str | None = None,
        whole_sequence: bool = True,
    ) -> None:
        self.real = real
        self.floor_windows = floor
        self.criterion = criterion
        self.options = {
            "lags": lags,
            "seed": seed,
            "device": device,
            "whole_sequence": whole_sequence,
        }

    @cached_property
    def floor(self) -> dict[str, Any] | None:
        """Per-variable metrics of the real windows against the floor's."""
        if self.floor_windows is None:
            return None
        return evaluate_arrays(self.real.arrays, self.floor_windows.arrays, **self.options)[
            "variables"
        ]

    def report(self, synthetic: Mapping[str, np.ndarray]) -> dict[str, Any]:
        """``evaluate_arrays`` of the real windows against ``synthetic`` (masked where the
        real windows are missing), with ``"floor"``, ``"nonfinite"`` and ``"score"``.

        ``"nonfinite"`` counts, per variable, the synthetic NaN/Inf values where the real
        window has a value (a diverged generator). They are left out of the metrics as
        missing, and the score of such a report is ``inf``: it is never the best.
        """
        report = evaluate_arrays(self.real.arrays, self.masked(synthetic), **self.options)
        if self.floor is not None:
            report["floor"] = self.floor
        report["nonfinite"] = self.nonfinite(synthetic)
        score = selection_score(report, self.criterion)
        report["score"] = math.inf if any(report["nonfinite"].values()) else score
        return report

    def masked(self, synthetic: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Sample ``i`` gets NaN where real window ``i % N`` is missing, and where it is
        not finite itself."""
        out = {}
        for name, values in synthetic.items():
            values = np.asarray(values, np.float32)
            drop = self._missing(name, len(values)) | ~np.isfinite(values)
            out[name] = np.where(drop, np.float32(np.nan), values)
        return out

    def nonfinite(self, synthetic: Mapping[str, np.ndarray]) -> dict[str, int]:
        """Per variable, how many synthetic values are NaN/Inf where the real window has
        a value."""
        return {
            name: int((~np.isfinite(values) & ~self._missing(name, len(values))).sum())
            for name, values in ((n, np.asarray(v)) for n, v in synthetic.items())
        }

    def _missing(self, name: str, count: int) -> np.ndarray:
        """Where real window ``i % N`` of ``name`` is missing, for ``count`` samples
        ``(count, T, y, x)``."""
        missing = np.isnan(self.real.arrays[name])
        return missing[np.arange(count) % len(missing)]

    def figures(self, report: Mapping[str, Any], synthetic: Mapping[str, np.ndarray]) -> dict:
        """The evaluation figures of the first few sequences of each side."""
        from stgan.figures import evaluation_figures

        def head(arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
            return {v: np.asarray(a[:FIGURE_SAMPLES]) for v, a in arrays.items()}

        return evaluation_figures(
            report,
            head(self.real.arrays),
            head(self.masked(synthetic)),
            self.real.units,
            north_up=self.real.north_up,
        )


def split_comparison(
    source: Source,
    layout: TimeLayout,
    split: str,
    cut: Cut,
    data: xr.Dataset | None = None,
    **options: Any,
) -> Comparison:
    """The comparison against ``split``, with the training split as its floor (``data``:
    as for ``real_windows``; opened once here otherwise)."""
    data = cropped(source, cut.crop) if data is None else data
    real = real_windows(source, layout, split, cut, data)
    floor = real_windows(source, layout, "train", cut, data)
    return Comparison(real, floor, **options)


def as_variables(values: np.ndarray, variables: list[str]) -> dict[str, np.ndarray]:
    """``(N, T, C, H, W)`` samples as ``{variable: (N, T, H, W)}``."""
    return {v: values[:, :, c] for c, v in enumerate(variables)}
