"""``stgan inspect SPEC``: what a data spec selects, checked against its files."""

from __future__ import annotations

import argparse
import json


def add_parser(subparsers) -> None:
    parser = subparsers.add_parser(
        "inspect",
        help="summarize a data spec: dims, time axis, gaps, train statistics, windows",
        description="Validate a data spec against its files and summarize it: dims and sizes, "
        "time range, step, calendar, gaps, per-variable statistics on the train split "
        "(streamed with dask), windows per split and bytes per window and epoch.",
    )
    parser.add_argument("spec", help="data spec YAML file (see data_specs/)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from stgan.data import load_spec, prepare
    from stgan.data.summary import format_summary, summarize

    summary = summarize(prepare(load_spec(args.spec)))
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0
