"""Quality benchmark: the default recipe on a suite of data sets, GAN against the baselines.

For each data set of the suite and each seed, runs in a child process (one thread,
``OMP_NUM_THREADS=1`` and ``--set train.threads=1``, two children at a time)::

    python -m stgan run SPEC.yaml --logdir WORK/<set>/seed<k> --set train.seed=<k>

(with ``--pipeline TEMPLATE.yaml``: a pipeline YAML written from the template with its
``data`` replaced by the set's spec), measures each child's CPU time (``os.wait4``), reads
each run's ``report.json`` (the GAN, the floor, the untrained generator and the per-cell
AR(1) baseline against the real test split) and prints one table: per set and variable,
the six metrics as mean and spread (standard deviation) over seeds, CPU minutes, and the
goals of issue 19 checked on every seed, with the worst seed's miss. The sets marked
``tune`` (the recipe may be tuned on them) and ``held-out`` (never tuned on) are shown
apart. Finished runs in the work dir are reused; a killed run resumes.

    python benchmarks/quality.py [--sets a,b] [--seeds 0,1,2] [--steps N]
        [--pipeline pipelines/demo.yaml] [--workdir runs/quality] [--json OUT] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # run from a checkout: this tree's stgan

from stgan.metrics.registry import BY_NAME, headline  # noqa: E402

TUNE, HELD_OUT = "tune", "held-out"
# The suite: set name -> (data spec, relative to the repository root; part). The recipe
# may be tuned on the "tune" sets only; the "held-out" ones are reported apart.
SUITE: dict[str, tuple[str, str]] = {
    "synthetic": ("data_specs/synthetic.yaml", TUNE),
    "ar1_smooth": ("benchmarks/suite/ar1_smooth.yaml", TUNE),
    "traffic": ("benchmarks/suite/traffic.yaml", TUNE),
    "ar1_rough": ("benchmarks/suite/ar1_rough.yaml", HELD_OUT),
    "advected": ("benchmarks/suite/advected.yaml", HELD_OUT),
    "cycles": ("benchmarks/suite/cycles.yaml", HELD_OUT),
    "rain": ("benchmarks/suite/rain.yaml", HELD_OUT),
    "era5_t2m_uk": ("data_specs/era5_t2m_uk.yaml", HELD_OUT),
    "nyc_bike": ("data_specs/nyc_bike.yaml", HELD_OUT),
}
METRICS = ("acf_error", "lsd_db", "wasserstein1", "ks", "c2st", "coverage")
SOURCES = ("GAN", "floor", "untrained", "ar1")
PARALLEL = 2  # children at a time, one thread each
RECORD = "quality_run.json"  # per run directory: CPU seconds and the arguments it ran with


@dataclass(frozen=True)
class Goal:
    """GAN ``metric`` at most ``limit`` (plus the floor's value when ``above_floor``)."""

    metric: str
    limit: float
    above_floor: bool

    def margin(self, values: Mapping[str, Mapping[str, float]]) -> float:
        """How far the GAN is inside the goal (>= 0: met; < 0: missed by that much)."""
        bound = self.limit + (values["floor"][self.metric] if self.above_floor else 0.0)
        return bound - values["GAN"][self.metric]

    @property
    def text(self) -> str:
        return f"{self.metric} <= {'floor + ' if self.above_floor else ''}{self.limit:g}"


# Issue 19's goals. c2st is |accuracy - 0.5| of a classifier (docs/metrics.md): 0 is
# indistinguishable, 0.5 perfectly separable; 0.45 is an accuracy of 95 %.
GOALS = (
    Goal("acf_error", 0.02, True),
    Goal("lsd_db", 1.0, True),
    Goal("ks", 0.04, True),
    Goal("c2st", 0.45, False),
)


# -- reading reports (pure) -----------------------------------------------------------------


def values_of(report: Mapping[str, Any], variable: str) -> dict[str, dict[str, float]]:
    """``{source: {metric: value}}`` of one variable of a ``report.json`` (NaN where absent)."""
    entries = {
        "GAN": report["variables"],
        "floor": report.get("floor") or {},
        **{name: b["variables"] for name, b in (report.get("baselines") or {}).items()},
    }
    found = {}
    for source in SOURCES:
        numbers = headline(entries.get(source, {}).get(variable, {}))
        found[source] = {m: _number(numbers[m]) for m in METRICS}
    return found


def better(metric: str, a: float, b: float) -> bool:
    """True if ``a`` is strictly better than ``b`` in ``metric``'s direction."""
    return a > b if BY_NAME[metric].better == "higher" else a < b


def worse_than_untrained(values: Mapping[str, Mapping[str, float]]) -> list[str]:
    """The metrics where the GAN is not better than the untrained generator."""
    gan, untrained = values["GAN"], values["untrained"]
    return [
        m
        for m in METRICS
        if not (math.isnan(gan[m]) and math.isnan(untrained[m]))
        and not better(m, gan[m], untrained[m])
    ]


def mean_spread(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample standard deviation of the finite values (spread 0 for one, NaN none)."""
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return math.nan, math.nan
    mean = sum(finite) / len(finite)
    if len(finite) == 1:
        return mean, 0.0
    return mean, math.sqrt(sum((v - mean) ** 2 for v in finite) / (len(finite) - 1))


def aggregate(per_seed: Sequence[Mapping[str, Mapping[str, float]]]) -> dict[str, Any]:
    """Mean and spread over seeds of every source and metric, and the goals checked on
    every seed: each goal's worst margin, the metrics lost to the untrained generator on
    any seed, and whether all goals hold."""
    stats = {
        source: {m: _stat([v[source][m] for v in per_seed]) for m in METRICS} for source in SOURCES
    }
    margins = {g.metric: min(g.margin(v) for v in per_seed) for g in GOALS}
    # an absolute goal the real data miss too (real vs real beyond the limit on some seed)
    floor_misses = [
        g.metric
        for g in GOALS
        if not g.above_floor and any(v["floor"][g.metric] > g.limit for v in per_seed)
    ]
    lost = sorted({m for v in per_seed for m in worse_than_untrained(v)}, key=METRICS.index)
    met = all(m >= 0 for m in margins.values()) and not lost  # a NaN margin is not met
    return {
        "stats": stats,
        "margins": margins,
        "floor_misses": floor_misses,
        "worse_than_untrained": lost,
        "met": met,
    }


def _stat(values: Sequence[float]) -> dict[str, float]:
    mean, spread = mean_spread(values)
    return {"mean": mean, "spread": spread}


def goal_text(row: Mapping[str, Any]) -> str:
    """``met``, or what misses: each goal missed with its worst seed's excess."""
    if row["met"]:
        return "met"
    missed = [
        (f"{metric} +{-margin:.3g}" if math.isfinite(margin) else f"{metric} n/a")
        + (" (the floor too)" if metric in row["floor_misses"] else "")
        for metric, margin in row["margins"].items()
        if not margin >= 0
    ]
    if row["worse_than_untrained"]:
        missed.append("not better than untrained: " + ", ".join(row["worse_than_untrained"]))
    return "; ".join(missed)


def _number(value: Any) -> float:
    return float(value) if isinstance(value, int | float) else math.nan


# -- running -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    """One training of one set and seed, in ``directory``."""

    name: str
    seed: int
    directory: Path
    config: Path  # the data spec, or the pipeline written from the template
    steps: int | None

    @property
    def args(self) -> dict[str, Any]:
        return {"config": str(self.config), "steps": self.steps}

    def command(self, force: bool) -> list[str]:
        cmd = [sys.executable, "-m", "stgan", "run", str(self.config)]
        cmd += ["--logdir", str(self.directory), "--set", f"train.seed={self.seed}"]
        cmd += ["--set", "train.threads=1"]
        if self.steps is not None:  # and one evaluation, at the end, to pick best.pt
            cmd += ["--set", f"train.steps={self.steps}", "--set", f"eval.every={self.steps}"]
        return cmd + (["--force"] if force else [])

    def record(self) -> dict[str, Any] | None:
        path = self.directory / RECORD
        return json.loads(path.read_text()) if path.is_file() else None


def plan(names: Sequence[str], seeds: Sequence[int], args: argparse.Namespace) -> list[Run]:
    runs = []
    for name in names:
        config = ROOT / SUITE[name][0]
        if args.pipeline is not None:
            config = write_pipeline(args.pipeline, config, args.workdir / name)
        for seed in seeds:
            directory = args.workdir / name / f"seed{seed}"
            runs.append(Run(name, seed, directory, config, args.steps))
    return runs


def write_pipeline(template: Path, spec: Path, directory: Path) -> Path:
    """``directory/pipeline.yaml``: the template with its ``data`` replaced by ``spec``."""
    import yaml

    from stgan.atomic import write_text_atomic
    from stgan.config import load_yaml

    pipeline = load_yaml(template)
    pipeline["name"] = directory.name
    pipeline["data"] = str(spec.resolve())
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "pipeline.yaml"
    header = f"# Written by benchmarks/quality.py from {template} with data: {spec.name}\n"
    write_text_atomic(path, header + yaml.safe_dump(pipeline, sort_keys=False))
    return path


def execute(runs: Sequence[Run], parallel: int, echo=print) -> None:
    """Run what is not finished, ``parallel`` children at a time; each child's CPU time
    (its own and its children's, from ``os.wait4``) is added to its run's record."""
    pending = [r for r in runs if not _finished(r)]
    for run in runs:
        if run not in pending:
            echo(f"{run.name} seed {run.seed}: finished in {run.directory}; reused")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    active: dict[int, tuple[Run, subprocess.Popen, float]] = {}
    while pending or active:
        while pending and len(active) < parallel:
            run = pending.pop(0)
            child = _start(run, env, echo)
            active[child.pid] = (run, child, time.monotonic())
        pid, status, usage = os.wait4(-1, 0)
        if pid not in active:
            continue
        run, child, started = active.pop(pid)
        child.returncode = os.waitstatus_to_exitcode(status)
        _save_record(run, child.returncode, usage.ru_utime + usage.ru_stime, started)
        state = "done" if child.returncode == 0 else f"FAILED (exit {child.returncode})"
        echo(f"{run.name} seed {run.seed}: {state}; log {run.directory / 'quality.log'}")


def _finished(run: Run) -> bool:
    record = run.record()
    return (
        record is not None
        and record.get("rc") == 0
        and record.get("args") == run.args
        and (run.directory / "report.json").is_file()
    )


def _start(run: Run, env: dict[str, str], echo) -> subprocess.Popen:
    record = run.record()
    force = record is not None and record.get("args") != run.args  # other steps or config
    run.directory.mkdir(parents=True, exist_ok=True)
    command = run.command(force)
    echo(f"{run.name} seed {run.seed}: " + " ".join(command[1:]))
    with open(run.directory / "quality.log", "a") as log:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=log)


def _save_record(run: Run, rc: int, cpu_s: float, started: float) -> None:
    from stgan.atomic import write_text_atomic

    earlier = run.record()
    resumed = earlier is not None and earlier.get("args") == run.args
    record = {
        "rc": rc,
        "args": run.args,
        "cpu_s": cpu_s + (earlier["cpu_s"] if resumed else 0.0),
        "wall_s": time.monotonic() - started + (earlier["wall_s"] if resumed else 0.0),
    }
    write_text_atomic(run.directory / RECORD, json.dumps(record, indent=2))


# -- results -------------------------------------------------------------------------------


def collect(runs: Sequence[Run]) -> dict[str, Any]:
    """Per set: its part, CPU minutes per seed, failed seeds and per variable the aggregate."""
    results: dict[str, Any] = {}
    for name in dict.fromkeys(r.name for r in runs):
        mine = [r for r in runs if r.name == name]
        reports = {r.seed: _report(r) for r in mine}
        done = {seed: rep for seed, rep in reports.items() if rep is not None}
        variables = list(next(iter(done.values()))["variables"]) if done else []
        results[name] = {
            "part": SUITE[name][1],
            "spec": SUITE[name][0],
            "seeds": sorted(done),
            "failed": sorted(set(reports) - set(done)),
            "cpu_minutes": [(r.record() or {}).get("cpu_s", math.nan) / 60 for r in mine],
            "variables": {
                v: aggregate([values_of(rep, v) for rep in done.values()]) for v in variables
            },
        }
    return results


def _report(run: Run) -> dict[str, Any] | None:
    record, path = run.record(), run.directory / "report.json"
    if record is None or record.get("rc") != 0 or not path.is_file():
        return None
    return json.loads(path.read_text())


def table(results: Mapping[str, Any], markdown: bool = False) -> str:
    """The results as one table, the tune part and the held-out part apart."""
    header = ["set", "variable", "source", *METRICS, "CPU min", "goals"]
    blocks = []
    for part in (TUNE, HELD_OUT):
        rows = [header]
        for name, found in results.items():
            if found["part"] == part:
                rows += _rows(name, found)
        if len(rows) > 1:
            blocks.append((part, rows))
    return "\n\n".join(_render(part, rows, markdown) for part, rows in blocks)


def _rows(name: str, found: Mapping[str, Any]) -> list[list[str]]:
    cpu, spread = mean_spread(found["cpu_minutes"])
    cpu_text = _pm(cpu, spread, digits=1)
    if not found["variables"]:
        return [[name, "-", "-", *["-"] * len(METRICS), cpu_text, "all seeds failed"]]
    rows = []
    for variable, row in found["variables"].items():
        for i, source in enumerate(SOURCES):
            cells = [_pm(**row["stats"][source][m]) for m in METRICS]
            first = i == 0
            goals = goal_text(row) if first else ""
            if first and found["failed"]:
                goals += f" (failed seeds: {', '.join(map(str, found['failed']))})"
            rows.append(
                [name if first else "", variable if first else "", source, *cells]
                + [cpu_text if first else "", goals]
            )
    return rows


def _pm(mean: float, spread: float, digits: int = 3) -> str:
    """``mean±spread``; no spread where the seeds agree up to float rounding (the floor and
    the AR(1) baseline do not depend on the seed)."""
    if not math.isfinite(mean):
        return "-"
    text = f"{mean:.{digits}f}" if digits == 1 else f"{mean:.3g}"
    return text + (f"±{spread:.2g}" if spread > 1e-9 * max(abs(mean), 1e-12) else "")


def _render(part: str, rows: list[list[str]], markdown: bool) -> str:
    if markdown:
        lines = [f"**{part}**", "", "| " + " | ".join(rows[0]) + " |"]
        lines.append("|" + "---|" * len(rows[0]))
        lines += ["| " + " | ".join(row) + " |" for row in rows[1:]]
        return "\n".join(lines)
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [f"== {part} =="]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)).rstrip() for row in rows]
    return "\n".join(lines)


