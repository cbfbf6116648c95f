"""``stgan train CONFIG --logdir DIR``: train a GAN from a pipeline YAML."""

from __future__ import annotations

import argparse
from pathlib import Path

from stgan.commands import options


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "train",
        help="train a GAN from a pipeline YAML (checkpoints and TensorBoard logs in --logdir)",
        description="Train G and D as a pipeline YAML says. Writes the resolved config, the "
        "transforms, checkpoints and TensorBoard events into --logdir. Under torchrun, "
        "each process trains on its share of the data (DDP).",
    )
    parser.add_argument(
        "config", help="pipeline YAML (see pipelines/), or a data spec to derive one from"
    )
    parser.add_argument("--logdir", required=True, type=Path, help="run directory")
    parser.add_argument(
        "--resume", action="store_true", help="continue from the newest valid checkpoint"
    )
    options.add_device(parser)
    parser.add_argument(
        "--max-steps", type=int, help="stop after this many steps (a checkpoint is written)"
    )
    options.add_overrides(
        parser,
        "override a config value, e.g. --set optim.lr_g=2e-4 (repeatable)",
    )
    parser.add_argument(
        "--profile", help="apply a named profile of the pipeline (e.g. gpu) before --set"
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the resolved config (for a data spec: the derived pipeline) and exit",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from stgan.errors import StganError
    from stgan.output_paths import tensorboard_command, writable_dir
    from stgan.recipe import dry_run_yaml
    from stgan.training.config import load_pipeline

    if not args.dry_run:
        writable_dir(args.logdir, "--logdir")
    config = load_pipeline(args.config, tuple(args.overrides), args.profile)
    if args.dry_run:
        print(dry_run_yaml(args.config, config, tuple(args.overrides), args.profile), end="")
        return 0
    if args.max_steps is not None and args.max_steps < 1:
        raise StganError(f"--max-steps: {args.max_steps} must be >= 1")
    from stgan.training.loop import train

    stats = train(
        config, args.logdir, device=args.device, resume=args.resume, max_steps=args.max_steps
    )
    if stats:
        print(
            f"done: step logs and checkpoints in {args.logdir}; "
            f"view with: {tensorboard_command(args.logdir)}"
        )
    return 0
