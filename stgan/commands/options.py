"""Options several commands share, defined once so they mean the same everywhere."""

from __future__ import annotations

import argparse


def add_device(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="auto", help="auto (CUDA when present), cpu or cuda")


def add_overrides(parser: argparse.ArgumentParser, help: str) -> None:
    """Repeatable ``--set KEY=VALUE`` into ``args.overrides``."""
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE", help=help
    )
