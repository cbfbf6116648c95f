"""Loader benchmark: stgan's DataLoader vs xbatcher vs in-memory NumPy, and peak RSS.

Writes a 3-variable float32 NetCDF (time x 128 x 128) to a temp dir, then prints:

1. windows/s for batches of 8 windows (T=16, random 64x64 patches): stgan with
   num_workers 0 and 2, xbatcher's BatchGenerator over the same file, and plain
   NumPy slicing of the array already in memory (the upper bound). stgan's rate is
   given for the first batches (its blocks still being read) and after one epoch
   (the blocks held: the steady state, which the goals use).
   Goals: >= 5x xbatcher, >= 0.5x the in-memory bound (file in the page cache).
2. windows/s of stgan (num_workers 0) on the file 16x as long, which is larger than
   the block budget, so it is streamed.
3. peak RSS of a process iterating one epoch over a file 1x and 16x as long in
   time. Goal: ratio <= 1.2 (memory does not grow with data size).

Run: ``python benchmarks/loader.py [--steps 1024] [--batches 60] [--long-factor 16]``
"""

from __future__ import annotations

import argparse
import itertools
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import xarray as xr

VARIABLES = ("u", "v", "t")
T, PATCH, BATCH, GRID = 16, 64, 8, 128


def write_file(path: Path, steps: int, seed: int = 0) -> Path:
    """A (time, y, x) float32 NetCDF with three variables, written in time blocks."""
    rng = np.random.default_rng(seed)
    coords = {
        "time": np.arange(steps) * np.timedelta64(1, "h") + np.datetime64("2000-01-01"),
        "y": np.arange(GRID, dtype=float),
        "x": np.arange(GRID, dtype=float),
    }
    template = xr.Dataset(
        {v: (("time", "y", "x"), np.zeros((0, GRID, GRID), np.float32)) for v in VARIABLES},
        {"y": coords["y"], "x": coords["x"], "time": coords["time"][:0]},
    )
    enc = {v: {"chunksizes": (T, GRID, GRID)} for v in VARIABLES}
    enc["time"] = {"units": "hours since 2000-01-01", "dtype": "int64"}
    template.to_netcdf(path, unlimited_dims=["time"], encoding=enc)
    import netCDF4

    with netCDF4.Dataset(path, "a") as nc:
        block = 512
        for start in range(0, steps, block):
            stop = min(start + block, steps)
            nc["time"][start:stop] = np.arange(start, stop)
            for v in VARIABLES:
                nc[v][start:stop] = rng.standard_normal(
                    (stop - start, GRID, GRID), dtype=np.float32
                )
    return path


def spec_for(path: Path, stride: int = 1):
    from stgan.data import spec_from_dict

    return spec_from_dict(
        {
            "files": str(path),
            "variables": list(VARIABLES),
            "window": {"length": T, "stride": stride},
            "split": {"fractions": [1.0, 0.0, 0.0]},
            "patch": PATCH,
        }
    )


