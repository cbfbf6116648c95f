"""``stgan run PIPELINE.yaml``: train → generate → evaluate → report, resumable."""

from __future__ import annotations

import argparse
from pathlib import Path

from stgan.commands import options


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "run",
        help="the whole pipeline: train, generate, evaluate against the test split, report",
        description="Train the pipeline's GAN, generate synthetic sequences to NetCDF, compare "
        "them with the real test split (with the floor and simple baselines) and report. "
        "Finished stages are skipped; a killed run resumes where it stopped.",
    )
    parser.add_argument(
        "config", help="pipeline YAML (see pipelines/), or a data spec to derive one from"
    )
    parser.add_argument(
        "--logdir",
        type=Path,
        help="run directory (default: runs/<pipeline name>, or runs/<spec name> for a spec)",
    )
    options.add_device(parser)
    parser.add_argument(
        "--force", action="store_true", help="delete earlier outputs in --logdir and run all stages"
    )
    parser.add_argument(
        "--figures", type=Path, help="where the evaluation PNGs go (default: LOGDIR/figures)"
    )
    parser.add_argument("--profile", help="apply a named profile of the pipeline (e.g. gpu)")
    options.add_overrides(
        parser,
        "override a config value, e.g. --set train.steps=100 (repeatable)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the pipeline (for a data spec: the derived one, to save and edit) and exit",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from stgan.pipeline import run_pipeline
    from stgan.recipe import dry_run_yaml
    from stgan.training.config import load_pipeline

    if not args.dry_run:
        check_outputs(args.logdir, args.figures)
    config = load_pipeline(args.config, tuple(args.overrides), args.profile)
    if args.dry_run:
        print(dry_run_yaml(args.config, config, tuple(args.overrides), args.profile), end="")
        return 0
    logdir = check_outputs(args.logdir or Path("runs") / config.name, args.figures)
    run_pipeline(config, logdir, device=args.device, force=args.force, figures=args.figures)
    return 0


def check_outputs(logdir: Path | None, figures: Path | None) -> Path | None:
    """``--logdir`` and ``--figures`` can be written (each when given); returns ``logdir``."""
    from stgan.output_paths import writable_dir

    if figures is not None:
        writable_dir(figures, "--figures")
    return None if logdir is None else writable_dir(logdir, "--logdir")
