"""``stgan sweep PIPELINE --space KEY=RANGE --logdir DIR``: a hyperparameter search on Optuna."""

from __future__ import annotations

import argparse
from pathlib import Path

from stgan.commands import options


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "sweep",
        help="search hyperparameters (Optuna: TPE or grid, median pruning, resumable)",
        description="Train one run per trial with sampled --set overrides, judge each by its "
        "domain metrics relative to the real-vs-real floor, stop trials that lag the median, "
        "and rank them. The study is kept in --storage (SQLite in --logdir by default): run "
        "the same command again to resume a killed sweep, or on several machines with one "
        "database URL to share the work.",
    )
    parser.add_argument("config", help="pipeline YAML (see pipelines/)")
    parser.add_argument(
        "--space",
        action="append",
        required=True,
        metavar="KEY=RANGE",
        help="a config key and its values: lo:hi (uniform; integers when both bounds are), "
        "lo:hi:log or lo:hi:linear (default log for learning rates and ranges of 100x or "
        "more), or a,b,c (choices); repeatable",
    )
    parser.add_argument("--logdir", required=True, type=Path, help="sweep directory")
    parser.add_argument(
        "--trials",
        type=int,
        help="trials wanted in the study in all, counting earlier runs "
        "(default: every grid point, or 20 for tpe)",
    )
    parser.add_argument("--steps", type=int, help="train.steps of each trial")
    parser.add_argument("--sampler", choices=("tpe", "grid"), default="tpe")
    parser.add_argument(
        "--storage", help="SQLAlchemy database URL (default: sqlite:///LOGDIR/study.db)"
    )
    parser.add_argument("--study", help="study name (default: the pipeline's name)")
    options.add_overrides(
        parser,
        "override a config value in every trial (repeatable)",
    )
    options.add_device(parser)
    parser.add_argument("--seed", type=int, help="seed of the sampler (default: random)")
    parser.add_argument(
        "--heartbeat",
        type=int,
        default=10,
        metavar="SECONDS",
        help="a trial's liveness signal; a trial silent for twice this is retried (default 10)",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from stgan.output_paths import tensorboard_command, writable_dir

    writable_dir(args.logdir, "--logdir")  # before the imports and the work

    import optuna

    from stgan.sweep import SweepSettings, format_table, parse_space, run_sweep, set_line

    optuna.logging.set_verbosity(optuna.logging.ERROR)  # stgan prints its own lines
    settings = SweepSettings(
        pipeline=Path(args.config),
        space=parse_space(args.space),
        logdir=args.logdir,
        trials=args.trials,
        steps=args.steps,
        sampler=args.sampler,
        storage=args.storage,
        study=args.study,
        fixed=tuple(args.overrides),
        device=args.device,
        seed=args.seed,
        heartbeat=args.heartbeat,
    )
    result = run_sweep(settings, notify=print)
    print(f"\nstudy {result.study} in {result.storage}, ranked by each trial's best score")
    print(
        "(Metrics/score: the eval.criterion metrics over their real-vs-real floor; lower is better)"
    )
    print(format_table(result))
    print(f"results: {args.logdir / 'sweep.json'}")
    print(f"HParams dashboard: {tensorboard_command(args.logdir)}")
    best = result.best
    if best is None:
        print("no trial completed; see the errors above")
        return 1
    print(f"best: trial {best.number} (value {best.value:.4g}), train it with:")
    print(f"  {set_line(best.params)}")
    return 0