# -- command line --------------------------------------------------------------------------


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sets", help=f"comma-separated sets (default all: {', '.join(SUITE)})")
    parser.add_argument("--seeds", default="0,1,2", help="comma-separated seeds (0,1,2)")
    parser.add_argument("--steps", type=int, help="override train.steps (for iterating)")
    parser.add_argument("--pipeline", type=Path, help="a pipeline YAML whose data is replaced")
    parser.add_argument("--workdir", type=Path, default=ROOT / "runs" / "quality")
    parser.add_argument("--json", type=Path, help="write the results as JSON here")
    parser.add_argument("--markdown", action="store_true", help="print the table as markdown")
    parser.add_argument("--jobs", type=int, default=PARALLEL, help="children at a time (2)")
    return parser.parse_args(argv)


def selection(args: argparse.Namespace) -> tuple[list[str], list[int]]:
    """The sets and seeds asked for; ``ValueError`` with one line naming the problem."""
    names = args.sets.split(",") if args.sets else list(SUITE)
    unknown = [n for n in names if n not in SUITE]
    if unknown:
        raise ValueError(f"--sets: unknown set(s) {', '.join(unknown)}; known: {', '.join(SUITE)}")
    try:
        seeds = [int(s) for s in args.seeds.split(",")]
    except ValueError:
        raise ValueError(
            f"--seeds: {args.seeds!r} is not a comma-separated list of integers"
        ) from None
    if args.steps is not None and args.steps < 1:
        raise ValueError(f"--steps: {args.steps} must be >= 1")
    if args.pipeline is not None and not args.pipeline.is_file():
        raise ValueError(f"--pipeline: {args.pipeline} not found; give a pipeline YAML")
    return names, seeds


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        names, seeds = selection(args)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    started = time.monotonic()
    runs = plan(names, seeds, args)
    execute(runs, args.jobs)
    results = collect(runs)
    wall = time.monotonic() - started
    print()
    print(table(results, markdown=args.markdown))
    cpu = sum(m for found in results.values() for m in found["cpu_minutes"] if math.isfinite(m))
    goals = ", ".join(g.text for g in GOALS) + ", GAN better than untrained on all six"
    print(f"\ngoals checked on every seed (worst seed's excess shown): {goals}")
    print(
        f"{len(runs)} runs, {args.jobs} at a time: wall {wall / 60:.1f} min, CPU {cpu:.1f} min "
        "(a reused run counts the CPU recorded when it ran)"
    )
    if args.json is not None:
        from stgan.atomic import write_text_atomic

        document = {"results": results, "wall_s": wall, "seeds": seeds, "steps": args.steps}
        write_text_atomic(args.json, json.dumps(finite(document), indent=2))
    failed = any(found["failed"] for found in results.values())
    return 1 if failed else 0


def finite(value: Any) -> Any:
    """``value`` with every non-finite float as ``None`` (JSON has no NaN)."""
    if isinstance(value, Mapping):
        return {k: finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [finite(v) for v in value]
    return None if isinstance(value, float) and not math.isfinite(value) else value


if __name__ == "__main__":
    sys.exit(main())
