"""Command line entry point: `gateway` (simulate; run / record / replay to come)."""

from __future__ import annotations

import argparse
import sys

from gateway._version import __version__


def build_parser() -> argparse.ArgumentParser:
    """The ``gateway`` parser with one subparser per command."""
    from gateway.simulator.cli import add_simulate_arguments

    parser = argparse.ArgumentParser(prog="gateway", description="Binance market gateway")
    parser.add_argument("-V", "--version", action="version", version=f"gateway {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    simulate = commands.add_parser(
        "simulate",
        help="serve the embedded Binance-compatible exchange on loopback",
        formatter_class=argparse.RawTextHelpFormatter,
    )
    add_simulate_arguments(simulate)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    if args.command == "simulate":
        from gateway.simulator.cli import run_simulate

        return run_simulate(args)
    print(f"gateway {__version__}")
    return 0
