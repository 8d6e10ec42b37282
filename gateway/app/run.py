"""``gateway run``: the whole job on one screen (see docs/cli.md)."""

from __future__ import annotations

import argparse
import logging
import sys
from functools import partial

import trio
from rich.console import Console
from rich.logging import RichHandler

from gateway.app.options import add_target_arguments, resolve_plan
from gateway.app.output import LiveOutput, Output, PlainOutput
from gateway.app.session import RunResult, run_session
from gateway.errors import ConfigError

__all__ = [
    "add_output_arguments",
    "add_run_arguments",
    "choose_output",
    "main_run",
    "run_plan_command",
]


def add_output_arguments(parser: argparse.ArgumentParser) -> None:
    """Output options shared by ``run`` and ``record``."""
    add = parser.add_argument
    add("--plain", action="store_true",
        help="print line-oriented logs instead of the live view "
        "(automatic when standard output is not a terminal)")  # fmt: skip
    add("--status-every", type=float, default=1.0, metavar="SECONDS",
        help="plain output: print status lines this often (0: never)")  # fmt: skip
    add("--fps", type=float, default=4.0, help="live view: refreshes per second")
    add("--summary", metavar="FILE", default=None, help="also write the summary as JSON")
    add("--log-level", default="WARNING", help="logging level for the gateway's own logs")


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``run`` options."""
    add_target_arguments(parser)
    add_output_arguments(parser)


def choose_output(args: argparse.Namespace) -> Output:
    """The live view on a terminal, plain lines otherwise or with ``--plain``; sets up
    logging to go where the output does not get in its way."""
    level = args.log_level.upper()
    if args.plain or not sys.stdout.isatty():
        logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s %(message)s")
        return PlainOutput(sys.stdout, args.status_every)
    console = Console()
    # force: a handler set up earlier would write under the live view, not above it
    logging.basicConfig(level=level, format="%(message)s", handlers=[RichHandler(console=console)],
                        force=True)  # fmt: skip
    return LiveOutput(console, args.fps if args.fps > 0 else 4.0)


def run_plan_command(args: argparse.Namespace, **session_options: object) -> RunResult:
    """Resolve the plan and run one session (shared by ``run`` and ``record``).

    Raises `ConfigError` for a bad option or configuration file.
    """
    plan = resolve_plan(args)
    output = choose_output(args)
    return trio.run(partial(run_session, plan, output, summary_path=args.summary,
                            **session_options))  # type: ignore[arg-type]  # fmt: skip


def main_run(args: argparse.Namespace) -> int:
    """``gateway run``: returns the exit status (docs/cli.md): 0 went live and ended at
    ``--duration`` or on a signal, 1 gateway error or ``--duration`` over before it went
    live, 2 bad option or configuration, 130/143 SIGINT/SIGTERM before it went live."""
    from gateway.app.memory import tune_malloc

    tune_malloc()  # a long run's RSS follows what it holds, not its worst burst
    try:
        result = run_plan_command(args)
    except ConfigError as exc:
        print(f"gateway run: {exc}", file=sys.stderr)
        return 2
    return result.exit_code
