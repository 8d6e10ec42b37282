"""The codec's builders for every event kind but trade and aggTrade (beside `decode_frame`).

Each checks its fields inline like the trade builders do and raises `_Invalid` on a bad one.
"""

from __future__ import annotations

from typing import Any

from gateway.core.codec_checks import (
    _AVG_FIELDS,
    _BOOK_FIELDS,
    _INF,
    _KLINE_FIELDS,
    _MINI_FIELDS,
    _NUMBER_ERRORS,
    _REFERENCE_FIELDS,
    _ROLLING_FIELDS,
    _TICKER_FIELDS,
    _TRADE_FIELDS,
    _bad,
    _bad_level,
    _bool,
    _ints,
    _Invalid,
    _show,
    _signed,
    _str,
)
from gateway.core.codec_streams import _depth_stream_info
from gateway.core.events import (
    AvgPrice,
    BlockTrade,
    BookTicker,
    DepthUpdate,
    Kline,
    Level,
    MiniTicker,
    PartialDepth,
    ReferencePrice,
    RollingTicker,
    Ticker,
)
from gateway.core.fast_events import new_book_ticker, new_depth_update
from gateway.core.frames import ServerShutdown
from gateway.core.streams import INTERVALS

_INTERVALS = frozenset(INTERVALS)


def _levels(rows: object, side: str) -> tuple[Level, ...]:
    if type(rows) is not list:
        raise _Invalid(f"field {side!r}: expected a list of [price, quantity], got {_show(rows)}")
    out: list[Level] = []
    for row in rows:
        if type(row) is not list or len(row) < 2:
            raise _Invalid(f"field {side!r}: expected [price, quantity], got {_show(row)}")
        p, q = row[0], row[1]
        try:
            price, qty = float(p), float(q)
            if not (p > "/" and q > "/" and 0.0 < price < _INF > qty >= 0.0):
                raise _bad_level(side, len(out), p, q)
        except _NUMBER_ERRORS:
            raise _bad_level(side, len(out), p, q) from None
        out.append((price, qty))
    return tuple(out)


def _block_trade(d: dict[str, Any], rns: int, stream: str | None) -> BlockTrade:
    t, tt, et, p, q = d["t"], d["T"], d["E"], d["p"], d["q"]
    _ints(t, tt, et)
    try:
        price, qty = float(p), float(q)
        if not (p > "/" and q > "/" and 0.0 < price < _INF > qty > 0.0):
            raise _bad(d, _TRADE_FIELDS)
    except _NUMBER_ERRORS:
        raise _bad(d, _TRADE_FIELDS) from None
    return BlockTrade(_str(d["s"]), t, price, qty, tt, _bool(d["m"]), et, rns)


def _kline(d: dict[str, Any], rns: int, stream: str | None) -> Kline:
    k = d["k"]
    if type(k) is not dict:
        raise _Invalid("kline payload 'k' must be an object")
    t, tc, n, f, last, et = k["t"], k["T"], k["n"], k["f"], k["L"], d["E"]
    _ints(t, tc, n, f, last, et)
    o, h, lo, c, v, q, bv, bq = k["o"], k["h"], k["l"], k["c"], k["v"], k["q"], k["V"], k["Q"]
    try:
        fo, fh, fl, fc = float(o), float(h), float(lo), float(c)
        fv, fq, fbv, fbq = float(v), float(q), float(bv), float(bq)
        if not (
            o > "/" and h > "/" and lo > "/" and c > "/"
            and v > "/" and q > "/" and bv > "/" and bq > "/"
            and 0.0 < fo < _INF > fh > 0.0 < fl < _INF > fc > 0.0
            and 0.0 <= fv < _INF > fq >= 0.0 <= fbv < _INF > fbq >= 0.0
        ):  # fmt: skip
            raise _bad(k, _KLINE_FIELDS, "k.")
    except _NUMBER_ERRORS:
        raise _bad(k, _KLINE_FIELDS, "k.") from None
    interval = k["i"]
    if interval not in _INTERVALS:  # a handler keyed by interval would crash on it
        raise _Invalid(f"unknown kline interval 'k.i': {interval!r}")
    return Kline(
        _str(d["s"]), interval, t, tc, fo, fh, fl, fc, fv, fq, fbv, fbq,
        n, f, last, _bool(k["x"]), et, rns,
    )  # fmt: skip


