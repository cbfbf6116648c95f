"""``stgan evaluate --real R.nc --synthetic S.nc --out report.json``: score synthetic data.

Both files are opened lazily with dask chunks along the sample (or time) dimension, so
the metrics of docs/metrics.md stream over inputs larger than memory in batches.
"""

from __future__ import annotations

import argparse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stgan.commands import options
from stgan.errors import StganError

if TYPE_CHECKING:
    import numpy as np
    import xarray as xr
    from matplotlib.figure import Figure

    from stgan.metrics.base import Array

BATCH_SAMPLES = 64  # samples per streamed batch, and per dask chunk of a sample dimension
SERIES_CHUNK = 1024  # time steps per dask chunk of a file without a sample dimension
FIGURE_SAMPLES = 16  # samples of each side drawn in the figures
# netCDF's chunk cache per variable while the inputs are opened (its default is 64 MB a
# variable a file, held for the whole run): a stream reads each chunk once, so 4 MB do.
STREAM_CHUNK_CACHE = 2**22
# glibc serves allocations from this size with their own mapping, returned when freed; its
# default threshold rises with each large block freed, and the stream's batch-sized blocks
# then stay in the heap as freed but resident memory (300 MB over a run). Lower values
# return more but page-fault every cache-sized temporary (2**18: 2x the system time).
MMAP_THRESHOLD = 2**22


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "evaluate",
        help="score synthetic sequences against real ones (JSON report, table, TensorBoard)",
        description="Compare a synthetic NetCDF file with a real one by the metrics of "
        "docs/metrics.md: autocorrelation, power spectra, marginal distances and quantiles, "
        "diversity (MMD, C2ST, precision/recall/density/coverage) and cross-correlation. "
        "A file without a sample dimension (sample, member, realization, ensemble) is cut "
        "into windows of the other file's sequence length. Writes the report as JSON, "
        "prints a summary table, and optionally logs to TensorBoard and writes figures.",
    )
    parser.add_argument(
        "--real",
        required=True,
        type=Path,
        help="real data: NetCDF, or a data spec / pipeline YAML whose --split is compared "
        "(windows as in training and stgan run, with the floor and the selection score)",
    )
    parser.add_argument(
        "--split",
        help="with a YAML --real: the split compared (default the pipeline's "
        "report.split, else test)",
    )
    parser.add_argument("--synthetic", required=True, type=Path, help="synthetic data, NetCDF")
    parser.add_argument(
        "--variables", type=_names, help="comma-separated variables (default: all gridded ones)"
    )
    parser.add_argument("--lags", type=int, help="acf lags K (default min(T - 1, 10))")
    parser.add_argument("--out", required=True, type=Path, help="JSON report to write")
    parser.add_argument("--logdir", type=Path, help="also log scalars and figures to TensorBoard")
    parser.add_argument("--figures", type=Path, metavar="DIR", help="also write PNG figures here")
    options.add_device(parser)
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from stgan.metrics.summary import format_report

    _check_options(args)
    with_figures = bool(args.logdir or args.figures)
    if args.real.suffix in (".yaml", ".yml"):
        from stgan.commands.evaluate_split import evaluate_split
        from stgan.training.distributed import resolve_device

        _check_split_options(args)
        report, figures = evaluate_split(
            args.real,
            args.synthetic,
            args.split,
            args.lags,
            resolve_device(args.device),
            with_figures,
        )
        nan_notes = {}
    else:
        if args.split:
            raise StganError(
                f"--split {args.split}: only with a data spec or pipeline YAML as --real"
            )
        report, nan_notes, figures = evaluate_files(
            args.real,
            args.synthetic,
            variables=args.variables,
            lags=args.lags,
            device=args.device,
            with_figures=with_figures,
        )
    written = [_write_report(args.out, report)]
    if figures:
        from stgan.figures import rendered

        figures = rendered(figures)  # drawn once: saved and logged
    if args.figures:
        written.append(_write_figures(args.figures, figures))
    if args.logdir:
        written.append(_write_tensorboard(args.logdir, report, figures))
    print(format_report(report, nan_notes))
    print("\n".join(f"wrote {what}" for what in written))
    return 0


