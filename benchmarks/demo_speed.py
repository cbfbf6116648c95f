"""Demo throughput: the demo pipeline's training samples/s, this code against stgan 0.4.0.

Issue 20 item 6: the demo's samples/s at least 2x stgan 0.4.0's (commit 6d135da) on one
thread. stgan 0.4.0 is extracted with ``git archive`` into a temporary directory, and each
run is its own ``python -m stgan train`` process with ``PYTHONPATH`` pointing at its
version, ``OMP_NUM_THREADS=1``, the same steps and no evaluation. Three runs per round:

- ``0.4.0`` on its own ``pipelines/demo.yaml`` (the demo as 0.4.0 shipped it: recurrence at
  4 x 4, three up-stages), the issue's reference;
- ``0.4.0`` on today's ``pipelines/demo.yaml`` (recurrence at 8 x 8, two up-stages): the same
  model on the old code, so the code's own speed-up shows apart from the model's change;
- this checkout on today's ``pipelines/demo.yaml``.

A run's rate is read from its TensorBoard events (``Perf/samples_per_s``, logged every
``--log-every`` steps: samples over the wall time of the window), the first window left out
(start-up, first-step allocations): samples over the seconds of the later windows. The
order of the runs rotates each round and the rate of each is the median over rounds, as
other jobs on the machine come and go. Prints each run's rate and the ratios.

``--full`` then times ``stgan run pipelines/demo.yaml`` (what ``make demo`` runs: 500 steps,
evaluations, generation and the report) on one thread while a second process runs the same
(the other CPU job), and prints each one's wall and CPU seconds (``os.wait4``).

    python benchmarks/demo_speed.py [--steps 40] [--log-every 10] [--rounds 2] [--full]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASELINE = "6d135da"  # stgan 0.4.0
DEMO = "pipelines/demo.yaml"


def extract(commit: str, into: Path) -> Path:
    """The tree of ``commit`` of this repository, unpacked under ``into``."""
    archive = into / f"{commit}.tar"
    with archive.open("wb") as out:
        subprocess.run(["git", "-C", str(ROOT), "archive", commit], stdout=out, check=True)
    tree = into / commit
    with tarfile.open(archive) as tar:
        tar.extractall(tree, filter="data")
    return tree


def one_thread_env(code: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(code), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env.pop("STGAN_THREADS", None)
    return env


def train_rate(code: Path, config: Path, logdir: Path, args: argparse.Namespace) -> float:
    """Samples/s of ``stgan train`` (``code``'s version) on ``config``, after the first window."""
    sets = [f"train.steps={args.steps}", f"train.log_every={args.log_every}", "eval.every=0"]
    command = [sys.executable, "-m", "stgan", "train", str(config), "--logdir", str(logdir)]
    for item in sets:
        command += ["--set", item]
    done = subprocess.run(command, env=one_thread_env(code), capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{code.name}: stgan train failed:\n{done.stderr[-3000:]}")
    rates = logged_rates(logdir)[1:]  # the first window holds the start-up
    return len(rates) / sum(1 / r for r in rates)  # equal samples per window


def logged_rates(logdir: Path) -> list[float]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(logdir), size_guidance={"scalars": 0})
    events.Reload()
    return [e.value for e in sorted(events.Scalars("Perf/samples_per_s"), key=lambda e: e.step)]


def compare_rates(old: Path, work: Path, args: argparse.Namespace) -> None:
    runs = {
        "0.4.0, its demo.yaml": (old, old / DEMO),
        "0.4.0, today's demo.yaml": (old, ROOT / DEMO),
        "this checkout, demo.yaml": (ROOT, ROOT / DEMO),
    }
    rates: dict[str, list[float]] = {name: [] for name in runs}
    names = list(runs)
    for round_ in range(args.rounds):
        for name in names[round_ % 3 :] + names[: round_ % 3]:
            code, config = runs[name]
            logdir = work / f"run{round_}_{names.index(name)}"
            rates[name].append(train_rate(code, config, logdir, args))
            print(f"  round {round_ + 1}: {name:<26} {rates[name][-1]:6.2f} samples/s", flush=True)
    median = {name: statistics.median(values) for name, values in rates.items()}
    print(f"\nmedian over {args.rounds} round(s), samples/s on one thread:")
    for name, value in median.items():
        print(f"  {name:<26} {value:6.2f}")
    now = median["this checkout, demo.yaml"]
    print(
        f"this checkout / 0.4.0 (its demo): {now / median['0.4.0, its demo.yaml']:.2f}x (goal >= 2x)"
    )
    print(f"this checkout / 0.4.0 (today's demo): {now / median[names[1]]:.2f}x (the code alone)")


def full_demo(work: Path) -> None:
    """``stgan run pipelines/demo.yaml`` on one thread beside a second copy of itself."""
    command = [sys.executable, "-m", "stgan", "run", str(ROOT / DEMO), "--logdir"]
    env = one_thread_env(ROOT)
    start = time.perf_counter()
    children = [
        subprocess.Popen(
            [*command, str(work / f"demo{i}")],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        for i in range(2)
    ]
    for child in children:
        _, status, usage = os.wait4(child.pid, 0)
        if status:
            raise SystemExit(f"stgan run failed (status {status}): see {work}")
        wall = time.perf_counter() - start
        cpu = usage.ru_utime + usage.ru_stime
        print(f"  stgan run {DEMO} (pid {child.pid}): wall {wall:.0f} s, CPU {cpu:.0f} s")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--log-every", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--full", action="store_true", help="also time `stgan run` beside a copy")
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"demo training, {args.steps} steps, one thread; load average {load:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        compare_rates(extract(BASELINE, work), work, args)
        if args.full:
            print(f"\nstgan run {DEMO}, one thread, two at once:")
            full_demo(work)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
