"""Evaluation figures: synthetic sequences against real ones, one figure per view.

Every figure is built with the object API (``matplotlib.figure.Figure``, no ``pyplot``), so
a long training run that logs figures at each evaluation keeps no global state and needs no
display. Keys are ``"<variable>/<kind>"``; ``save_figures`` writes ``<variable>_<kind>.png``.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import matplotlib
import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullLocator

from stgan.atomic import atomic_path
from stgan.errors import DataError
from stgan.metrics.base import Array, as_numpy, check_ndim

KINDS = ("acf", "psd", "distribution", "frames", "hovmoller")
REAL_COLOR, SYNTHETIC_COLOR = "tab:blue", "tab:orange"
# Real solid and wide, synthetic dashed on top: both stay visible where the curves agree.
CURVE_STYLES = {
    "real": {"color": REAL_COLOR, "lw": 2.5, "marker": "o", "ms": 6},
    "synthetic": {"color": SYNTHETIC_COLOR, "lw": 1.5, "ls": "--", "marker": "o", "ms": 3},
}
FIELD_CMAP = matplotlib.colormaps["viridis"].with_extremes(bad="0.8")  # NaN: light grey
MAX_VALUES = 200_000
MAX_FRAMES = 4
HIST_BINS = 60
QQ_LEVELS = np.concatenate([[0.001, 0.003], np.linspace(0.01, 0.99, 99), [0.997, 0.999]])
DPI = 100
SMALL_SIZE, PAIR_SIZE, WIDE_SIZE = (6.0, 4.0), (8.0, 4.0), (10.0, 4.5)  # inches


def evaluation_figures(
    report: Mapping[str, Any],
    real: Mapping[str, Array],
    synthetic: Mapping[str, Array],
    units: Mapping[str, str] | None = None,
    north_up: bool = False,
) -> dict[str, Figure]:
    """All figures for every variable of ``report``.

    Parameters
    ----------
    report : mapping
        The dict returned by ``stgan.metrics.evaluate_arrays``.
    real, synthetic : mapping of str to array
        ``{variable: (sample, time, y, x)}`` in physical units, NaN = missing: a small
        in-memory subset (a few samples) of the data the report was computed on.
    units : mapping of str to str, optional
        ``{variable: units}`` for axis labels.
    north_up : bool
        The y axis runs from north to south (e.g. ERA5's latitudes): draw maps with row 0
        at the top, so north is up.

    Returns
    -------
    dict of str to Figure
        Keys ``"<var>/acf"``, ``"<var>/psd"``, ``"<var>/distribution"``, ``"<var>/frames"``,
        ``"<var>/hovmoller"``.
    """
    units = units or {}
    figures = {}
    for name, entry in report["variables"].items():
        for side, arrays in (("real", real), ("synthetic", synthetic)):
            if name not in arrays:
                raise DataError(f"figures: variable {name!r} of the report has no {side} array")
        r, s, u = as_numpy(real[name]), as_numpy(synthetic[name]), units.get(name)
        figures[f"{name}/acf"] = acf_figure(name, entry["acf"])
        figures[f"{name}/psd"] = psd_figure(name, entry["psd"], r.shape[-2:], u)
        figures[f"{name}/distribution"] = distribution_figure(name, r, s, entry, u)
        figures[f"{name}/frames"] = frames_figure(name, r, s, u, north_up)
        figures[f"{name}/hovmoller"] = hovmoller_figure(name, r, s, u)
    return figures


def rendered(figures: Mapping[str, Figure]) -> dict[str, bytes]:
    """Each figure drawn once, as PNG bytes at ``DPI``: what ``save_figures`` writes and
    ``stgan.metrics.tensorboard.log_report`` logs, so a report's figures are not drawn
    twice (drawing is most of their cost)."""
    pngs = {}
    for key, figure in figures.items():
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=DPI)
        pngs[key] = buffer.getvalue()
    return pngs


def save_figures(figures: Mapping[str, Figure | bytes], directory: str | Path) -> list[Path]:
    """Write each figure (or its PNG from ``rendered``) as ``directory/<var>_<kind>.png``
    atomically.

    Creates ``directory``; returns the paths written, in the order of ``figures``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    paths = []
    for key, figure in figures.items():
        path = directory / f"{key.replace('/', '_')}.png"
        png = figure if isinstance(figure, bytes) else rendered({key: figure})[key]
        with atomic_path(path) as tmp:
            Path(tmp).write_bytes(png)
        paths.append(path)
    return paths


def acf_figure(variable: str, acf: Mapping[str, Any]) -> Figure:
    """Real and synthetic autocorrelation against lag, ``acf.error`` in the title.

    ``acf`` is ``report["variables"][variable]["acf"]``: ``{"lags", "real", "synthetic",
    "error"}``.
    """
    fig = Figure(figsize=SMALL_SIZE, dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    for side, style in CURVE_STYLES.items():
        ax.plot(acf["lags"], acf[side], label=side, **style)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("lag (time steps)")
    ax.set_ylabel("autocorrelation (dimensionless)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.suptitle(f"{variable}: temporal autocorrelation (acf error {acf['error']:.3g})")
    return fig


def psd_figure(
    variable: str, psd: Mapping[str, Any], grid_shape: Sequence[int], units: str | None = None
) -> Figure:
    """Radially averaged power spectra on log-log axes, ``psd.lsd_db`` in the title.

    Parameters
    ----------
    variable : str
        Name for the title.
    psd : mapping
        ``report["variables"][variable]["psd"]``: ``{"real", "synthetic", "lsd_db"}``, one
        value per ring ``r = 0, 1, ...`` of integer radius in index units.
    grid_shape : (ny, nx)
        The grid the spectra came from: ring ``r`` is wavenumber ``r / max(ny, nx)`` cycles
        per grid cell (as ``pysteps.utils.spectral.rapsd``).
    units : str, optional
        Units of the variable; power is in their square.
    """
    fig = Figure(figsize=SMALL_SIZE, dpi=DPI, layout="constrained")
    ax = fig.add_subplot()
    size = max(grid_shape[-2:])
    wavenumber = np.arange(len(psd["real"])) / size
    for side, style in CURVE_STYLES.items():
        power = np.asarray(psd[side], dtype=np.float64)
        # Ring 0 (the mean) has no place on a log axis; neither has zero power.
        shown = np.where(power[1:] > 0, power[1:], np.nan)
        ax.plot(wavenumber[1:], shown, label=side, **{**style, "ms": style["ms"] * 0.6})
    ax.set_xscale("log")
    ax.set_yscale("log")
    if not any(np.nanmax(line.get_ydata(), initial=0) > 0 for line in ax.get_lines()):
        ax.set_ylim(0.1, 10)  # log autoscaling fails without a positive value
        ax.text(0.5, 0.5, "no power at wavenumbers > 0", transform=ax.transAxes, ha="center")
    ax.set_xlabel("wavenumber (cycles per grid cell)")
    ax.set_ylabel(f"power ({_squared(units)})" if units else "power")
    _wavenumber_ticks(ax, size)
    ax.grid(alpha=0.3, which="both")
    ax.legend()
    fig.suptitle(f"{variable}: radially averaged power spectrum (LSD {psd['lsd_db']:.3g} dB)")
    return fig


def distribution_figure(
    variable: str,
    real: Array,
    synthetic: Array,
    scores: Mapping[str, Any] | None = None,
    units: str | None = None,
) -> Figure:
    """Histograms of valid values (shared bins, log counts) and a quantile-quantile plot.

    Parameters
    ----------
    variable : str
        Name for the title.
    real, synthetic : array
        Values of any shape, NaN = missing; more than ``MAX_VALUES`` are subsampled with a
        fixed seed.
    scores : mapping, optional
        ``report["variables"][variable]``; its ``wasserstein1`` and ``ks`` go in the title.
    units : str, optional
        Units of the variable, for the axis labels.
    """
    r, s = _valid_values(real, "real", variable), _valid_values(synthetic, "synthetic", variable)
    fig = Figure(figsize=PAIR_SIZE, dpi=DPI, layout="constrained")
    hist_ax, qq_ax = fig.subplots(1, 2)
    _histograms(hist_ax, r, s, _label(variable, units))
    _qq_plot(qq_ax, r, s, units)
    fig.suptitle(f"{variable}: distribution of values{_score_line(scores, units)}")
    return fig


def frames_figure(
    variable: str,
    real: Array,
    synthetic: Array,
    units: str | None = None,
    north_up: bool = False,
) -> Figure:
    """Up to ``MAX_FRAMES`` time steps of sample 0: real on row 1, synthetic on row 2.

    ``north_up``: row 0 of the grid is the northernmost (draw it at the top).
    ``real`` and ``synthetic`` are ``(sample, time, y, x)``. Steps are spread evenly over the
    sequence; all panels share one colour scale, and NaN cells are light grey.
    """
    r, s = _first_sample(real, "real"), _first_sample(synthetic, "synthetic")  # (T, Y, X)
    steps = np.unique(np.linspace(0, len(r) - 1, min(MAX_FRAMES, len(r))).round().astype(int))
    vmin, vmax = _color_limits(r[steps], s[steps])
    fig = Figure(figsize=WIDE_SIZE, dpi=DPI, layout="constrained")
    axes = fig.subplots(2, len(steps), sharex=True, sharey=True, squeeze=False)
    for row, (side, field) in enumerate((("real", r), ("synthetic", s))):
        for col, step in enumerate(steps):
            ax = axes[row, col]
            origin = "upper" if north_up else "lower"
            image = _show(ax, field[step], vmin, vmax, aspect="equal", origin=origin)
            ax.set_title(f"{side}, t = {step}", fontsize="medium")
        axes[row, 0].set_ylabel("y (grid cells)")
    for ax in axes[-1]:
        ax.set_xlabel("x (grid cells)")
    fig.colorbar(image, ax=axes, label=_label(variable, units), shrink=0.9)
    fig.suptitle(f"{variable}: frames of sample 0, real (top) and synthetic (bottom)")
    return fig


def hovmoller_figure(
    variable: str, real: Array, synthetic: Array, units: str | None = None
) -> Figure:
    """Hovmöller diagrams (time against x, averaged over y) of sample 0, side by side.

    ``real`` and ``synthetic`` are ``(sample, time, y, x)``; the y-mean ignores NaN, and the
    two panels share one colour scale.
    """
    diagrams = [
        _mean_over_y(_first_sample(real, "real")),
        _mean_over_y(_first_sample(synthetic, "synthetic")),
    ]  # (T, X) each
    vmin, vmax = _color_limits(*diagrams)
    fig = Figure(figsize=WIDE_SIZE, dpi=DPI, layout="constrained")
    axes = fig.subplots(1, 2, sharex=True, sharey=True)
    for ax, side, diagram in zip(axes, ("real", "synthetic"), diagrams, strict=True):
        image = _show(ax, diagram, vmin, vmax, aspect="auto", origin="upper")
        ax.set_title(side)
        ax.set_xlabel("x (grid cells)")
    axes[0].set_ylabel("time step")
    axes[0].yaxis.set_major_locator(MaxNLocator(integer=True))
    fig.colorbar(image, ax=axes, label=f"mean over y of {_label(variable, units)}")
    fig.suptitle(f"{variable}: Hovmöller diagram of sample 0 (time against x)")
    return fig


def y_descends(ds_or_values: Any) -> bool:
    """Whether y coordinate values run downward (north to south for latitudes)."""
    values = np.asarray(ds_or_values, dtype=float)
    return values.size > 1 and bool(values[0] > values[-1])


def _label(variable: str, units: str | None) -> str:
    return f"{variable} ({units})" if units else variable


def _squared(units: str) -> str:
    """``K`` → ``K²``; ``mm h-1`` → ``(mm h-1)²``."""
    return f"{units}²" if units.isalpha() else f"({units})²"


def _wavenumber_ticks(ax: Axes, size: int) -> None:
    """Ticks at wavelengths of powers of two cells: ``1/2, 1/4, ...`` below, ``2, 4, ...`` above.

    Log axes over a decade or so label their minor ticks in crowded scientific notation.
    """
    lengths = 2 ** np.arange(1, max(1, int(np.ceil(np.log2(size)))) + 1)  # (2, 4, ..., >= size)
    ax.set_xlim(1 / (1.15 * lengths[-1]), 1.15 / lengths[0])
    shown = lengths[:: 1 + len(lengths) // 8]  # at most 8 labels
    ax.set_xticks(1 / shown, [f"1/{n}" for n in shown])
    ax.xaxis.set_minor_locator(NullLocator())
    wavelength = ax.secondary_xaxis("top", functions=(_reciprocal, _reciprocal))
    wavelength.set_xticks(shown, [str(n) for n in shown])
    wavelength.xaxis.set_minor_locator(NullLocator())
    wavelength.set_xlabel("wavelength (grid cells)")


def _reciprocal(k: np.ndarray) -> np.ndarray:
    """Wavenumber ↔ wavelength, safe at zero (the secondary axis maps the whole range)."""
    k = np.asarray(k, dtype=np.float64)
    return np.where(k > 0, 1.0 / np.where(k > 0, k, 1.0), np.inf)


def _valid_values(values: Array, side: str, variable: str) -> np.ndarray:
    """The finite values, at most ``MAX_VALUES`` of them (a seeded subsample)."""
    flat = as_numpy(values).ravel().astype(np.float64)
    flat = flat[np.isfinite(flat)]
    if flat.size == 0:
        raise DataError(f"{variable!r}: the {side} subset has no valid (finite) value to plot")
    if flat.size > MAX_VALUES:
        flat = np.random.default_rng(0).choice(flat, MAX_VALUES, replace=False)
    return flat


def _histograms(ax: Axes, real: np.ndarray, synthetic: np.ndarray, xlabel: str) -> None:
    bins = np.histogram_bin_edges(np.concatenate([real, synthetic]), bins=HIST_BINS)
    # Real filled, synthetic as an outline on top: both stay visible where they agree.
    options = {"bins": bins, "density": True}
    ax.hist(real, histtype="stepfilled", alpha=0.4, color=REAL_COLOR, label="real", **options)
    ax.hist(synthetic, histtype="step", lw=1.5, color=SYNTHETIC_COLOR, label="synthetic", **options)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel("probability density (log scale)")
    ax.set_title("histogram (shared bins)", fontsize="medium")
    ax.legend()


def _qq_plot(ax: Axes, real: np.ndarray, synthetic: np.ndarray, units: str | None) -> None:
    q_real, q_synthetic = np.quantile(real, QQ_LEVELS), np.quantile(synthetic, QQ_LEVELS)
    ends = [min(q_real[0], q_synthetic[0]), max(q_real[-1], q_synthetic[-1])]
    ax.plot(ends, ends, color="0.5", ls="--", lw=1, label="1:1")
    ax.plot(q_real, q_synthetic, ls="none", marker="o", ms=3, color="k", label="quantiles")
    suffix = f" ({units})" if units else ""
    ax.set_xlabel(f"real quantile{suffix}")
    ax.set_ylabel(f"synthetic quantile{suffix}")
    ax.set_title(f"Q-Q plot, levels {QQ_LEVELS[0]:g} to {QQ_LEVELS[-1]:g}", fontsize="medium")
    ax.grid(alpha=0.3)
    ax.legend()


def _score_line(scores: Mapping[str, Any] | None, units: str | None) -> str:
    if not scores:
        return ""
    parts = []
    if "wasserstein1" in scores:
        parts.append(f"Wasserstein-1 {scores['wasserstein1']:.3g}{f' {units}' if units else ''}")
    if "ks" in scores:
        parts.append(f"KS {scores['ks']:.3g}")
    return "\n" + ", ".join(parts) if parts else ""


def _first_sample(x: Array, side: str) -> np.ndarray:
    x = as_numpy(x)
    check_ndim(x, 4, f"(sample, time, y, x) for the {side} frames")
    if len(x) == 0:
        raise DataError(f"figures: the {side} array has no sample; pass at least one")
    return x[0]


def _color_limits(*fields: np.ndarray) -> tuple[float, float]:
    """One (vmin, vmax) over every valid value; widened when constant, (0, 1) when none."""
    valid = np.concatenate([f[np.isfinite(f)].ravel() for f in fields])
    if valid.size == 0:
        return 0.0, 1.0
    vmin, vmax = float(valid.min()), float(valid.max())
    if vmin == vmax:  # a constant field still gets a readable colour bar
        pad = max(abs(vmin) * 1e-3, 0.5)
        return vmin - pad, vmax + pad
    return vmin, vmax


def _show(ax: Axes, field: np.ndarray, vmin: float, vmax: float, **kwargs: Any) -> Any:
    kwargs.setdefault("origin", "lower")
    return ax.imshow(np.ma.masked_invalid(field), cmap=FIELD_CMAP, vmin=vmin, vmax=vmax, **kwargs)


def _mean_over_y(field: np.ndarray) -> np.ndarray:
    """``(T, Y, X)`` → ``(T, X)`` NaN-ignoring mean; NaN where a column is all NaN."""
    valid = ~np.isnan(field)
    count = valid.sum(axis=1)
    total = np.where(valid, field, 0).sum(axis=1)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan)