def evaluate_files(
    real_path: Path,
    synthetic_path: Path,
    variables: list[str] | None = None,
    lags: int | None = None,
    device: str = "auto",
    with_figures: bool = False,
) -> tuple[dict[str, Any], dict[str, int], dict[str, Figure]]:
    """Check the inputs, stream the metrics and draw the figures; write nothing.

    Returns the report, the per-variable count of synthetic NaN cells where the real data
    has none, and the figures (empty unless ``with_figures``). Every user error is raised
    before any work: a missing or unreadable file, an unknown variable, different grids,
    variables, units or time steps, too few steps for ``lags``, an all-NaN variable, an
    infinite value (read in the one NaN pass before the metrics), CUDA absent.
    """
    from stgan.metrics.inputs import check_arrays, layout_arrays, nan_census
    from stgan.metrics.report import evaluate_arrays
    from stgan.training.distributed import resolve_device

    torch_device = resolve_device(device)
    _return_freed_blocks()
    real, synthetic = open_lazy(real_path, "--real"), open_lazy(synthetic_path, "--synthetic")
    real_arrays, synthetic_arrays = layout_arrays(real, synthetic, variables)
    check_arrays(real_arrays, synthetic_arrays, lags)
    nan_notes = nan_census(real_arrays, synthetic_arrays)
    report = evaluate_arrays(
        real_arrays,
        synthetic_arrays,
        lags=lags,
        device=torch_device,
        batch_size=BATCH_SAMPLES,
        progress=True,
    )
    figures = {}
    if with_figures:  # matplotlib is imported only here: seconds saved on every other run
        from stgan.data.dims import find_dim
        from stgan.figures import y_descends

        units = {name: str(real[name].attrs.get("units", "")) for name in real_arrays}
        y_dim = find_dim(real, "y")
        north_up = y_dim is not None and y_descends(real[y_dim].values)
        figures = _figures(report, real_arrays, synthetic_arrays, units, north_up)
    return report, nan_notes, figures


def open_lazy(path: Path, flag: str) -> xr.Dataset:
    """``path`` opened lazily, dask-chunked along its sample dimension (else its time one)."""
    from stgan.data.dims import find_dim
    from stgan.data.io import open_file
    from stgan.errors import DataError

    if not path.is_file():
        raise DataError(f"{flag} {path}: file not found; check the path")
    with _chunk_cache(STREAM_CHUNK_CACHE):
        ds = open_file(path)
    sample = find_dim(ds, "sample")
    if sample is not None:
        return ds.chunk({sample: BATCH_SAMPLES})
    time = find_dim(ds, "time")
    return ds.chunk({time: SERIES_CHUNK}) if time is not None else ds


def _return_freed_blocks() -> None:
    """Fix glibc's mmap threshold at ``MMAP_THRESHOLD`` (no-op without glibc)."""
    import ctypes

    m_mmap_threshold = -3  # from malloc.h
    with suppress(OSError, AttributeError):  # not glibc
        ctypes.CDLL("libc.so.6").mallopt(m_mmap_threshold, MMAP_THRESHOLD)


@contextmanager
def _chunk_cache(size: int) -> Iterator[None]:
    """netCDF's default chunk cache set to ``size`` bytes for the files opened inside."""
    import netCDF4

    default = netCDF4.get_chunk_cache()
    netCDF4.set_chunk_cache(size, *default[1:])
    try:
        yield
    finally:
        netCDF4.set_chunk_cache(*default)


def _names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("give variable names separated by commas, e.g. tas,pr")
    return names


def _check_split_options(args: argparse.Namespace) -> None:
    if args.variables:
        raise StganError(
            "--variables: with a YAML --real the data spec's variables are compared; drop it"
        )


def _check_options(args: argparse.Namespace) -> None:
    """The arguments and every output path, before any data is read."""
    from stgan.output_paths import writable_dir, writable_file

    if args.lags is not None and args.lags < 1:
        raise StganError(f"--lags {args.lags}: must be >= 1")
    writable_file(args.out, "--out")
    for option, directory in (("--logdir", args.logdir), ("--figures", args.figures)):
        if directory is not None:
            writable_dir(directory, option)


def _figures(
    report: dict[str, Any],
    real: Mapping[str, Array],
    synthetic: Mapping[str, Array],
    units: Mapping[str, str],
    north_up: bool = False,
) -> dict[str, Figure]:
    """The evaluation figures of the first ``FIGURE_SAMPLES`` samples of each side."""
    import numpy as np

    from stgan.figures import evaluation_figures

    def head(arrays: Mapping[str, Array]) -> dict[str, np.ndarray]:
        return {name: np.asarray(a[:FIGURE_SAMPLES]) for name, a in arrays.items()}

    return evaluation_figures(report, head(real), head(synthetic), units, north_up=north_up)


def _write_report(path: Path, report: dict[str, Any]) -> str:
    from stgan.atomic import write_text_atomic
    from stgan.metrics.report import to_json
    from stgan.output_paths import make_parent

    write_text_atomic(make_parent(path, "--out"), to_json(report))
    return f"the report to {path}"


def _write_figures(directory: Path, figures: Mapping[str, bytes]) -> str:
    from stgan.figures import save_figures

    return f"{len(save_figures(figures, directory))} figures (PNG) to {directory}"


def _write_tensorboard(logdir: Path, report: dict[str, Any], figures: Mapping[str, bytes]) -> str:
    from stgan.metrics.tensorboard import write_report_events
    from stgan.output_paths import tensorboard_command

    write_report_events(logdir, report, figures)
    return f"TensorBoard events to {logdir} (view: {tensorboard_command(logdir)})"
