"""Sans-I/O Binance market-stream codec: text frames in, typed events out; control frames out.

`decode_frame` turns one WebSocket text frame (raw or in the combined
``{"stream", "data"}`` wrapper) into one event. A malformed frame raises
`DecodeError` (with an excerpt); a well-formed frame of an unknown kind becomes
`UnknownEvent`. Nothing else escapes. `ControlEncoder` writes SUBSCRIBE,
UNSUBSCRIBE and LIST_SUBSCRIPTIONS requests with increasing ids.

Prices and quantities: the exchange sends them as decimal strings, and a value it
never sends would otherwise reach the stop-losses as a float (``true`` as 1.0, "0",
"nan"). So each such field must be a JSON string whose first character is a digit
(``'-'`` too where signed), that ``float()`` reads as a finite number in the field's
range; anything else raises `DecodeError` naming the field. The ranges, by field,
follow what the exchange sends:

- positive (> 0): trade, aggTrade and blockTrade ``p`` and ``q``; kline ``o h l c``
  (a candle without trades repeats the previous close); avgPrice ``w``; referencePrice
  ``r`` (``null``, its "no price now", stays None); the price of a depth level.
- non-negative (>= 0): kline ``v q V Q`` (zero without trades); the quantity of a
  depth level ("0.00000000" removes the level); bookTicker ``b B a A`` (an empty side
  is all zeros); every 24hrTicker, rolling-window ticker and miniTicker field but the
  two below (a window without trades reports zero prices, and an empty book side zero
  bid/ask).
- signed (any finite value): ticker and rolling-window ticker ``p`` (price change) and
  ``P`` (change percent).

Rejected, then: booleans, JSON numbers, null, "", "-5" and "-0" (unsigned), "0" (positive),
"inf", "nan", "1e999", "  5", "+5", ".5". Only the first character's form is
checked: a full check would cost more than the 5% of a trade's decode allowed for the
validation (docs/benchmarks.md, "Decode"), so what float() also reads further on
passes, as float() reads it ("5_0" is 50, "5e2" 500, "5 " 5, Unicode digits and
spaces). Ordering (low <= high, bid < ask) is not checked.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Iterable
from typing import Any

import orjson

from gateway.core.events import (
    AggTrade,
    AvgPrice,
    BlockTrade,
    BookTicker,
    ControlError,
    ControlReply,
    DepthUpdate,
    Event,
    EventArray,
    Kline,
    Level,
    MiniTicker,
    PartialDepth,
    ReferencePrice,
    RollingTicker,
    ServerShutdown,
    Ticker,
    Trade,
    UnknownEvent,
)
from gateway.core.streams import INTERVALS
from gateway.errors import DecodeError

__all__ = ["ControlEncoder", "DecodeError", "decode_frame", "stream_symbol"]

_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError
_Builder = Callable[[dict[str, Any], int, "str | None"], Event]
_INF = math.inf
_INTERVALS = frozenset(INTERVALS)
_NUMBER_ERRORS = (TypeError, ValueError, OverflowError)

# The three rules for decimal-string fields (see the module docstring), as error text.
_POSITIVE = "a positive decimal string"
_NON_NEGATIVE = "a non-negative decimal string"
_SIGNED = "a decimal string"
_Fields = tuple[tuple[str, str], ...]


class _Invalid(Exception):
    """Internal: a field has the wrong type or value; turned into DecodeError at the edge."""


def _ints(*values: object) -> None:
    for v in values:
        if type(v) is not int:
            raise _Invalid(f"expected an integer, got {v!r}")


def _str(v: object) -> str:
    if type(v) is not str:
        raise _Invalid(f"expected a string, got {v!r}")
    return v


def _bool(v: object) -> bool:
    if type(v) is not bool:
        raise _Invalid(f"expected a boolean, got {v!r}")
    return v


# Decimal strings (rules in the module docstring). The builders check every field
# inline (the hot path: one comparison chain, which CPython specialises inside an `if`)
# and only when that fails ask `_bad` which field broke which rule. ``s > "/"`` is the
# first-character test: false for a leading space, sign, '+' or '.', a TypeError for
# anything but a str (JSON numbers, booleans, null). The range is still compared in
# full (NaN fails every comparison): float() skips a leading non-ASCII space, which
# passes ``s > "/"``, and then reads a sign.


def _decimal_ok(value: object, rule: str) -> bool:
    """One field against its rule: the same test the builders make inline."""
    if type(value) is not str or not (value > "/" or (rule is _SIGNED and value[:1] == "-")):
        return False
    try:
        v = float(value)
    except ValueError:
        return False
    if rule is _POSITIVE:
        return 0.0 < v < _INF
    if rule is _NON_NEGATIVE:
        return 0.0 <= v < _INF
    return -_INF < v < _INF


def _signed(text: object, value: float) -> bool:
    """Inline test of a _SIGNED field (on the cold kinds only: tickers)."""
    return type(text) is str and (text > "/" or text[:1] == "-") and -_INF < value < _INF


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "…"


def _bad(d: dict[str, Any], fields: _Fields, prefix: str = "") -> _Invalid:
    """The error naming the first field of ``fields`` in ``d`` that breaks its rule."""
    for key, rule in fields:
        if not _decimal_ok(d[key], rule):
            return _Invalid(f"field {prefix + key!r} must be {rule}, got {_show(d[key])}")
    return _Invalid(f"one of the fields {[k for k, _ in fields]} is invalid")  # not reached


def _bad_level(side: str, index: int, price: object, quantity: object) -> _Invalid:
    where = f"field {side!r} level {index}"
    if not _decimal_ok(price, _POSITIVE):
        return _Invalid(f"{where} price must be {_POSITIVE}, got {_show(price)}")
    return _Invalid(f"{where} quantity must be {_NON_NEGATIVE}, got {_show(quantity)}")


_TRADE_FIELDS: _Fields = (("p", _POSITIVE), ("q", _POSITIVE))
_KLINE_FIELDS: _Fields = (
    ("o", _POSITIVE), ("h", _POSITIVE), ("l", _POSITIVE), ("c", _POSITIVE),
    ("v", _NON_NEGATIVE), ("q", _NON_NEGATIVE), ("V", _NON_NEGATIVE), ("Q", _NON_NEGATIVE),
)  # fmt: skip
_TICKER_FIELDS: _Fields = (
    ("p", _SIGNED), ("P", _SIGNED),
    *((k, _NON_NEGATIVE) for k in ("w", "x", "c", "Q", "b", "B", "a", "A", "o", "h", "l")),
    ("v", _NON_NEGATIVE), ("q", _NON_NEGATIVE),
)  # fmt: skip
_ROLLING_FIELDS: _Fields = (
    ("p", _SIGNED), ("P", _SIGNED),
    *((k, _NON_NEGATIVE) for k in ("o", "h", "l", "c", "w", "v", "q")),
)  # fmt: skip
_MINI_FIELDS: _Fields = tuple((k, _NON_NEGATIVE) for k in ("c", "o", "h", "l", "v", "q"))
_BOOK_FIELDS: _Fields = tuple((k, _NON_NEGATIVE) for k in ("b", "B", "a", "A"))
_AVG_FIELDS: _Fields = (("w", _POSITIVE),)
_REFERENCE_FIELDS: _Fields = (("r", _POSITIVE),)


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


def _trade(d: dict[str, Any], rns: int, stream: str | None) -> Trade:
    t, tt, et, m, p, q = d["t"], d["T"], d["E"], d["m"], d["p"], d["q"]
    if type(t) is not int or type(tt) is not int or type(et) is not int or type(m) is not bool:
        raise _Invalid("trade ids, times and flag must be integers and a boolean")
    try:
        price, qty = float(p), float(q)
        if not (p > "/" and q > "/" and 0.0 < price < _INF > qty > 0.0):
            raise _bad(d, _TRADE_FIELDS)
    except _NUMBER_ERRORS:
        raise _bad(d, _TRADE_FIELDS) from None
    return Trade(_str(d["s"]), t, price, qty, tt, m, et, rns)


def _agg_trade(d: dict[str, Any], rns: int, stream: str | None) -> AggTrade:
    a, f, last, tt, et, m, p, q = d["a"], d["f"], d["l"], d["T"], d["E"], d["m"], d["p"], d["q"]
    _ints(a, f, last, tt, et)
    try:
        price, qty = float(p), float(q)
        if not (p > "/" and q > "/" and 0.0 < price < _INF > qty > 0.0):
            raise _bad(d, _TRADE_FIELDS)
    except _NUMBER_ERRORS:
        raise _bad(d, _TRADE_FIELDS) from None
    return AggTrade(_str(d["s"]), a, price, qty, f, last, tt, _bool(m), et, rns)


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
    return DepthUpdate(
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
    return BookTicker(_str(d["s"]), u, bid, bid_qty, ask, ask_qty, et, rns)


def _partial_depth(d: dict[str, Any], rns: int, stream: str | None) -> PartialDepth:
    last = d["lastUpdateId"]
    _ints(last)
    bids, asks = _levels(d["bids"], "bids"), _levels(d["asks"], "asks")
    symbol, levels = _depth_stream_info(stream) if stream else ("", max(len(bids), len(asks)))
    return PartialDepth(symbol, levels, last, bids, asks, None, rns)


@functools.lru_cache(maxsize=8192)
def _depth_stream_info(stream: str) -> tuple[str, int]:
    symbol, _, rest = stream.partition("@")
    digits = rest[len("depth") :].partition("@")[0]
    return symbol.upper(), int(digits) if digits.isdigit() else 0


_BY_EVENT: dict[object, _Builder] = {
    "trade": _trade,
    "aggTrade": _agg_trade,
    "blockTrade": _block_trade,
    "kline": _kline,
    "24hrTicker": _ticker,
    "24hrMiniTicker": _mini_ticker,
    "1hTicker": _rolling_ticker,
    "4hTicker": _rolling_ticker,
    "1dTicker": _rolling_ticker,
    "avgPrice": _avg_price,
    "referencePrice": _reference_price,
    "depthUpdate": _depth_update,
    "serverShutdown": _server_shutdown,
}
_ARRAY_ELEMENT_TYPES = (MiniTicker, RollingTicker)


def decode_frame(frame: str | bytes, receive_ns: int = 0) -> Event:
    """Decode one text frame into one event.

    Returns a market event, `EventArray` (market-wide arrays), `ServerShutdown`,
    `ControlReply` / `ControlError` (answers to control requests), or `UnknownEvent`
    for a well-formed frame of a kind this codec does not know. Raises `DecodeError`
    (carrying an excerpt of the frame) for anything malformed, and nothing else.
    """
    try:
        obj = _loads(frame)
    except _JSONDecodeError:
        raise DecodeError("frame is not valid JSON", frame) from None
    except TypeError:
        raise DecodeError("frame is not text", frame) from None
    try:
        if type(obj) is dict:
            # Fast path: a combined frame of a known event kind (nearly every frame).
            data = obj.get("data")
            if type(data) is dict:
                builder = _BY_EVENT.get(data.get("e"))  # type: ignore[arg-type]
                stream = obj.get("stream")
                if builder is not None and type(stream) is str:
                    return builder(data, receive_ns, stream)
            stream = obj.get("stream")
            if stream is not None and "data" in obj:
                if type(stream) is not str:
                    raise _Invalid("combined frame 'stream' must be a string")
                return _decode_payload(obj["data"], receive_ns, stream)
            if "id" in obj and ("result" in obj or "error" in obj or "code" in obj):
                return _decode_control(obj, receive_ns)
            return _decode_payload(obj, receive_ns, None)
        if type(obj) is list:
            return _decode_payload(obj, receive_ns, None)
    except (KeyError, TypeError, ValueError, IndexError, OverflowError, _Invalid) as exc:
        raise DecodeError(f"malformed frame ({_describe(exc)})", frame) from None
    raise DecodeError("frame is not a JSON object or array", frame)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return str(exc) or type(exc).__name__


def _decode_payload(data: Any, rns: int, stream: str | None) -> Event:
    if type(data) is dict:
        e = data.get("e")
        if e is not None:
            builder = _BY_EVENT.get(e) if type(e) is str else None
            if builder is None:
                return UnknownEvent(stream, data, rns, _symbol_of(data, stream))
            return builder(data, rns, stream)
        if "lastUpdateId" in data and "bids" in data:
            return _partial_depth(data, rns, stream)
        if "u" in data and "b" in data and "a" in data and "s" in data:
            return _book_ticker(data, rns, stream)
        return UnknownEvent(stream, data, rns, _symbol_of(data, stream))
    if type(data) is list:
        events = []
        for item in data:
            ev = _decode_payload(item, rns, stream)
            if not isinstance(ev, _ARRAY_ELEMENT_TYPES):
                return UnknownEvent(stream, data, rns, None)
            events.append(ev)
        return EventArray(stream, tuple(events), rns)
    raise _Invalid(f"payload must be an object or array, got {type(data).__name__}")


def _symbol_of(data: dict[str, Any], stream: str | None) -> str | None:
    s = data.get("s")
    if type(s) is str:
        return s
    if stream and not stream.startswith("!") and "@" in stream:
        return stream.partition("@")[0].upper()
    return None


def _decode_control(obj: dict[str, Any], rns: int) -> ControlReply | ControlError:
    rid = obj["id"]
    if rid is not None and type(rid) not in (int, str):
        raise _Invalid("control reply 'id' must be an integer, a string or null")
    if "error" in obj or "code" in obj:
        err = obj.get("error", obj)
        if type(err) is not dict:
            raise _Invalid("control 'error' must be an object")
        code = err.get("code")
        if code is not None and type(code) is not int:
            raise _Invalid("error 'code' must be an integer")
        return ControlError(rid, code, str(err.get("msg", "")), rns)
    return ControlReply(rid, obj["result"], rns)


def stream_symbol(frame: str) -> str | None:
    """Slice the symbol out of a combined frame's text without parsing it (for routing early).

    Returns the uppercase symbol, or None for market-wide streams and raw frames.
    """
    head = frame[:64]
    start = head.find('"stream":"')
    if start < 0:
        return None
    start += len('"stream":"')
    at = head.find("@", start)
    if at < 0 or head.startswith("!", start):
        return None
    return head[start:at].upper()


class ControlEncoder:
    """Writes control requests with increasing positive integer ids (sans-I/O)."""

    def __init__(self, first_id: int = 1) -> None:
        self._next_id = first_id

    def _frame(self, method: str, params: list[Any] | None) -> tuple[int, str]:
        rid = self._next_id
        self._next_id += 1
        body: dict[str, Any] = {"method": method}
        if params is not None:
            body["params"] = params
        body["id"] = rid
        return rid, orjson.dumps(body).decode()

    def subscribe(self, streams: Iterable[str]) -> tuple[int, str]:
        """A SUBSCRIBE request for ``streams``; returns ``(id, frame_text)``."""
        return self._frame("SUBSCRIBE", list(streams))

    def unsubscribe(self, streams: Iterable[str]) -> tuple[int, str]:
        """An UNSUBSCRIBE request for ``streams``; returns ``(id, frame_text)``."""
        return self._frame("UNSUBSCRIBE", list(streams))

    def list_subscriptions(self) -> tuple[int, str]:
        """A LIST_SUBSCRIPTIONS request; returns ``(id, frame_text)``."""
        return self._frame("LIST_SUBSCRIPTIONS", None)

    def set_property(self, name: str, value: bool) -> tuple[int, str]:
        """A SET_PROPERTY request (``combined`` is the only documented property)."""
        return self._frame("SET_PROPERTY", [name, value])

    def get_property(self, name: str) -> tuple[int, str]:
        """A GET_PROPERTY request."""
        return self._frame("GET_PROPERTY", [name])
