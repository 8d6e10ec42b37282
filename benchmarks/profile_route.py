"""Where a trade frame's time goes inside the gateway, by function: cProfile of
`Router.route` (decode, the symbol's runtime and machine, publish) on rendered trade
frames, with no socket in the way, so the shares are the gateway's own work.

Run: ``python -m benchmarks.profile_route [--frames 200000] [--symbols 100]
[--no-subscriber] [--recorded] [--top 14]``. ``--recorded``: the real recordings looped
over the symbols (`benchmarks.recorded_feed`: depth diffs, book tickers, klines,
aggregate trades) instead of trade frames. Every symbol has an armed stop that never fires; by
default one catch-all subscriber takes every event (drained between batches). cProfile
adds a cost per call, so read the shares, not the absolute times (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import cProfile
import io
import pstats
import sys
import time

import orjson
import trio

from benchmarks.harness import symbol_names
from benchmarks.recorded_feed import Recorded
from gateway.core.positions import Position, Side
from gateway.runtime.publish import Publisher
from gateway.runtime.router import Router
from gateway.runtime.symbol import SymbolRuntime

_DRAIN_EVERY = 10_000  # frames between drains of the subscriber (its bound is above it)


def _frames(symbols: list[str], count: int) -> list[str]:
    """``count`` combined trade frames, round-robin over ``symbols``, ids consecutive."""
    out = []
    for i in range(count):
        s = symbols[i % len(symbols)]
        out.append(orjson.dumps({"stream": f"{s.lower()}@trade", "data": {
            "e": "trade", "E": 1_767_225_600_000 + i, "s": s, "t": i // len(symbols) + 1,
            "p": "99.50000000", "q": "0.01000000", "T": 1_767_225_600_000 + i, "m": False,
            "M": True}}).decode())  # fmt: skip
    return out


def _recorded(symbols: list[str], count: int) -> list[str]:
    """``count`` frames of the recordings over ``symbols``, as `recorded_feed` serves them."""
    feed = Recorded([s.lower() for s in symbols], count, 1_767_225_600_000_000, micros=True)
    return [feed.text(i, 0).decode() for i in range(len(feed))]


async def profile(frames: int, symbols: int, subscriber: bool, top: int,
                  recorded: bool = False) -> str:  # fmt: skip
    """Route ``frames`` frames under cProfile; the stats table, by own time."""
    publisher, router = Publisher(), Router()
    sub = publisher.subscribe(bound=2 * _DRAIN_EVERY) if subscriber else None
    names = symbol_names(symbols)
    for name in names:
        state = SymbolRuntime(name, publisher, request_backfill=lambda _r: True,
                              request_close=lambda _r: None, hold_max_events=100)  # fmt: skip
        state.live = True
        state.clock = trio.lowlevel.current_clock().current_time
        state.machine.open_position(Position("p", name, Side.LONG, 100.0, 1.0,
                                             stop_price=1e-12))  # fmt: skip
        router.attach(state)
    rendered = _recorded(names, frames) if recorded else _frames(names, frames)
    route, now = router.route, time.time_ns()
    prof = cProfile.Profile()
    for start in range(0, len(rendered), _DRAIN_EVERY):
        prof.enable()
        for frame in rendered[start:start + _DRAIN_EVERY]:
            route(frame, now)
        prof.disable()
        if sub is not None and len(sub):
            sub.drain_nowait(len(sub))
    text = io.StringIO()
    pstats.Stats(prof, stream=text).sort_stats("tottime").print_stats(top)
    return text.getvalue()


def main(argv: list[str] | None = None) -> int:
    """Command-line entry point."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--frames", type=int, default=200_000)
    parser.add_argument("--symbols", type=int, default=100)
    parser.add_argument("--no-subscriber", dest="subscriber", action="store_false")
    parser.add_argument("--top", type=int, default=14, help="functions listed")
    parser.add_argument("--recorded", action="store_true", help="the real recordings looped")
    args = parser.parse_args(argv)
    print(trio.run(profile, args.frames, args.symbols, args.subscriber, args.top,
                   args.recorded))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
