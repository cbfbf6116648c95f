"""Benchmark: ``stgan evaluate`` wall time and peak memory on NetCDF inputs of growing size.

For each size, writes a real and a synthetic float32 file ``(sample, time, y, x)`` of half
that size each (AR(1) in time, written in blocks, so this script stays small in memory) to
a temp dir, runs ``stgan evaluate`` on the pair in a child process and prints its wall
time, its CPU time (user + system: on a shared machine the wall time also counts the other
jobs' share) and peak RSS (``ru_maxrss`` of that child), and the load average before the
run. Goals: the 1 GB pair in <= 60 s and <= 1 GB peak RSS, and peak RSS independent of the
input size (ratio of the largest to the smallest size near 1).

Run: ``python benchmarks/evaluate.py [--sizes-gb 0.25 1] [--length 24] [--grid 64]``
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BLOCK = 64  # samples generated and written at a time


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--sizes-gb",
        type=float,
        nargs="+",
        default=[0.25, 1.0],
        help="GB of NetCDF per run, real and synthetic together (default 0.25 1)",
    )
    parser.add_argument("--length", type=int, default=24, help="time steps per sample (24)")
    parser.add_argument("--grid", type=int, default=64, help="grid is grid x grid (64)")
    parser.add_argument("--device", default="cpu", help="--device of stgan evaluate (cpu)")
    parser.add_argument("--dir", type=Path, help="where to write the files (default: a temp dir)")
    return parser.parse_args()


def write_file(path: Path, samples: int, length: int, grid: int, phi: float, seed: int) -> Path:
    """A ``tas`` (sample, time, y, x) float32 file: AR(1) in time with coefficient ``phi``."""
    import netCDF4

    rng = np.random.default_rng(seed)
    with netCDF4.Dataset(path, "w") as nc:
        for dim, size in (("sample", samples), ("time", length), ("y", grid), ("x", grid)):
            nc.createDimension(dim, size)
        for axis in ("y", "x"):
            nc.createVariable(axis, "f8", (axis,))[:] = np.arange(grid, dtype=float)
        tas = nc.createVariable(
            "tas", "f4", ("sample", "time", "y", "x"), chunksizes=(1, length, grid, grid)
        )
        tas.units = "K"
        for start in range(0, samples, BLOCK):
            n = min(BLOCK, samples - start)
            noise = rng.standard_normal((n, length, grid, grid), dtype=np.float32)
            for t in range(1, length):
                noise[:, t] = phi * noise[:, t - 1] + np.sqrt(1 - phi**2) * noise[:, t]
            tas[start : start + n] = 280 + 5 * noise
    return path


def run_evaluate(
    real: Path, synthetic: Path, out: Path, device: str
) -> tuple[float, float, int, str]:
    """Wall and CPU seconds, peak RSS in bytes and stdout of ``stgan evaluate`` in a child."""
    command = [sys.executable, "-m", "stgan", "evaluate", "--real", str(real)]
    command += ["--synthetic", str(synthetic), "--out", str(out), "--device", device]
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.PIPE, text=True)
    stdout = child.stdout.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"stgan evaluate failed with exit status {child.returncode}")
    cpu = usage.ru_utime + usage.ru_stime
    return seconds, cpu, usage.ru_maxrss * 1024, stdout  # ru_maxrss is in KiB on Linux


def main() -> None:
    args = parse_args()
    sample_bytes = 4 * args.length * args.grid**2
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        rows = []
        for size in args.sizes_gb:
            samples = max(16, round(size / 2 * 1e9 / sample_bytes))
            files = [
                write_file(Path(tmp) / f"{side}_{size}.nc", samples, args.length, args.grid, phi, i)
                for i, (side, phi) in enumerate((("real", 0.8), ("synthetic", 0.7)))
            ]
            gb = sum(f.stat().st_size for f in files) / 1e9
            load = os.getloadavg()[0]
            seconds, cpu, rss, table = run_evaluate(*files, Path(tmp) / "report.json", args.device)
            for f in files:
                f.unlink()
            rows.append((size, samples, gb, seconds, cpu, rss, load))
            print(table)
    print(
        f"samples: T={args.length}, {args.grid}x{args.grid}, float32; two files, real and synthetic"
    )
    print("GB asked  samples/file  GB on disk  wall s  CPU s  MB/s  peak RSS MB  load before")
    for size, samples, gb, seconds, cpu, rss, load in rows:
        print(
            f"{size:8.2f}  {samples:12d}  {gb:10.2f}  {seconds:6.1f}  {cpu:5.1f}"
            f"  {gb * 1e3 / seconds:4.0f}  {rss / 1e6:11.0f}  {load:11.2f}"
        )
    (_, _, gb_0, s_0, _, rss_0, _), (_, _, gb_1, s_1, _, rss_1, _) = rows[0], rows[-1]
    print(
        f"largest / smallest: input x{gb_1 / gb_0:.1f}, wall time x{s_1 / s_0:.2f}, "
        f"peak RSS x{rss_1 / rss_0:.2f}"
    )


if __name__ == "__main__":
    main()
