"""Decode benchmark: per event kind, the codec's cost next to a bare ``orjson.loads``.

Both are timed in the same run, interleaved round by round, so the ratio holds on a
noisy machine. Run: ``python -m benchmarks.decode [--rounds 5] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from collections.abc import Callable

import orjson

from gateway.core.codec import decode_frame
from tests import test_codec as examples
from tests.recorded_data import raw_frames


def _wrap(stream: str, payload: str) -> str:
    return f'{{"stream":"{stream}","data":{payload}}}'


def _frames() -> dict[str, str]:
    depth20 = (
        '{"lastUpdateId":81234567890,"bids":['
        + ",".join(f'["{94240 - i / 100:.8f}","{1 + i / 10:.8f}"]' for i in range(20))
        + '],"asks":['
        + ",".join(f'["{94241 + i / 100:.8f}","{1 + i / 10:.8f}"]' for i in range(20))
        + "]}"
    )
    recorded_depth = next(f for _, f in raw_frames("2021-08-14") if "@depth" in f)
    return {
        "trade": _wrap("btcusdt@trade", examples.TRADE),
        "aggTrade": _wrap("btcusdt@aggTrade", examples.AGG_TRADE),
        "kline": _wrap("btcusdt@kline_1m", examples.KLINE),
        "24hrTicker": _wrap("btcusdt@ticker", examples.TICKER),
        "miniTicker": _wrap("btcusdt@miniTicker", examples.MINI_TICKER),
        "bookTicker": _wrap("btcusdt@bookTicker", examples.BOOK_TICKER),
        "depth20 (partial)": _wrap("btcusdt@depth20@100ms", depth20),
        "depthUpdate (recorded)": recorded_depth,
    }


def _per_call_ns(fn: Callable[[], object], number: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(number):
        fn()
    return (time.perf_counter_ns() - start) / number


def measure(rounds: int = 5, number: int = 20_000) -> list[dict[str, object]]:
    """Median ns per frame of bare ``orjson.loads`` and of ``decode_frame``, per kind."""
    rows = []
    for kind, frame in _frames().items():
        data = frame.encode()
        bare: list[float] = []
        codec: list[float] = []
        for _ in range(rounds):
            bare.append(_per_call_ns(lambda d=data: orjson.loads(d), number))
            codec.append(_per_call_ns(lambda d=data: decode_frame(d, 1), number))
        b, c = statistics.median(bare), statistics.median(codec)
        rows.append(
            {
                "kind": kind,
                "bytes": len(data),
                "orjson_loads_ns": round(b),
                "decode_ns": round(c),
                "ratio": round(c / b, 2),
                "spread_pct": round(100 * (max(codec) - min(codec)) / c, 1),
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Print the table (and optionally write JSON)."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.decode", description=__doc__)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--number", type=int, default=20_000, help="calls per round")
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args(argv)
    rows = measure(args.rounds, args.number)
    print(f"{'kind':<24}{'bytes':>6}{'orjson ns':>11}{'decode ns':>11}{'ratio':>7}{'spread':>8}")
    for r in rows:
        print(
            f"{r['kind']:<24}{r['bytes']:>6}{r['orjson_loads_ns']:>11}{r['decode_ns']:>11}"
            f"{r['ratio']:>6}x{r['spread_pct']:>7}%"
        )
    if args.json:
        meta = {"python": platform.python_version(), "machine": platform.machine()}
        with open(args.json, "w") as fh:
            json.dump({"benchmark": "decode", "machine": meta, "rows": rows}, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
