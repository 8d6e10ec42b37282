"""Decode benchmark: per event kind, the codec's cost next to a bare ``orjson.loads``, and
the cost of its number validation next to the same decode without it.

"Unchecked" is `decode_frame` with the builders it had before decimal strings were
validated (plain ``float()`` of each field, kept below); "decode" is the codec as it is.
All three are timed in the same run, interleaved round by round (each first in turn),
so the ratios hold on a noisy machine. The validation cost is the median over rounds of
(decode - unchecked) / unchecked, with its interquartile range and its range over the
rounds as the noise. For trade and aggTrade, whose text frames take the msgspec path
(`gateway.core.codec_wire`), that column compares it, checks included, with the unchecked
dict path: it is negative.
Run: ``python -m benchmarks.decode [--rounds 21] [--number 5000] [--json out.json]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import statistics
from collections.abc import Iterator
from typing import Any

import orjson

from benchmarks.harness import per_call_ns
from gateway.core import codec
from gateway.core.codec import decode_frame
from gateway.core.events import (
    AggTrade,
    BookTicker,
    DepthUpdate,
    Kline,
    Level,
    MiniTicker,
    PartialDepth,
    Ticker,
    Trade,
)
from tests import test_codec as examples
from tests.recorded_data import raw_frames

_ints, _str, _bool, _Invalid = codec._ints, codec._str, codec._bool, codec._Invalid


# The builders before validation (gateway/core/codec.py at 3d13ce5): the baseline.
def _levels(rows: object) -> tuple[Level, ...]:
    if type(rows) is not list:
        raise _Invalid(f"expected a list of [price, quantity], got {rows!r}")
    out = []
    for row in rows:
        if type(row) is not list or len(row) < 2:
            raise _Invalid(f"expected [price, quantity], got {row!r}")
        out.append((float(row[0]), float(row[1])))
    return tuple(out)


def _trade(d: dict[str, Any], rns: int, stream: str | None) -> Trade:
    t, tt, et, m = d["t"], d["T"], d["E"], d["m"]
    if type(t) is not int or type(tt) is not int or type(et) is not int or type(m) is not bool:
        raise _Invalid("trade ids, times and flag must be integers and a boolean")
    return Trade(_str(d["s"]), t, float(d["p"]), float(d["q"]), tt, m, et, rns)


def _agg_trade(d: dict[str, Any], rns: int, stream: str | None) -> AggTrade:
    a, f, last, tt, et, m = d["a"], d["f"], d["l"], d["T"], d["E"], d["m"]
    _ints(a, f, last, tt, et)
    return AggTrade(_str(d["s"]), a, float(d["p"]), float(d["q"]), f, last, tt, _bool(m), et, rns)


def _kline(d: dict[str, Any], rns: int, stream: str | None) -> Kline:
    k = d["k"]
    if type(k) is not dict:
        raise _Invalid("kline payload 'k' must be an object")
    t, tc, n, f, last, et = k["t"], k["T"], k["n"], k["f"], k["L"], d["E"]
    _ints(t, tc, n, f, last, et)
    return Kline(
        _str(d["s"]), _str(k["i"]), t, tc,
        float(k["o"]), float(k["h"]), float(k["l"]), float(k["c"]),
        float(k["v"]), float(k["q"]), float(k["V"]), float(k["Q"]),
        n, f, last, _bool(k["x"]), et, rns,
    )  # fmt: skip


def _ticker(d: dict[str, Any], rns: int, stream: str | None) -> Ticker:
    o_t, c_t, first, last, n, et = d["O"], d["C"], d["F"], d["L"], d["n"], d["E"]
    _ints(o_t, c_t, first, last, n, et)
    return Ticker(
        _str(d["s"]), float(d["p"]), float(d["P"]), float(d["w"]), float(d["x"]),
        float(d["c"]), float(d["Q"]), float(d["b"]), float(d["B"]), float(d["a"]),
        float(d["A"]), float(d["o"]), float(d["h"]), float(d["l"]), float(d["v"]),
        float(d["q"]), o_t, c_t, first, last, n, et, rns,
    )  # fmt: skip


def _mini_ticker(d: dict[str, Any], rns: int, stream: str | None) -> MiniTicker:
    et = d["E"]
    _ints(et)
    return MiniTicker(
        _str(d["s"]), float(d["c"]), float(d["o"]), float(d["h"]), float(d["l"]),
        float(d["v"]), float(d["q"]), et, rns,
    )  # fmt: skip


def _depth_update(d: dict[str, Any], rns: int, stream: str | None) -> DepthUpdate:
    first, final, et = d["U"], d["u"], d["E"]
    _ints(first, final, et)
    return DepthUpdate(_str(d["s"]), first, final, _levels(d["b"]), _levels(d["a"]), et, rns)


def _book_ticker(d: dict[str, Any], rns: int, stream: str | None) -> BookTicker:
    u, et = d["u"], d.get("E")
    _ints(u)
    if et is not None:
        _ints(et)
    return BookTicker(
        _str(d["s"]), u, float(d["b"]), float(d["B"]), float(d["a"]), float(d["A"]), et, rns
    )


def _partial_depth(d: dict[str, Any], rns: int, stream: str | None) -> PartialDepth:
    last = d["lastUpdateId"]
    _ints(last)
    bids, asks = _levels(d["bids"]), _levels(d["asks"])
    symbol, levels = codec._depth_stream_info(stream) if stream else ("", max(len(bids), len(asks)))
    return PartialDepth(symbol, levels, last, bids, asks, None, rns)


_UNCHECKED_BY_EVENT = {
    **codec._BY_EVENT,
    "trade": _trade,
    "aggTrade": _agg_trade,
    "kline": _kline,
    "24hrTicker": _ticker,
    "24hrMiniTicker": _mini_ticker,
    "depthUpdate": _depth_update,
}


@contextlib.contextmanager
def unchecked() -> Iterator[None]:
    """Within this block `decode_frame` runs the builders without number validation (and
    without the msgspec path for trades, `codec_wire`: the baseline is the dict path of
    before the checks)."""
    saved = codec._BY_EVENT, codec._book_ticker, codec._partial_depth, codec._fast_event
    codec._BY_EVENT = _UNCHECKED_BY_EVENT
    codec._book_ticker, codec._partial_depth = _book_ticker, _partial_depth
    codec._fast_event = lambda frame, receive_ns: None
    try:
        yield
    finally:
        codec._BY_EVENT, codec._book_ticker, codec._partial_depth, codec._fast_event = saved


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


def _time(name: str, data: bytes, number: int) -> float:
    if name == "bare":
        return per_call_ns(lambda: orjson.loads(data), number)
    if name == "old":
        with unchecked():
            return per_call_ns(lambda: decode_frame(data, 1), number)
    return per_call_ns(lambda: decode_frame(data, 1), number)


def _quartiles(values: list[float]) -> tuple[float, float]:
    q = statistics.quantiles(values, n=4)
    return q[0], q[2]


def measure(rounds: int = 21, number: int = 5_000) -> list[dict[str, Any]]:
    """Per kind, medians (ns per frame) of ``orjson.loads``, unchecked decode and decode."""
    rows = []
    for kind, frame in _frames().items():
        data = frame.encode()
        with unchecked():
            baseline_event = decode_frame(data, 1)
        assert decode_frame(data, 1) == baseline_event, kind  # same events, same work
        times: dict[str, list[float]] = {"bare": [], "old": [], "new": []}
        order = list(times)
        for i in range(rounds):
            for name in order[i % 3 :] + order[: i % 3]:  # each one first in turn
                times[name].append(_time(name, data, number))
        bare, old, new = times["bare"], times["old"], times["new"]
        cost = [100 * (n - o) / o for n, o in zip(new, old, strict=True)]
        b, o, c = statistics.median(bare), statistics.median(old), statistics.median(new)
        q1, q3 = _quartiles(cost)
        rows.append(
            {
                "kind": kind,
                "bytes": len(data),
                "orjson_loads_ns": round(b),
                "unchecked_ns": round(o),
                "decode_ns": round(c),
                "ratio": round(c / b, 2),
                "validation_pct": round(statistics.median(cost), 1),
                "validation_pct_iqr": [round(q1, 1), round(q3, 1)],
                "validation_pct_range": [round(min(cost), 1), round(max(cost), 1)],
            }
        )
    return rows


def main(argv: list[str] | None = None) -> int:
    """Print the table (and optionally write JSON)."""
    ap = argparse.ArgumentParser(prog="python -m benchmarks.decode", description=__doc__)
    ap.add_argument("--rounds", type=int, default=21)
    ap.add_argument("--number", type=int, default=5_000, help="calls per round")
    ap.add_argument("--json", help="write the figures to this file")
    args = ap.parse_args(argv)
    rows = measure(args.rounds, args.number)
    print(
        f"{'kind':<24}{'bytes':>6}{'orjson ns':>10}{'unchecked':>10}{'decode ns':>10}"
        f"{'ratio':>7}{'validation':>11}{'IQR':>14}{'min..max':>16}"
    )
    for r in rows:
        q1, q3 = r["validation_pct_iqr"]
        lo, hi = r["validation_pct_range"]
        print(
            f"{r['kind']:<24}{r['bytes']:>6}{r['orjson_loads_ns']:>10}{r['unchecked_ns']:>10}"
            f"{r['decode_ns']:>10}{r['ratio']:>6}x{r['validation_pct']:>+10.1f}%"
            f"{f'{q1:+.1f}..{q3:+.1f}':>14}{f'{lo:+.1f}..{hi:+.1f}':>16}"
        )
    if args.json:
        meta = {"python": platform.python_version(), "machine": platform.machine()}
        with open(args.json, "w") as fh:
            json.dump({"benchmark": "decode", "machine": meta, "rows": rows}, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
