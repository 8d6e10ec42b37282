"""The soak's options: `SoakParams`, and the ``soak`` command-line flags that fill it
(shared by ``gateway soak`` and ``python -m benchmarks soak``)."""

from __future__ import annotations

import argparse

import attrs

from gateway.app.chaos_faults import EXTRA_KINDS, KINDS

__all__ = ["SoakParams", "add_soak_arguments", "params_of"]


@attrs.frozen(slots=True, kw_only=True)
class SoakParams:
    """One run's options (see ``gateway soak --help``)."""

    duration: float = 300.0  #: seconds in all: warm-up + faulted phase + drain
    seed: int = 1
    symbols: int = 10
    rate: float = 1000.0  #: trades per second, all symbols together
    chaos: bool = False
    faults: int = 0  #: 0: one every 8 s of the faulted phase (at least every kind once)
    quiet: float = 10.0  #: seconds before the first fault
    #: RSS growth is measured from this time on: faults run during the warm-up, so that
    #: what the worst backlogs need (held trades, a subscriber's burst) is already
    #: allocated, and growth after it means a leak
    warmup: float = 60.0
    drain: float = 30.0
    settle: float = 120.0
    interval: float = 5.0  #: seconds between samples
    crossers: int = 3  #: crossed stops per side and symbol
    big_gap: int = 25_000  #: the most ids a large gap drops
    clock: str = "real"  #: "real" (exchange in its own process) or "mock" (one process)
    max_rss_growth: float = 5.0  #: percent after warm-up (judged on runs of 5 min or more)
    #: "tuned": glibc returns large freed buffers to the OS (`gateway.app.memory`), as
    #: ``gateway run`` does; "default": the allocator as the process found it
    malloc: str = "tuned"
    kinds: tuple[str, ...] = KINDS  #: the fault kinds drawn (each at least once)
    #: the gateway's ``hold_max_seconds`` (None: its default): how long live trades after
    #: a gap wait, in order, for the backfill before the gap ends unfilled
    hold_seconds: float | None = None
    summary: str | None = None

    @property
    def fault_count(self) -> int:
        """The faults to inject (0 without ``--chaos``)."""
        if not self.chaos:
            return 0
        span = self.duration - self.quiet - self.drain
        return max(len(self.kinds), self.faults or int(span / 8))


def add_soak_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``soak`` options (shared by ``gateway soak`` and ``python -m benchmarks soak``)."""
    d = SoakParams()
    add = parser.add_argument
    add("--chaos", action="store_true", help="inject every fault kind on a seeded schedule")
    add("--duration", type=float, default=d.duration, help="seconds in all")
    add("--seed", type=int, default=d.seed, help="seed of the market, the faults and the stops")
    add("--symbols", type=int, default=d.symbols, help="how many symbols")
    add("--rate", type=float, default=d.rate, help="trades per second, all symbols")
    add("--faults", type=int, default=d.faults,
        help=f"faults to inject (0: one per 8 s; at least {len(KINDS)})")  # fmt: skip
    add("--quiet", type=float, default=d.quiet, help="seconds before the first fault")
    add("--warmup", type=float, default=d.warmup,
        help="seconds (faults included) before RSS growth is measured")  # fmt: skip
    add("--drain", type=float, default=d.drain, help="seconds without faults at the end")
    add("--settle", type=float, default=d.settle, help="at most this long for the last ids")
    add("--interval", type=float, default=d.interval, help="seconds between samples")
    add("--crossers", type=int, default=d.crossers, help="crossed stops per side and symbol")
    add("--big-gap", type=int, default=d.big_gap, help="the most ids one large gap drops")
    add("--clock", choices=("real", "mock"), default=d.clock,
        help="real: exchange in its own process; mock: one process under MockClock")  # fmt: skip
    add("--max-rss-growth", type=float, default=d.max_rss_growth,
        help="percent RSS growth allowed after warm-up (runs of 5 min or more)")  # fmt: skip
    add("--malloc", choices=("tuned", "default"), default=d.malloc,
        help="tuned: large freed buffers go back to the OS, as in gateway run; default: the "
             "C library's own settings (default %(default)s)")  # fmt: skip
    add("--hold-seconds", type=float, default=None,
        help="the gateway's hold_max_seconds (default: the gateway's own, 10 s)")  # fmt: skip
    add("--kinds", default=",".join(d.kinds), metavar="KIND,...",
        help=f"the fault kinds to draw from (default: every kind, {', '.join(d.kinds)}; "
             f"also: {', '.join(EXTRA_KINDS)})")  # fmt: skip
    add("--summary", metavar="FILE", default=None, help="write the summary JSON here")


def params_of(args: argparse.Namespace) -> SoakParams:
    """`SoakParams` from parsed options."""
    return SoakParams(
        duration=args.duration, seed=args.seed, symbols=args.symbols, rate=args.rate,
        chaos=args.chaos, faults=args.faults, quiet=args.quiet, warmup=args.warmup,
        drain=args.drain,
        settle=args.settle, interval=args.interval, crossers=args.crossers,
        big_gap=args.big_gap, clock=args.clock, max_rss_growth=args.max_rss_growth,
        malloc=args.malloc, kinds=tuple(k for k in args.kinds.replace(" ", "").split(",") if k),
        hold_seconds=args.hold_seconds,
        summary=args.summary,
    )  # fmt: skip