def _ticker(d: dict[str, Any], rns: int, stream: str | None) -> Ticker:
    o_t, c_t, first, last, n, et = d["O"], d["C"], d["F"], d["L"], d["n"], d["E"]
    _ints(o_t, c_t, first, last, n, et)
    p, pp, w, x, c, lq, b, bq, a, aq, o, h, lo, v, q = (
        d["p"], d["P"], d["w"], d["x"], d["c"], d["Q"], d["b"], d["B"], d["a"], d["A"],
        d["o"], d["h"], d["l"], d["v"], d["q"],
    )  # fmt: skip
    try:
        fp, fpp, fw, fx, fc, flq = float(p), float(pp), float(w), float(x), float(c), float(lq)
        fb, fbq, fa, faq = float(b), float(bq), float(a), float(aq)
        fo, fh, fl, fv, fq = float(o), float(h), float(lo), float(v), float(q)
        if not (
            _signed(p, fp) and _signed(pp, fpp)
            and w > "/" and x > "/" and c > "/" and lq > "/" and b > "/" and bq > "/"
            and a > "/" and aq > "/" and o > "/" and h > "/" and lo > "/" and v > "/"
            and q > "/"
            and 0.0 <= fw < _INF > fx >= 0.0 <= fc < _INF > flq >= 0.0
            and 0.0 <= fb < _INF > fbq >= 0.0 <= fa < _INF > faq >= 0.0
            and 0.0 <= fo < _INF > fh >= 0.0 <= fl < _INF > fv >= 0.0 <= fq < _INF
        ):  # fmt: skip
            raise _bad(d, _TICKER_FIELDS)
    except _NUMBER_ERRORS:
        raise _bad(d, _TICKER_FIELDS) from None
    return Ticker(
        _str(d["s"]), fp, fpp, fw, fx, fc, flq, fb, fbq, fa, faq, fo, fh, fl, fv, fq,
        o_t, c_t, first, last, n, et, rns,
    )  # fmt: skip


def _rolling_ticker(d: dict[str, Any], rns: int, stream: str | None) -> RollingTicker:
    o_t, c_t, first, last, n, et = d["O"], d["C"], d["F"], d["L"], d["n"], d["E"]
    _ints(o_t, c_t, first, last, n, et)
    p, pp, o, h, lo, c, w, v, q = (
        d["p"], d["P"], d["o"], d["h"], d["l"], d["c"], d["w"], d["v"], d["q"]
    )  # fmt: skip
    try:
        fp, fpp, fo, fh, fl = float(p), float(pp), float(o), float(h), float(lo)
        fc, fw, fv, fq = float(c), float(w), float(v), float(q)
        if not (
            _signed(p, fp) and _signed(pp, fpp)
            and o > "/" and h > "/" and lo > "/" and c > "/" and w > "/" and v > "/"
            and q > "/"
            and 0.0 <= fo < _INF > fh >= 0.0 <= fl < _INF > fc >= 0.0
            and 0.0 <= fw < _INF > fv >= 0.0 <= fq < _INF
        ):  # fmt: skip
            raise _bad(d, _ROLLING_FIELDS)
    except _NUMBER_ERRORS:
        raise _bad(d, _ROLLING_FIELDS) from None
    return RollingTicker(
        _str(d["s"]), d["e"][: -len("Ticker")], fp, fpp, fo, fh, fl, fc, fw, fv, fq,
        o_t, c_t, first, last, n, et, rns,
    )  # fmt: skip


