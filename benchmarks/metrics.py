"""Benchmark: stgan's batched torch ACF + RAPSD against looping the reference libraries, and
the pooled distances (wasserstein1, ks, energy) from one merged sort against scipy's three.

The references are statsmodels ``acf`` per cell series and pysteps ``rapsd`` per frame, as
docs/metrics.md defines the metrics. Looping statsmodels over every series takes minutes, so it
runs on a seeded subset and its time is extrapolated linearly (the output says so).

    python benchmarks/metrics.py --frames 2000 --size 128 --device all
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import torch
from pysteps.utils.spectral import rapsd
from scipy import stats
from statsmodels.tsa.stattools import acf

from stgan.metrics.acf import ACF, acf_curves
from stgan.metrics.distribution import cdf_distances
from stgan.metrics.spectra import PSD


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=2000, help="frames in all (default 2000)")
    parser.add_argument("--size", type=int, default=128, help="grid is size x size (default 128)")
    parser.add_argument("--length", type=int, default=16, help="sequence length T (default 16)")
    parser.add_argument("--lags", type=int, default=10, help="acf lags K (default 10)")
    parser.add_argument(
        "--device", default="all", help="cpu, cuda or all (cuda when available; default all)"
    )
    parser.add_argument("--ref-series", type=int, default=20_000, help="statsmodels series timed")
    parser.add_argument("--ref-frames", type=int, default=500, help="pysteps frames timed")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--pooled", type=int, default=10**6, help="values a side for the pooled distances (10^6)"
    )
    return parser.parse_args()


def make_data(rng: np.random.Generator, frames: int, length: int, size: int) -> np.ndarray:
    """``(frames // length, length, size, size)`` float64: AR(1) in time of k^-2.5 fields."""
    k = np.hypot(*np.meshgrid(np.fft.fftfreq(size), np.fft.fftfreq(size), indexing="ij"))
    k[0, 0] = np.inf
    shape = (frames // length, length, size, size)
    noise = np.fft.ifft2(np.fft.fft2(rng.normal(size=shape)) * k**-1.25).real
    data = np.empty(shape)
    data[:, 0] = noise[:, 0]
    for t in range(1, length):
        data[:, t] = 0.8 * data[:, t - 1] + 0.6 * noise[:, t]
    return data / data.std() + 10


def timed(fn: Callable[[], object], device: str = "cpu") -> tuple[float, object]:
    start = time.perf_counter()
    result = fn()
    if device == "cuda":
        torch.cuda.synchronize()
    return time.perf_counter() - start, result


def stgan_acf(data: np.ndarray, lags: int, device: str) -> dict:
    metric = ACF(lags, device)
    metric.update(real=data, synthetic=data)
    return metric.compute()["acf"]


def stgan_psd(data: np.ndarray, device: str) -> dict:
    metric = PSD(device)
    metric.update(real=data, synthetic=data)
    return metric.compute()["psd"]


def check_acf(data: np.ndarray, lags: int, picks: np.ndarray) -> tuple[float, float]:
    """Seconds of statsmodels over the picked series, and the worst relative difference."""
    series = np.moveaxis(data, 1, -1).reshape(-1, data.shape[1])[picks]  # (n, T)
    seconds, expected = timed(lambda: [acf(s, nlags=lags, adjusted=False) for s in series])
    got, _ = acf_curves(torch.as_tensor(series[:, :, None, None]), lags)  # (K + 1, n)
    return seconds, float(np.max(np.abs(got.numpy().T - np.array(expected))))


def check_psd(data: np.ndarray, picks: np.ndarray) -> tuple[float, float]:
    """Seconds of pysteps over the picked frames, and the worst relative difference."""
    frames = data.reshape(-1, *data.shape[-2:])[picks]
    seconds, curves = timed(lambda: [rapsd(f, fft_method=np.fft) for f in frames])
    expected = np.mean(curves, axis=0)
    got = np.array(stgan_psd(frames[:, None], "cpu")["real"])
    return seconds, float(np.max(np.abs(got - expected) / expected))


def main() -> None:
    args = parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    rng = np.random.default_rng(args.seed)
    data = make_data(rng, args.frames, args.length, args.size)
    n_series, n_frames = len(data) * args.size**2, len(data) * args.length
    series_picks = np.sort(rng.choice(n_series, min(args.ref_series, n_series), replace=False))
    frame_picks = np.sort(rng.choice(n_frames, min(args.ref_frames, n_frames), replace=False))

    acf_seconds, acf_diff = check_acf(data, args.lags, series_picks)
    psd_seconds, psd_diff = check_psd(data, frame_picks)
    # the metrics run both sides; the reference loops one side, so scale it by 2
    reference = {
        "acf": 2 * acf_seconds * n_series / len(series_picks),
        "rapsd": 2 * psd_seconds * n_frames / len(frame_picks),
    }
    devices = ["cpu", "cuda"] if args.device == "all" else [args.device]
    devices = [d for d in devices if d == "cpu" or torch.cuda.is_available()]
    timings = {device: run_stgan(data, args.lags, device) for device in devices}

    print(
        f"data: {len(data)} sequences x T={args.length} = {n_frames} frames of {args.size}^2, "
        f"float64; torch threads {torch.get_num_threads()}"
    )
    print(
        f"reference times extrapolated linearly from {len(series_picks)} of {n_series} series "
        f"(statsmodels) and {len(frame_picks)} of {n_frames} frames (pysteps), x2 for both sides"
    )
    print(
        f"agreement with the references: acf max abs diff {acf_diff:.1e}, "
        f"rapsd max rel diff {psd_diff:.1e} ({'OK' if max(acf_diff, psd_diff) < 1e-6 else 'FAIL'})"
    )
    header = f"{'metric':8} {'reference s':>12}" + "".join(
        f" {d + ' s':>10} {'speed-up':>9}" for d in timings
    )
    print(header)
    for name in ("acf", "rapsd", "total"):
        ref = sum(reference.values()) if name == "total" else reference[name]
        row = f"{name:8} {ref:12.2f}"
        for seconds in timings.values():
            own = sum(seconds.values()) if name == "total" else seconds[name]
            row += f" {own:10.3f} {ref / own:8.0f}x"
        print(row)
    print_pooled(rng, args.pooled)


def print_pooled(rng: np.random.Generator, size: int) -> None:
    """scipy's wasserstein_distance, ks_2samp and energy_distance (each sorts both sides)
    against ``cdf_distances`` (one merged sort) on ``size`` values a side, as a report's
    reservoir holds them: best of three, and the largest relative difference."""
    real, synthetic = rng.normal(size=size), rng.gamma(2.0, size=size)
    scipy_three = {
        "wasserstein1": stats.wasserstein_distance,
        "ks": lambda a, b: stats.ks_2samp(a, b).statistic,
        "energy": stats.energy_distance,
    }
    reference = min(
        timed(lambda: {k: f(real, synthetic) for k, f in scipy_three.items()}) for _ in range(3)
    )
    own = min(timed(lambda: cdf_distances(real, synthetic)) for _ in range(3))
    diff = max(abs(own[1][k] / reference[1][k] - 1) for k in scipy_three)
    print(
        f"pooled distances, {size:,} values a side: scipy's three {reference[0]:.3f} s, "
        f"cdf_distances {own[0]:.3f} s: {reference[0] / own[0]:.1f}x; max rel diff {diff:.1e}"
    )


def run_stgan(data: np.ndarray, lags: int, device: str) -> dict[str, float]:
    """Best of three timings of each metric over both sides (the first run warms up)."""
    runs = [
        {
            "acf": timed(lambda: stgan_acf(data, lags, device), device)[0],
            "rapsd": timed(lambda: stgan_psd(data, device), device)[0],
        }
        for _ in range(3)
    ]
    return {name: min(run[name] for run in runs) for name in runs[0]}


if __name__ == "__main__":
    main()
