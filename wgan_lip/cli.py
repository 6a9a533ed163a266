"""The ``wgan-lip`` command.

Subcommands arrive with their issues (``w1``, ``fit``/``validate``/``test``, ``certify``);
this entry point already gives ``--version``, help, and a clear error with exit code 2 for
anything it does not know.
"""

from __future__ import annotations

import argparse
import sys

from . import __version__


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="wgan-lip",
        description="Certified 1-Lipschitz networks: W1 estimation, WGANs, robust classifiers.",
    )
    parser.add_argument("--version", action="version", version=f"wgan-lip {__version__}")
    parser.add_subparsers(dest="command", metavar="COMMAND")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the command line; returns the process exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)  # unknown commands exit 2 with a one-line message
    if args.command is None:
        parser.print_help()
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
