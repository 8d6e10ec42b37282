"""``python -m benchmarks COMMAND``: the end-to-end benchmarks, and the micro-benchmarks.

End to end (each writes ``<out>/<command>.json`` and ``<out>/<command>.png``):

- ``latency``: the simulator (own process) at a fixed rate with µs event times; latency
  percentiles per symbol and overall, achieved rate, drops, CPU.
- ``throughput``: frames/s through the gateway against a bare trio-websocket loop on
  the same loopback feed, for 1/10/100/1000 symbols, interleaved rounds.
- ``soak``: a long steady run sampling RSS, event-loop lag, latency and counters.
- ``lossless``: every fault the embedded exchange can inject, in MockClock time; judges
  that every event arrives once and in order (or in a GapUnfilled) and every crossed stop
  fires once. Exits 1 when an invariant is broken.
- ``cluster``: events/s to a remote consumer through Redis Streams with 1 and 2 worker
  processes next to the single-process gateway, and latency to that consumer.

Micro-benchmarks (their own options, passed through): ``decode``, ``mailbox``,
``latency-recorder``, ``core-hot-paths`` (also runnable as ``python -m benchmarks.decode``
and so on).

``--quick`` shrinks any end-to-end command to a run of well under 30 seconds.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from pathlib import Path
from types import ModuleType

_END_TO_END = ("latency", "throughput", "soak", "lossless", "cluster")
_MICRO = {
    "decode": "benchmarks.decode",
    "mailbox": "benchmarks.mailbox",
    "latency-recorder": "benchmarks.latency_recorder",
    "core-hot-paths": "benchmarks.core_hot_paths",
}


def _module(command: str) -> ModuleType:
    return importlib.import_module(f"benchmarks.{command}")


def build_parser() -> argparse.ArgumentParser:
    """The parser: one subcommand per end-to-end benchmark."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description=__doc__.splitlines()[0] if __doc__ else None,
        epilog="micro-benchmarks: " + ", ".join(_MICRO) + " (options passed through)",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in _END_TO_END:
        module = _module(name)
        doc = (module.__doc__ or "").strip().splitlines()[0]
        sub = commands.add_parser(name, help=doc, description=module.__doc__,
                                  formatter_class=argparse.RawDescriptionHelpFormatter)  # fmt: skip
        module.add_arguments(sub)
        sub.add_argument("--quick", action="store_true", help="a run of well under 30 s")
        sub.add_argument("--out", type=Path, default=Path("benchmarks/results"),
                         help="directory for the JSON and PNG (default %(default)s)")  # fmt: skip
    return parser


def main(argv: list[str] | None = None) -> int:
    """Dispatch to a benchmark; returns the exit status."""
    argv = sys.argv[1:] if argv is None else argv
    if argv and argv[0] in _MICRO:
        module = importlib.import_module(_MICRO[argv[0]])
        sys.argv = [f"python -m {_MICRO[argv[0]]}", *argv[1:]]
        result = module.main()
        return result if isinstance(result, int) else 0
    args = build_parser().parse_args(argv)
    module = _module(args.command)
    if args.quick:
        module.quick(args)
    result = module.main(args)
    return result if isinstance(result, int) else 0


if __name__ == "__main__":
    sys.exit(main())
