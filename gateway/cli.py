"""Command line entry point: ``gateway run | record | replay | simulate | soak | cluster |
tail``.

A small dispatcher: each command's options and behaviour live in its own module
(`gateway.app.run`, `gateway.app.record`, `gateway.app.replay`,
`gateway.simulator.cli`), imported only when that command runs.
"""

from __future__ import annotations

import argparse
import sys

from gateway._version import __version__


class _Defaults(argparse.ArgumentDefaultsHelpFormatter):
    """Shows each option's default (``none`` when unset, ``required`` when it must be
    given), unless its help already says it; flags are off unless given."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        text = action.help or ""
        if "default" in text or action.nargs == 0 or not action.option_strings:
            return text
        if action.required:
            return f"{text} (required)"
        if action.default is None or action.default == []:
            return f"{text} (default: none)"
        return super()._get_help_string(action)


class _RawDefaults(_Defaults, argparse.RawTextHelpFormatter):
    """Defaults shown, line breaks kept (the simulate command lists its commands)."""


def build_parser() -> argparse.ArgumentParser:
    """The ``gateway`` parser with one subparser per command."""
    from gateway.app.record import add_record_arguments
    from gateway.app.replay import add_replay_arguments
    from gateway.app.run import add_run_arguments
    from gateway.simulator.cli import add_simulate_arguments

    parser = argparse.ArgumentParser(
        prog="gateway",
        description="Binance market gateway: many symbols, candles, stop-losses, on trio.",
        epilog="'gateway COMMAND --help' shows a command's options. "
        "New here? Try 'gateway run': the whole job on the embedded exchange.",
    )
    parser.add_argument("-V", "--version", action="version", version=f"gateway {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    run = commands.add_parser(
        "run", formatter_class=_Defaults,
        help="stream symbols through the gateway with a live view (embedded exchange by default)",
        description="Run the gateway: the embedded exchange on loopback by default, a real "
        "endpoint with --url/--exchange/--testnet. Ctrl-C or --duration ends it with a summary.",
    )  # fmt: skip
    add_run_arguments(run)
    record = commands.add_parser(
        "record", formatter_class=_Defaults,
        help="run the gateway and write every received frame to a recording file",
        description="Record every frame received (binance-recorded line format; gzip when "
        "FILE ends in .gz; rotated by size into FILE, FILE.1, ...). Takes every 'run' option.",
    )  # fmt: skip
    add_record_arguments(record)
    replay = commands.add_parser(
        "replay", formatter_class=_Defaults,
        help="serve a recording through the embedded exchange as if it were live",
        description="Serve recorded frames on loopback (combined /stream endpoint, SUBSCRIBE "
        "works) at the original pace or scaled; connect with 'gateway run --url ...'.",
    )  # fmt: skip
    add_replay_arguments(replay)
    simulate = commands.add_parser(
        "simulate", formatter_class=_RawDefaults,
        help="serve the embedded Binance-compatible exchange on loopback",
    )  # fmt: skip
    add_simulate_arguments(simulate)
    from gateway.app.soak import add_soak_arguments

    soak = commands.add_parser(
        "soak", formatter_class=_Defaults,
        help="a long run against the embedded exchange, judged against its own ledger",
        description="Soak: the embedded exchange in its own process, the gateway in this one; "
        "with --chaos every fault on a seeded schedule. Checks from the exchange's ledger "
        "that no event is lost, doubled or reordered and every crossed stop fires once; "
        "prints a table, writes --summary, exits 1 on a broken invariant.",
    )  # fmt: skip
    add_soak_arguments(soak)
    from gateway.app.cluster_cli import add_cluster_arguments, add_tail_arguments

    cluster = commands.add_parser(
        "cluster", formatter_class=_Defaults,
        help="N worker processes, each a gateway for its share, publishing to Redis Streams",
        description="Run N gateway workers (rendezvous-hashed symbols, restarted when they "
        "die) publishing every event to Redis Streams, read back by a checking consumer. "
        "A private redis-server and the embedded exchange unless --redis-url / --url.",
    )  # fmt: skip
    add_cluster_arguments(cluster)
    tail = commands.add_parser(
        "tail", formatter_class=_Defaults,
        help="print the live remote feed of a cluster from Redis Streams",
        description="Read chosen symbols and kinds from a cluster's Redis and print each event.",
    )  # fmt: skip
    add_tail_arguments(tail)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and run the chosen command; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    try:
        return _dispatch(parser, args)
    except KeyboardInterrupt:  # Ctrl-C outside a run's own signal handling (start-up)
        print("interrupted", file=sys.stderr)
        return 130


def _dispatch(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if args.command == "run":
        from gateway.app.run import main_run

        return main_run(args)
    if args.command == "record":
        from gateway.app.record import main_record

        return main_record(args)
    if args.command == "replay":
        from gateway.app.replay import main_replay

        return main_replay(args)
    if args.command == "simulate":
        from gateway.simulator.cli import run_simulate

        return run_simulate(args)
    if args.command == "soak":
        from gateway.app.soak import main_soak

        return main_soak(args)
    if args.command in ("cluster", "tail"):
        from gateway.app import cluster_cli

        return cluster_cli.main_cluster(args) if args.command == "cluster" else (
            cluster_cli.main_tail(args))
    parser.print_help()
    return 0
