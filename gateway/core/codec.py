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

Here: `decode_frame` and the generic path (`decode_generic`: orjson, then a builder per
kind). Trade, aggTrade and combined bookTicker frames are parsed by msgspec in
`codec_wire` first, to the same events and by the same rules. The field checks are in
`codec_checks`, the other kinds' builders in `codec_builders`, control frames in
`codec_control`, stream-name helpers in `codec_streams`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from gateway.core.codec_builders import (
    _avg_price,
    _block_trade,
    _book_ticker,
    _depth_update,
    _kline,
    _mini_ticker,
    _partial_depth,
    _reference_price,
    _rolling_ticker,
    _server_shutdown,
    _ticker,
)
from gateway.core.codec_checks import (
    _INF,
    _NUMBER_ERRORS,
    _TRADE_FIELDS,
    _bad,
    _bool,
    _describe,
    _ints,
    _Invalid,
    _str,
)
from gateway.core.codec_control import ControlEncoder, _decode_control
from gateway.core.codec_streams import _depth_stream_info as _depth_stream_info
from gateway.core.codec_streams import _symbol_of, stream_symbol
from gateway.core.codec_wire import fast_event as _fast_event
from gateway.core.events import AggTrade, MiniTicker, RollingTicker, Trade
from gateway.core.fast_events import new_agg_trade, new_trade
from gateway.core.frames import Event, EventArray, UnknownEvent
from gateway.errors import DecodeError

__all__ = ["ControlEncoder", "DecodeError", "decode_frame", "decode_generic", "stream_symbol"]

_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError
_Builder = Callable[[dict[str, Any], int, "str | None"], Event]


def _trade(d: dict[str, Any], rns: int, stream: str | None) -> Trade:
    t, tt, et, m, p, q, s = d["t"], d["T"], d["E"], d["m"], d["p"], d["q"], d["s"]
    if type(t) is not int or type(tt) is not int or type(et) is not int or type(m) is not bool:
        raise _Invalid("trade ids, times and flag must be integers and a boolean")
    try:
        price, qty = float(p), float(q)
        if not (p > "/" and q > "/" and 0.0 < price < _INF > qty > 0.0):
            raise _bad(d, _TRADE_FIELDS)
    except _NUMBER_ERRORS:
        raise _bad(d, _TRADE_FIELDS) from None
    if type(s) is not str:
        raise _Invalid(f"expected a string, got {s!r}")
    return new_trade(s, t, price, qty, tt, m, et, rns)


def _agg_trade(d: dict[str, Any], rns: int, stream: str | None) -> AggTrade:
    a, f, last, tt, et, m, p, q = d["a"], d["f"], d["l"], d["T"], d["E"], d["m"], d["p"], d["q"]
    _ints(a, f, last, tt, et)
    try:
        price, qty = float(p), float(q)
        if not (p > "/" and q > "/" and 0.0 < price < _INF > qty > 0.0):
            raise _bad(d, _TRADE_FIELDS)
    except _NUMBER_ERRORS:
        raise _bad(d, _TRADE_FIELDS) from None
    return new_agg_trade(_str(d["s"]), a, price, qty, f, last, tt, _bool(m), et, rns)


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
    fast = _fast_event(frame, receive_ns)  # trade, aggTrade, bookTicker (`codec_wire`)
    if fast is not None:
        return fast
    return decode_generic(frame, receive_ns)


def decode_generic(frame: str | bytes, receive_ns: int = 0) -> Event:
    """`decode_frame` without the msgspec fast path: for a caller that tried
    `codec_wire.fast_event` first (the router), so that no frame is tried twice."""
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
