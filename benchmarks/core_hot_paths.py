"""Per-call cost of the sans-I/O core's hot-path methods.

Run: ``python -m benchmarks.core_hot_paths [--n 200000] [--rounds 5]``. Each
round also times a do-nothing method call (the baseline any call pays); the
rounds are interleaved and medians printed, with the net cost above baseline.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from typing import Any

from gateway.core.candles import CandleBuffer
from gateway.core.events import Kline
from gateway.core.latency import LatencyRecorder
from gateway.core.sequence import SequenceTracker
from gateway.core.stop_loss import Position, Side, StopLossBook


class _Noop:
    __slots__ = ()

    def call(self, value: object) -> None:
        pass


def _per_call(fn: Callable[[Any], object], args: list[Any]) -> float:
    start = time.perf_counter_ns()
    for a in args:
        fn(a)
    return (time.perf_counter_ns() - start) / len(args)


Case = tuple[Callable[[], Callable[[Any], object]], list[Any]]


def _cases(n: int) -> dict[str, Case]:
    t0 = 1_767_225_600_000
    klines = [
        Kline("BTCUSDT", "1m", t0, t0 + 59_999, 1.0, 2.0, 0.5, 1.5 + i * 1e-6, 1.0, 1.0, 0.5,
              0.5, i, 0, i, False, t0 + i)
        for i in range(n)
    ]  # fmt: skip
    prices = [100.0 + (i % 100) * 0.01 for i in range(n)]
    ids = list(range(n))
    latencies = [60_000 + i for i in range(n)]

    def stop_book() -> Callable[[Any], object]:
        book = StopLossBook("BTCUSDT")
        for i in range(50):  # 50 positions, none near the price
            side = Side.LONG if i % 2 else Side.SHORT
            book.open(Position(f"p{i}", "BTCUSDT", side, 100.0, 1.0, stop_pct=0.05))
        return lambda p: book.check(p, 0.0)  # the lambda adds one call (~25 ns)

    return {
        "baseline (no-op method)": (lambda: _Noop().call, ids),
        "CandleBuffer.apply (open update)": (lambda: CandleBuffer("1m").apply, klines),
        "StopLossBook.check (50 armed, no crossing)": (stop_book, prices),
        "SequenceTracker.observe (next id)": (lambda: SequenceTracker().observe, ids),
        "LatencyRecorder.record": (lambda: LatencyRecorder().record, latencies),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=200_000, help="calls per round")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    cases = _cases(args.n)
    results: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, (make, values) in cases.items():
            results[name].append(_per_call(make(), values))
    med = {name: statistics.median(v) for name, v in results.items()}
    base = med["baseline (no-op method)"]
    print(f"calls per round: {args.n}, rounds: {args.rounds} (median ns per call)")
    for name, value in med.items():
        print(f"  {name:<44} {value:7.1f} ns   net {value - base:6.1f} ns")


if __name__ == "__main__":
    main()
