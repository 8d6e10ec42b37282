"""Sans-I/O Binance market-stream codec: text frames in, typed events out; control frames out.

`decode_frame` turns one WebSocket text frame (raw or in the combined
``{"stream", "data"}`` wrapper) into one event. A malformed frame raises
`DecodeError` (with an excerpt); a well-formed frame of an unknown kind becomes
`UnknownEvent`. Nothing else escapes. `ControlEncoder` writes SUBSCRIBE,
UNSUBSCRIBE and LIST_SUBSCRIPTIONS requests with increasing ids.
"""

from __future__ import annotations

import functools
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
from gateway.errors import DecodeError

__all__ = ["ControlEncoder", "DecodeError", "decode_frame", "stream_symbol"]

_loads = orjson.loads
_JSONDecodeError = orjson.JSONDecodeError
_Builder = Callable[[dict[str, Any], int, "str | None"], Event]


class _Invalid(Exception):
    """Internal: a field has the wrong type; turned into DecodeError at the edge."""


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


def _block_trade(d: dict[str, Any], rns: int, stream: str | None) -> BlockTrade:
    t, tt, et = d["t"], d["T"], d["E"]
    _ints(t, tt, et)
    return BlockTrade(_str(d["s"]), t, float(d["p"]), float(d["q"]), tt, _bool(d["m"]), et, rns)


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


def _rolling_ticker(d: dict[str, Any], rns: int, stream: str | None) -> RollingTicker:
    o_t, c_t, first, last, n, et = d["O"], d["C"], d["F"], d["L"], d["n"], d["E"]
    _ints(o_t, c_t, first, last, n, et)
    return RollingTicker(
        _str(d["s"]), d["e"][: -len("Ticker")], float(d["p"]), float(d["P"]),
        float(d["o"]), float(d["h"]), float(d["l"]), float(d["c"]), float(d["w"]),
        float(d["v"]), float(d["q"]), o_t, c_t, first, last, n, et, rns,
    )  # fmt: skip


def _mini_ticker(d: dict[str, Any], rns: int, stream: str | None) -> MiniTicker:
    et = d["E"]
    _ints(et)
    return MiniTicker(
        _str(d["s"]), float(d["c"]), float(d["o"]), float(d["h"]), float(d["l"]),
        float(d["v"]), float(d["q"]), et, rns,
    )  # fmt: skip


def _avg_price(d: dict[str, Any], rns: int, stream: str | None) -> AvgPrice:
    tt, et = d["T"], d["E"]
    _ints(tt, et)
    return AvgPrice(_str(d["s"]), _str(d["i"]), float(d["w"]), tt, et, rns)


def _reference_price(d: dict[str, Any], rns: int, stream: str | None) -> ReferencePrice:
    t, r, et = d["t"], d["r"], d.get("E")
    _ints(t)
    if et is not None:
        _ints(et)
    return ReferencePrice(_str(d["s"]), None if r is None else float(r), t, et, rns)


def _depth_update(d: dict[str, Any], rns: int, stream: str | None) -> DepthUpdate:
    first, final, et = d["U"], d["u"], d["E"]
    _ints(first, final, et)
    return DepthUpdate(_str(d["s"]), first, final, _levels(d["b"]), _levels(d["a"]), et, rns)


def _server_shutdown(d: dict[str, Any], rns: int, stream: str | None) -> ServerShutdown:
    et = d["E"]
    _ints(et)
    return ServerShutdown(et, rns)


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
