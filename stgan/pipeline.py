"""``stgan run``: train → generate → evaluate → report, each stage skipped when done.

A run directory holds, stage by stage:

- train: ``checkpoints/`` (a killed run resumes from its newest checkpoint), events;
- generate: ``synthetic.nc``, from ``checkpoints/best.pt`` (else the newest checkpoint);
- evaluate: ``report.json`` (the test split against the synthetic sequences, with the
  floor and the baselines), ``figures/*.png`` and the TensorBoard run ``test/``.

A stage is done when its output exists and is newer than the stage before it.
"""

from __future__ import annotations

import dataclasses
import shlex
import shutil
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
import xarray as xr

from stgan.training.config import PipelineConfig


@dataclasses.dataclass(frozen=True)
class Paths:
    root: Path
    figures_dir: Path | None = None

    @property
    def checkpoints(self) -> Path:
        return self.root / "checkpoints"

    @property
    def synthetic(self) -> Path:
        return self.root / "synthetic.nc"

    @property
    def report(self) -> Path:
        return self.root / "report.json"

    @property
    def figures(self) -> Path:
        return self.figures_dir or self.root / "figures"

    @property
    def tensorboard(self) -> Path:
        return self.root / "test"


def run_pipeline(
    config: PipelineConfig,
    logdir: Path,
    device: str = "auto",
    force: bool = False,
    echo: Callable[[str], None] = print,
    figures: Path | None = None,
) -> dict[str, Any]:
    """Run every stage that is not done yet; returns the report. ``figures``: where the
    evaluation PNGs go (default ``LOGDIR/figures``)."""
    from stgan.run_lock import hold_run_directory

    paths = Paths(Path(logdir), figures)
    with hold_run_directory(paths.root):  # across all stages: one writer per run directory
        if force:
            clear(paths)
        train_stage(config, paths, device, echo)
        generate_stage(config, paths, device, echo)
        return evaluate_stage(config, paths, device, echo)


def clear(paths: Paths) -> None:
    """Remove what earlier runs wrote (checkpoints, events, outputs) from the run directory."""
    from stgan.logging import QUICK_RUN

    for path in (paths.checkpoints, paths.figures, paths.tensorboard, paths.root / QUICK_RUN):
        shutil.rmtree(path, ignore_errors=True)
    for path in (paths.synthetic, paths.report, *paths.root.glob("events.out.tfevents.*")):
        path.unlink(missing_ok=True)


def train_stage(config: PipelineConfig, paths: Paths, device: str, echo) -> None:
    from stgan.training.checkpoint import load_latest
    from stgan.training.loop import train

    found = load_latest(paths.checkpoints) if paths.checkpoints.is_dir() else None
    if found and int(found[1]["step"]) >= config.train.steps:
        echo(f"train: done ({found[0]} is at step {found[1]['step']}); skipped")
        return
    if found:
        echo(f"train: resuming from {found[0]} (step {found[1]['step']})")
    else:
        echo(f"train: {config.train.steps} steps into {paths.root}")
    train(config, paths.root, device=device, resume=found is not None)


def generate_stage(config: PipelineConfig, paths: Paths, device: str, echo) -> None:
    from stgan.data.cf import write_netcdf
    from stgan.sampling import generate, resolve_checkpoint

    checkpoint = resolve_checkpoint(paths.root)
    if _fresh(paths.synthetic, checkpoint):
        echo(f"generate: done ({paths.synthetic}); skipped")
        return
    r = config.report
    echo(f"generate: {r.samples} sequences from {checkpoint}")
    ds = generate(checkpoint, r.samples, seed=r.seed, device=device, start=_starts(config))
    write_netcdf(ds, paths.synthetic, command=_command())


def _starts(config: PipelineConfig) -> list[str] | None:
    """Sample ``i`` for the times of the report's real window ``i`` (a generator conditioned
    on the calendar; nowcasts follow their context instead)."""
    from stgan.comparison import sample_start_times
    from stgan.data.io import open_source
    from stgan.data.windows import build_layout

    if config.context_frames or not config.model.generator.calendar:
        return None
    source = open_source(config.spec)
    layout = build_layout(source.time, config.spec.split, config.spec.window)
    r = config.report
    return sample_start_times(source, layout, r.split, r.samples, config.context_frames)


def evaluate_stage(config: PipelineConfig, paths: Paths, device: str, echo) -> dict[str, Any]:
    from stgan.metrics.report import to_json

    if _fresh(paths.report, paths.synthetic):
        import json

        echo(f"evaluate: done ({paths.report}); skipped")
        report = json.loads(paths.report.read_text())
    else:
        echo(f"evaluate: the {config.report.split} split against {paths.synthetic}")
        report, figures = compare(config, paths, device)
        from stgan.atomic import write_text_atomic
        from stgan.figures import rendered, save_figures
        from stgan.metrics.tensorboard import write_report_events

        pngs = rendered(figures)  # drawn once: saved and logged
        save_figures(pngs, paths.figures)
        write_text_atomic(paths.report, to_json(report))
        write_report_events(paths.tensorboard, report, pngs, step=config.train.steps)
    print_report(report, paths, echo)
    return report


