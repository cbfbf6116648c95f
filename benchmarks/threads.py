"""Thread benchmark: two ``stgan train`` runs at once against one alone, per process.

Trains the demo pipeline (``pipelines/demo.yaml``, a few steps, no evaluation) in child
processes: one run alone, then two started together, first with the automatic thread
count (each process its share of the cores, ``stgan.threads``) and then with the old
behaviour (each process one thread per core, ``--set train.threads=<cores>``) for
reference (also with OpenMP's old spin-waiting: PyTorch is imported before the CLI
could ask for passive waiting). A run's rate is its ``Perf/samples_per_s`` over its logged windows after the
first (warm-up); for two at once, only the windows while both were training count.
Prints samples/s per process and the ratio "two at once / alone" (goal >= 0.4).

The children get no OMP_NUM_THREADS / MKL_NUM_THREADS, and a private process registry
(``STGAN_PROCESS_DIR``), so other stgan jobs on the machine do not change their share;
they do compete for the cores, so the load average is printed.

    python benchmarks/threads.py [--steps 15] [--log-every 3]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = ROOT / "pipelines" / "demo.yaml"
TAG = "Perf/samples_per_s"
# The old behaviour: torch (and its OpenMP) loaded before the CLI sets OMP_WAIT_POLICY.
OLD_CLI = "import torch; from stgan.cli import main; "


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=15, help="training steps per run")
    parser.add_argument("--log-every", type=int, default=3, help="steps per measured window")
    return parser.parse_args()


def child_env(registry: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["STGAN_PROCESS_DIR"] = str(registry)
    return env


def start_run(logdir: Path, args: argparse.Namespace, threads: int, env: dict) -> subprocess.Popen:
    settings = {
        "train.steps": args.steps,
        "train.log_every": args.log_every,
        "train.ckpt_every": args.steps,
        "train.hist_every": 10 * args.steps,
        "eval.every": 0,
        "train.threads": threads,
    }
    old = OLD_CLI if threads else "from stgan.cli import main; "  # threads > 0: the old way
    command = [sys.executable, "-c", old + "import sys; sys.exit(main(sys.argv[1:]))"]
    command += ["train", str(PIPELINE), "--logdir", str(logdir), "--device", "cpu"]
    for key, value in settings.items():
        command += ["--set", f"{key}={value}"]
    return subprocess.Popen(
        command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )


def windows(logdir: Path) -> list[tuple[float, float, float]]:
    """``(start, end, samples/s)`` wall-clock windows after the first (warm-up) one."""
    from tensorboard.backend.event_processing import event_accumulator as ea

    acc = ea.EventAccumulator(str(logdir), size_guidance={ea.SCALARS: 0})
    acc.Reload()
    events = acc.Scalars(TAG)
    return [(a.wall_time, b.wall_time, b.value) for a, b in zip(events, events[1:], strict=False)]


def rate(spans: list[tuple[float, float, float]], start: float, end: float) -> float:
    """Samples/s over the windows inside ``[start, end]`` (equal windows: harmonic mean)."""
    inside = [r for s, e, r in spans if s >= start - 1e-6 and e <= end + 1e-6]
    if not inside:
        raise SystemExit("no window while all runs trained; raise --steps")
    return len(inside) / sum(1 / r for r in inside)


def train_at_once(count: int, threads: int, args: argparse.Namespace, work: Path) -> list[float]:
    """Samples/s of each of ``count`` runs started together (only while all of them trained)."""
    registry = work / f"registry-{count}-{threads}"
    logdirs = [work / f"run-{count}-{threads}-{i}" for i in range(count)]
    runs = [start_run(d, args, threads, child_env(registry)) for d in logdirs]
    for run in runs:
        _, err = run.communicate()
        if run.returncode:
            raise SystemExit(f"stgan train failed:\n{err[-2000:]}")
    spans = [windows(d) for d in logdirs]
    start = max(s[0][0] for s in spans)
    end = min(s[-1][1] for s in spans)
    return [rate(s, start, end) for s in spans]


def main() -> None:
    args = parse_args()
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(f"demo pipeline, {args.steps} steps, windows of {args.log_every}; {cores} usable cores")
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    modes = (("automatic (its share)", 0), (f"old ({cores} threads each)", cores))
    results = []
    with tempfile.TemporaryDirectory(prefix="stgan-threads-") as tmp:
        for label, threads in modes:
            began = time.perf_counter()
            (alone,) = train_at_once(1, threads, args, Path(tmp))
            two = train_at_once(2, threads, args, Path(tmp))
            results.append((label, alone, two, time.perf_counter() - began))
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    print(
        f"{'threads':<24} {'alone':>8} {'two at once (each)':>20} {'ratio (each)':>14} {'wall':>6}"
    )
    for label, alone, two, wall in results:
        each = ", ".join(f"{r:.1f}" for r in two)
        ratios = ", ".join(f"{r / alone:.2f}" for r in two)
        print(f"{label:<24} {alone:>8.1f} {each:>20} {ratios:>14} {wall:>5.0f}s")
    print("samples/s; goal: ratio >= 0.4 for each process with the automatic setting")


if __name__ == "__main__":
    main()
