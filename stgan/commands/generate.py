"""``stgan generate CKPT --num N --out syn.nc``: synthetic sequences as CF NetCDF."""

from __future__ import annotations

import argparse
import contextlib
import shlex
import signal
import sys
from pathlib import Path

from stgan.commands import options


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "generate",
        help="sample sequences from a checkpoint and write them as CF NetCDF",
        description="Sample N sequences with the EMA generator of a checkpoint (or of the best "
        "or newest checkpoint in a run directory), in physical units, with the training "
        "data's grid, attributes and calendar, and write them as CF-1.8 NetCDF (float32, "
        "zlib), atomically. Nowcasting generators need --context. A generator conditioned "
        "on the calendar makes its samples for the times from --start.",
    )
    parser.add_argument("checkpoint", type=Path, help="checkpoint file or run directory")
    parser.add_argument("--num", type=int, required=True, help="number of sequences (>= 1)")
    parser.add_argument(
        "--length", type=int, help="time steps per sequence (default: the trained length)"
    )
    parser.add_argument("--seed", type=int, default=0, help="the same seed gives the same output")
    parser.add_argument(
        "--context",
        type=Path,
        help="nowcasting: NetCDF with the past steps on the training grid (the last ones are used)",
    )
    parser.add_argument(
        "--start",
        metavar="TIME",
        help="time of the first step, an ISO time on the data's calendar such as "
        "2001-07-01T06:00 (default: the training data's first time); the samples are made "
        "for that time of day, week and year (not with --context)",
    )
    options.add_device(parser)
    parser.add_argument("--batch-size", type=int, default=16, help="samples per generator call")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    parser.add_argument("--out", type=Path, required=True, help="output NetCDF file")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from stgan.data.cf import write_netcdf
    from stgan.output_paths import make_parent, writable_file
    from stgan.run_lock import hold_if_run_directory
    from stgan.sampling import check_count, generate

    check_count("num", args.num)
    writable_file(args.out, "--out")
    with hold_if_run_directory(args.out.parent):  # not while a run writes there
        ds = generate(
            args.checkpoint,
            args.num,
            length=args.length,
            seed=args.seed,
            context=args.context,
            device=args.device,
            batch_size=args.batch_size,
            progress=not args.no_progress,
            start=args.start,
        )
        with _terminate_as_interrupt():
            write_netcdf(ds, make_parent(args.out, "--out"), command=command_line(args))
    print(f"wrote {args.out}")
    print(summary(ds))
    if args.start and ds.attrs["stgan_calendar_cycles"] == "none":
        print(
            "note: this generator was trained without calendar inputs "
            "(model.generator.calendar: false), so --start only labels the time coordinate",
            file=sys.stderr,
        )
    return 0


@contextlib.contextmanager
def _terminate_as_interrupt():
    """Turn SIGTERM (a scheduler's kill) into KeyboardInterrupt, so the temporary file is removed."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    try:
        previous = signal.signal(signal.SIGTERM, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def command_line(args: argparse.Namespace) -> str:
    """The command as a user would type it, for the ``history`` attribute."""
    parts = ["stgan", "generate", str(args.checkpoint), "--num", str(args.num)]
    for flag, value in (
        ("--length", args.length),
        ("--seed", args.seed),
        ("--context", args.context),
        ("--start", args.start),
        ("--device", args.device),
        ("--batch-size", args.batch_size),
        ("--out", args.out),
    ):
        if value is not None:
            parts += [flag, str(value)]
    return shlex.join(parts)


def summary(ds) -> str:
    """One line: samples, steps, variables, grid and time span."""
    sample, time, y, x = next(iter(ds.data_vars.values())).dims
    times = ds.indexes[time]
    calendar = ds[time].encoding.get("calendar", "standard")
    return (
        f"{ds.sizes[sample]} samples x {ds.sizes[time]} steps of {', '.join(map(str, ds.data_vars))} "
        f"on {ds.sizes[y]}x{ds.sizes[x]} {y}/{x}, {times[0]} .. {times[-1]} ({calendar} calendar)"
    )
