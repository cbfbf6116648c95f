"""The ``stgan`` command: argv → configs → calls. The only place that prints errors for users.

Each subcommand lives in ``stgan/commands/<name>.py`` and provides
``add_parser(subparsers)`` (registering its arguments and ``func``) and the
function that runs it. A ``StganError`` becomes one line on stderr and exit 2.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from stgan import __version__
from stgan.errors import StganError

COMMANDS = ("inspect", "train", "generate", "evaluate", "run", "doctor", "sweep")
# Commands that compute: each takes its share of the cores first (stgan.threads).
COMPUTING = ("train", "generate", "evaluate", "run", "sweep")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="stgan",
        description="GANs for gridded spatiotemporal data, judged by domain metrics.",
    )
    parser.add_argument("--version", action="version", version=f"stgan {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        importlib.import_module(f"stgan.commands.{name}").add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command in COMPUTING:
            from stgan import threads

            threads.wait_passively()  # before PyTorch loads OpenMP
            threads.use_threads()
        return int(args.func(args) or 0)
    except StganError as exc:
        _close_progress_bars()
        print(f"stgan: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("stgan: interrupted", file=sys.stderr)
        return 130


def _close_progress_bars() -> None:
    """End a progress bar the error interrupted, so the error is a line of its own."""
    tqdm = sys.modules.get("tqdm")
    for bar in list(getattr(getattr(tqdm, "tqdm", None), "_instances", ())):
        bar.close()


if __name__ == "__main__":
    sys.exit(main())
