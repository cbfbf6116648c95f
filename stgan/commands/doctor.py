"""``stgan doctor LOGDIR``: a health report of a run, from its scalars, health log and checkpoints."""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "doctor",
        help="report a run's health: events, trends of losses and metrics, best checkpoint, advice",
        description="Read a run's TensorBoard scalars, health.jsonl and checkpoints (also of "
        "a run still going) and print its health: the events the loop acted on, the health "
        "now (its scalars replayed through the training monitor with the run's own health "
        "settings), the trends of losses, gradient norms and metrics, the best checkpoint by "
        "the selection score, and advice.",
    )
    parser.add_argument("logdir", help="the run directory (the --logdir of stgan train)")
    parser.add_argument("--json", action="store_true", help="print the report as JSON")
    parser.epilog = "Exit status 1 when a config.yaml or checkpoint of the run is broken."
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from stgan.doctor import diagnose, format_report

    report = diagnose(args.logdir)
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return 1 if report["problems"] else 0
