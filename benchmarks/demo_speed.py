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

A run's rate is timed where it logs its step rate (``Perf/samples_per_s``, every
``--log-every`` steps; the script wraps ``python -m stgan`` to read the process's CPU clock
and the wall clock there): the samples after the first window (start-up, first-step
allocations) over the CPU seconds and over the wall seconds they took. On a machine shared
with other jobs the CPU rate is the steadier figure (the wall rate is the CPU rate times
the share of a core the run got). The order of the runs rotates each round and each
figure is the median over rounds. Prints each run's rates and the ratios.

``--full`` then times ``stgan run pipelines/demo.yaml`` (what ``make demo`` runs: 500 steps,
evaluations, generation and the report) on one thread while a second process runs the same
(the other CPU job), and prints each one's wall and CPU seconds (``os.wait4``).

    python benchmarks/demo_speed.py [--steps 40] [--log-every 10] [--rounds 2] [--also COMMIT ...]
        [--variant KEY=VALUE[,KEY=VALUE] ...] [--full] [--no-rates]

``--variant`` adds this checkout on today's demo with more ``--set`` items (settings that
change the maths, e.g. ``optim.reuse_fakes=true`` or ``train.precision=bf16``), rated and
compared like the rest.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import re
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


@dataclasses.dataclass
class Rate:
    cpu: float  # samples per CPU second of the process
    wall: float  # samples per wall second


def one_thread_env(code: Path) -> dict[str, str]:
    env = dict(os.environ, PYTHONPATH=str(code), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    env["OMP_WAIT_POLICY"] = "PASSIVE"  # as stgan's CLI sets it before PyTorch loads
    env.pop("STGAN_THREADS", None)
    return env


# Runs ``python -m stgan ...`` with SummaryWriter.add_scalar patched to print the process's
# CPU and wall clocks whenever the step rate is logged (every version logs it through it)
CLOCKED = """
import runpy, sys, time
from torch.utils.tensorboard import SummaryWriter
add_scalar = SummaryWriter.add_scalar
def clocked(self, tag, value, step=None, *args, **kwargs):
    if tag == "Perf/samples_per_s":
        print("CLOCK", step, time.process_time(), time.perf_counter(), file=sys.stderr, flush=True)
    return add_scalar(self, tag, value, step, *args, **kwargs)
SummaryWriter.add_scalar = clocked
sys.argv = ["stgan", *sys.argv[1:]]
runpy.run_module("stgan", run_name="__main__")
"""


def train_rate(
    code: Path, config: Path, logdir: Path, args: argparse.Namespace, extra: tuple[str, ...] = ()
) -> Rate:
    """Samples/s of ``stgan train`` (``code``'s version) on ``config`` with the ``extra``
    ``--set`` items, after the first window: per CPU second of the process and per wall second."""
    sets = [f"train.steps={args.steps}", f"train.log_every={args.log_every}", "eval.every=0"]
    sets += extra
    command = [sys.executable, "-c", CLOCKED, "train", str(config), "--logdir", str(logdir)]
    for item in sets:
        command += ["--set", item]
    done = subprocess.run(command, env=one_thread_env(code), capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{code.name}: stgan train failed:\n{done.stderr[-3000:]}")
    clocks = re.findall(r"CLOCK (\d+) (\S+) (\S+)\n", done.stderr)  # between progress bars
    (step0, cpu0, wall0), (step1, cpu1, wall1) = clocks[0], clocks[-1]  # from the first window on
    samples = (int(step1) - int(step0)) * batch_size(config)
    return Rate(
        cpu=samples / (float(cpu1) - float(cpu0)), wall=samples / (float(wall1) - float(wall0))
    )


def batch_size(config: Path) -> int:
    """The pipeline's ``train.batch_size`` (read from its YAML; the demo's has it)."""
    import yaml

    return int(yaml.safe_load(config.read_text())["train"]["batch_size"])


def compare_rates(old: Path, work: Path, args: argparse.Namespace) -> None:
    runs = {
        "0.4.0, its demo.yaml": (old, old / DEMO, ()),
        "0.4.0, today's demo.yaml": (old, ROOT / DEMO, ()),
        "this checkout, demo.yaml": (ROOT, ROOT / DEMO, ()),
    }
    for commit in args.also:  # e.g. the commit before a change, on today's demo.yaml
        runs[f"{commit}, today's demo.yaml"] = (extract(commit, work), ROOT / DEMO, ())
    for variant in args.variant:  # this checkout with settings that change the maths
        runs[f"this checkout, {variant}"] = (ROOT, ROOT / DEMO, tuple(variant.split(",")))
    rates: dict[str, list[Rate]] = {name: [] for name in runs}
    names = list(runs)
    for round_ in range(args.rounds):
        for name in names[round_ % len(names) :] + names[: round_ % len(names)]:
            code, config, extra = runs[name]
            logdir = work / f"run{round_}_{names.index(name)}"
            rate = train_rate(code, config, logdir, args, extra)
            rates[name].append(rate)
            print(
                f"  round {round_ + 1}: {name:<26} {rate.cpu:6.2f} samples/CPU-s"
                f" {rate.wall:6.2f} samples/s (wall)",
                flush=True,
            )
    print(f"\nmedian over {args.rounds} round(s), one thread:")
    median = {}
    for name, values in rates.items():
        median[name] = Rate(*(statistics.median(v) for v in zip(*map(dataclasses.astuple, values))))
        print(f"  {name:<26} {median[name].cpu:6.2f} samples/CPU-s {median[name].wall:6.2f} (wall)")
    goals = {names[0]: " (goal >= 2x)", names[1]: " (the code alone)"}
    variants = [f"this checkout, {variant}" for variant in args.variant]
    for run in [names[2], *variants]:
        for name in [n for n in names if n != run and n not in variants]:
            now, ref = median[run], median[name]
            print(
                f"{run} / {name}: {now.cpu / ref.cpu:.2f}x per CPU second, "
                f"{now.wall / ref.wall:.2f}x per wall second{goals.get(name, '')}"
            )


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
    parser.add_argument("--no-rates", action="store_true", help="skip the step-rate comparison")
    parser.add_argument(
        "--also", nargs="*", default=[], metavar="COMMIT", help="more versions on today's demo"
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="KEY=VALUE[,KEY=VALUE]",
        help="this checkout on the demo with these --set items too (repeatable)",
    )
    args = parser.parse_args()
    load = os.getloadavg()[0]
    print(f"demo training, {args.steps} steps, one thread; load average {load:.1f}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if not args.no_rates:
            compare_rates(extract(BASELINE, work), work, args)
        if args.full:
            print(f"\nstgan run {DEMO}, one thread, two at once:")
            full_demo(work)
    print(f"load average after: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