def _mini_ticker(d: dict[str, Any], rns: int, stream: str | None) -> MiniTicker:
    et = d["E"]
    _ints(et)
    c, o, h, lo, v, q = d["c"], d["o"], d["h"], d["l"], d["v"], d["q"]
    try:
        fc, fo, fh, fl, fv, fq = float(c), float(o), float(h), float(lo), float(v), float(q)
        if not (
            c > "/" and o > "/" and h > "/" and lo > "/" and v > "/" and q > "/"
            and 0.0 <= fc < _INF > fo >= 0.0 <= fh < _INF > fl >= 0.0
            and 0.0 <= fv < _INF > fq >= 0.0
        ):  # fmt: skip
            raise _bad(d, _MINI_FIELDS)
    except _NUMBER_ERRORS:
        raise _bad(d, _MINI_FIELDS) from None
    return MiniTicker(_str(d["s"]), fc, fo, fh, fl, fv, fq, et, rns)


def _avg_price(d: dict[str, Any], rns: int, stream: str | None) -> AvgPrice:
    tt, et, w = d["T"], d["E"], d["w"]
    _ints(tt, et)
    try:
        price = float(w)
        if not (w > "/" and 0.0 < price < _INF):
            raise _bad(d, _AVG_FIELDS)
    except _NUMBER_ERRORS:
        raise _bad(d, _AVG_FIELDS) from None
    return AvgPrice(_str(d["s"]), _str(d["i"]), price, tt, et, rns)


def _reference_price(d: dict[str, Any], rns: int, stream: str | None) -> ReferencePrice:
    t, r, et = d["t"], d["r"], d.get("E")
    _ints(t)
    if et is not None:
        _ints(et)
    if r is None:  # the exchange has no reference price at the moment
        return ReferencePrice(_str(d["s"]), None, t, et, rns)
    try:
        price = float(r)
        if not (r > "/" and 0.0 < price < _INF):
            raise _bad(d, _REFERENCE_FIELDS)
    except _NUMBER_ERRORS:
        raise _bad(d, _REFERENCE_FIELDS) from None
    return ReferencePrice(_str(d["s"]), price, t, et, rns)


def _depth_update(d: dict[str, Any], rns: int, stream: str | None) -> DepthUpdate:
    first, final, et = d["U"], d["u"], d["E"]
    _ints(first, final, et)
    return new_depth_update(
        _str(d["s"]), first, final, _levels(d["b"], "b"), _levels(d["a"], "a"), et, rns
    )


def _server_shutdown(d: dict[str, Any], rns: int, stream: str | None) -> ServerShutdown:
    et = d["E"]
    _ints(et)
    return ServerShutdown(et, rns)


def _book_ticker(d: dict[str, Any], rns: int, stream: str | None) -> BookTicker:
    u, et, b, bq, a, aq = d["u"], d.get("E"), d["b"], d["B"], d["a"], d["A"]
    _ints(u)
    if et is not None:
        _ints(et)
    try:
        bid, bid_qty, ask, ask_qty = float(b), float(bq), float(a), float(aq)
        if not (
            b > "/" and bq > "/" and a > "/" and aq > "/"
            and 0.0 <= bid < _INF > bid_qty >= 0.0 <= ask < _INF > ask_qty >= 0.0
        ):  # fmt: skip
            raise _bad(d, _BOOK_FIELDS)
    except _NUMBER_ERRORS:
        raise _bad(d, _BOOK_FIELDS) from None
    return new_book_ticker(_str(d["s"]), u, bid, bid_qty, ask, ask_qty, et, rns)


def _partial_depth(d: dict[str, Any], rns: int, stream: str | None) -> PartialDepth:
    last = d["lastUpdateId"]
    _ints(last)
    bids, asks = _levels(d["bids"], "bids"), _levels(d["asks"], "asks")
    symbol, levels = _depth_stream_info(stream) if stream else ("", max(len(bids), len(asks)))
    return PartialDepth(symbol, levels, last, bids, asks, None, rns)