def stgan_rates(path: Path, workers: int, batches: int, warm: bool = True) -> tuple[float, ...]:
    """windows/s over ``batches`` batches after the first, and (``warm``) over as many
    batches after one epoch."""
    import torch
    from torch.utils.data import DataLoader, RandomSampler

    from stgan.data import prepare

    ds = prepare(spec_for(path)).dataset("train")
    sampler = RandomSampler(ds, generator=torch.Generator().manual_seed(0))
    loader = DataLoader(
        ds, batch_size=BATCH, sampler=sampler, num_workers=workers, persistent_workers=workers > 0
    )
    it = itertools.chain.from_iterable(itertools.repeat(loader))
    next(it)  # warm-up: workers started, files opened
    rates = [_rate(it, batches)]
    if warm:
        for _ in range(len(ds) // BATCH - batches):
            next(it)
        rates.append(_rate(it, batches))
    return tuple(rates)


def _rate(batches_of, batches: int) -> float:
    start = time.perf_counter()
    for _ in range(batches):
        next(batches_of)
    return batches * BATCH / (time.perf_counter() - start)


def xbatcher_rate(path: Path, batches: int) -> float:
    import xbatcher

    ds = xr.open_dataset(path)[list(VARIABLES)]
    gen = xbatcher.BatchGenerator(
        ds, input_dims={"time": T, "y": PATCH, "x": PATCH}, input_overlap={"time": T - 1}
    )
    n = batches * BATCH
    order = np.random.default_rng(0).permutation(len(gen))[: n + 1]
    np.asarray(gen[int(order[0])].to_array().values)  # warm-up
    start = time.perf_counter()
    for i in order[1:]:
        np.asarray(gen[int(i)].to_array().values, dtype=np.float32)
    return n / (time.perf_counter() - start)


def memory_rate(path: Path, batches: int) -> float:
    ds = xr.open_dataset(path)
    array = np.stack([ds[v].values for v in VARIABLES], axis=1)  # (time, C, y, x) in memory
    rng = np.random.default_rng(0)
    start = time.perf_counter()
    for _ in range(batches):
        ts = rng.integers(0, array.shape[0] - T, BATCH)
        ys, xs = rng.integers(0, GRID - PATCH, BATCH), rng.integers(0, GRID - PATCH, BATCH)
        np.stack([array[t : t + T, :, y : y + PATCH, x : x + PATCH] for t, y, x in zip(ts, ys, xs)])
    return batches * BATCH / (time.perf_counter() - start)


def epoch_peak_rss(path: Path) -> tuple[float, float]:
    """Iterate one epoch (non-overlapping windows) in this process; return peak RSS in MiB
    after preparing the data (the statistics pass) and after the epoch."""
    from torch.utils.data import DataLoader

    from stgan.data import prepare

    ds = prepare(spec_for(path, stride=T)).dataset("train")
    prepared = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    for _ in DataLoader(ds, batch_size=BATCH, num_workers=0):
        pass
    return prepared, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def peak_rss_in_child(path: Path) -> tuple[float, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--epoch-rss", str(path)],
        capture_output=True,
        text=True,
        check=True,
    )
    prepared, epoch = out.stdout.strip().splitlines()[-1].split()
    return float(prepared), float(epoch)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--steps", type=int, default=1024, help="time steps of the 1x file (1024: 0.2 GB)"
    )
    parser.add_argument(
        "--long-factor", type=int, default=16, help="the long file is this many times longer"
    )
    parser.add_argument("--batches", type=int, default=60, help="batches timed per loader")
    parser.add_argument("--epoch-rss", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.epoch_rss:
        print(*epoch_peak_rss(args.epoch_rss))
        return
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        short = write_file(Path(tmp) / "short.nc", args.steps)
        gb = short.stat().st_size / 1e9
        print(
            f"file: 3 variables x {args.steps} x {GRID} x {GRID} float32, {gb:.2f} GB; "
            f"batch {BATCH}, T={T}, patch {PATCH}"
        )
        stgan = {w: stgan_rates(short, w, args.batches) for w in (0, 2)}
        rates = {
            "xbatcher BatchGenerator": xbatcher_rate(short, max(args.batches // 4, 5)),
            "NumPy slicing in memory (bound)": memory_rate(short, args.batches),
        }
        print(f"\n{'loader':<34} {'windows/s':>10} {'after an epoch':>15}")
        for w, (first, warm) in stgan.items():
            print(f"{f'stgan DataLoader, num_workers={w}':<34} {first:>10.0f} {warm:>15.0f}")
        for name, rate in rates.items():
            print(f"{name:<34} {rate:>10.0f}")
        best = max(warm for _, warm in stgan.values())
        print(
            f"\nstgan (best, after an epoch) / xbatcher:  "
            f"{best / rates['xbatcher BatchGenerator']:.1f}x  (goal >= 5x)"
        )
        print(
            f"stgan (best, after an epoch) / in-memory: "
            f"{best / rates['NumPy slicing in memory (bound)']:.2f}x  (goal >= 0.5x)"
        )

        long = write_file(Path(tmp) / "long.nc", args.steps * args.long_factor, seed=1)
        (streamed,) = stgan_rates(long, 0, args.batches, warm=False)
        xbatcher_long = xbatcher_rate(long, max(args.batches // 4, 5))
        print(
            f"\n{args.long_factor}x file ({long.stat().st_size / 1e9:.2f} GB, larger than the "
            f"block budget: streamed): stgan num_workers=0 {streamed:.0f} windows/s, "
            f"xbatcher {xbatcher_long:.0f}: {streamed / xbatcher_long:.1f}x"
        )
        (short_prep, short_rss), (long_prep, long_rss) = map(peak_rss_in_child, (short, long))
        print(
            f"\npeak RSS over one epoch: 1x ({gb:.2f} GB) {short_rss:.0f} MiB, "
            f"{args.long_factor}x ({long.stat().st_size / 1e9:.2f} GB) {long_rss:.0f} MiB, "
            f"ratio {long_rss / short_rss:.2f} (goal <= 1.2); after the statistics pass alone "
            f"{short_prep:.0f} and {long_prep:.0f} MiB"
        )
    print(f"\nload average (1 min) before, after: {load_before:.1f}, {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