def compare(
    config: PipelineConfig, paths: Paths, device: str
) -> tuple[dict[str, Any], dict[str, Any]]:
    """The report (GAN against the real split, floor, score, baselines) and its figures."""
    from stgan.sampling import load_trained
    from stgan.training.distributed import resolve_device

    torch_device = resolve_device(device)
    trained = load_trained(paths.root, torch_device)
    comparison, train_ds, time = report_comparison(config, trained, torch_device)
    synthetic_ds = xr.open_dataset(paths.synthetic)
    try:
        synthetic = {v: synthetic_ds[v].values for v in config.spec.variable_names}
    finally:
        synthetic_ds.close()
    report = comparison.report(synthetic)
    report["baselines"] = {
        name: _baseline_entry(comparison.report(fake))
        for name, fake in baselines(config, trained, comparison, train_ds, time).items()
    }
    return report, comparison.figures(report, synthetic)


def _baseline_entry(report: dict[str, Any]) -> dict[str, Any]:
    return {"variables": report["variables"], "score": report["score"]}


def report_comparison(config: PipelineConfig, trained, device: torch.device):
    """The comparison of ``report.split`` on the trained grid; the train split (for the
    AR(1) fit) and the name of its time dim."""
    from stgan.comparison import Crop, Cut, comparison_options, cropped, split_comparison
    from stgan.data.io import open_source
    from stgan.data.windows import build_layout

    source = open_source(config.spec)
    layout = build_layout(source.time, config.spec.split, config.spec.window)
    cut = Cut(
        config.report.samples, trained.frames, config.context_frames, Crop.of_grid(trained.grid)
    )
    data = cropped(source, cut.crop)  # opened once for the windows, the floor and the AR(1) fit
    comparison = split_comparison(
        source, layout, config.report.split, cut, data, **comparison_options(config), device=device
    )
    time = source.dims.time
    return comparison, data.isel({time: slice(*layout.splits["train"])}), time


def baselines(config: PipelineConfig, trained, comparison, train_ds: xr.Dataset, time: str):
    """``{name: {variable: (N, T, y, x)}}`` from the simple generators of stgan/baselines.py."""
    from stgan import baselines as simple

    n, seed = config.report.samples, config.report.seed
    found = {}
    for name in config.report.baselines:
        if name == "untrained":
            found[name] = _untrained(config, trained, comparison, n, seed)
        else:  # ar1
            found[name] = {
                v: simple.ar1_sample(simple.ar1_fit(train_ds[v], time), n, trained.frames, seed)
                for v in comparison.real.arrays
            }
    return found


def _untrained(
    config: PipelineConfig, trained, comparison, n: int, seed: int
) -> dict[str, np.ndarray]:
    """The same generator at its initial weights, through the same sampling path (for the
    calendar of the compared windows)."""
    from stgan.comparison import as_variables
    from stgan.models import build_generator
    from stgan.sampling import sample

    g = trained.generator
    device = next(g.parameters()).device
    torch.manual_seed(config.train.seed)
    fresh = build_generator(
        config.model.generator, g.channels, g.height, g.width, g.frames, g.calendar_features
    )
    fresh.set_lower(trained.transforms.normalized_lower())  # the bounds training sets
    untrained = dataclasses.replace(trained, generator=fresh.to(device).eval())
    days = comparison.real.calendar(trained.cycles)  # (N, T, F) or None
    values = sample(untrained, n, g.frames, seed, None, 16, False, days)  # (N, T, C, H, W)
    return as_variables(values, list(trained.grid["variables"]))


def _fresh(output: Path, source: Path) -> bool:
    return output.exists() and output.stat().st_mtime >= source.stat().st_mtime


def print_report(report: dict[str, Any], paths: Paths, echo) -> None:
    from stgan.metrics.summary import format_report
    from stgan.output_paths import tensorboard_command

    echo(format_report(report))
    echo("")
    echo(comparison_table(report))
    echo("")
    echo(f"report:      {paths.report}")
    echo(f"synthetic:   {paths.synthetic}")
    echo(f"figures:     {paths.figures}/")
    echo(f"TensorBoard: {tensorboard_command(paths.root)}  (then open http://localhost:6006)")


def comparison_table(report: dict[str, Any]) -> str:
    """Per variable: the GAN, the floor (real vs real) and each baseline, lower is better
    (coverage: higher is better)."""
    from stgan.metrics.registry import SHOWN, headline

    lines = []
    for variable in report["variables"]:
        rows = [("GAN", report["variables"])]
        if "floor" in report:
            rows.append(("floor (real vs real)", report["floor"]))
        rows += [(name, entry["variables"]) for name, entry in report.get("baselines", {}).items()]
        table = [[variable, *SHOWN]]
        for label, variables in rows:
            values = headline(variables[variable])
            table.append([label] + [_fmt(values.get(m)) for m in SHOWN])
        widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
        lines += ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)) for row in table]
        lines.append("")
    return "\n".join(lines).rstrip()


def _fmt(value: float | None) -> str:
    return "-" if value is None or not np.isfinite(value) else f"{value:.3g}"


def _command() -> str:
    return "stgan " + " ".join(shlex.quote(a) for a in sys.argv[1:])
