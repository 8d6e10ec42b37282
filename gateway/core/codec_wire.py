"""The codec's fast path for the hottest frames, trade, aggTrade and (combined) bookTicker:
parsed by msgspec straight into typed wire structs (no intermediate dicts, the JSON
types checked as it parses), then built into the same events the generic path builds.

Why msgspec: a combined trade frame parsed into a typed struct costs about 0.6x an
``orjson.loads`` into dicts, and the field lookups and type checks the generic path does
by hand come for free (docs/benchmarks.md, "Decode"). `fast_event` answers None for
anything it does not take whole (another kind, a wrong type, a value out of range), and
the generic path then decodes that frame or raises its precise
`DecodeError`: what the fast path accepts is exactly what the generic path accepts, to
the same event (tests/test_codec_wire.py checks it, with hypothesis).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import msgspec

from gateway.core.events import AggTrade, BookTicker, Trade
from gateway.core.fast_events import new_agg_trade, new_book_ticker, new_trade

__all__ = ["fast_event"]

_INF = math.inf
#: How much of a frame the peek reads: '{"stream":"' (11) + a symbol (Binance's longest
#: are about 20) + '@aggTrade"' (10), with room; a longer name takes the generic path.
_HEAD = 48


class _WireTrade(msgspec.Struct, tag_field="e", tag="trade", gc=False):
    E: int
    s: str
    t: int
    p: str
    q: str
    T: int
    m: bool


class _WireAggTrade(msgspec.Struct, tag_field="e", tag="aggTrade", gc=False):
    E: int
    s: str
    a: int
    p: str
    q: str
    f: int
    l: int  # noqa: E741 - the exchange's field name
    T: int
    m: bool


class _WireBook(msgspec.Struct, gc=False):
    u: int
    s: str
    b: str
    B: str
    a: str
    A: str
    E: int | None = None
    # Present: not a book ticker as the generic path reads it (it dispatches on "e" and
    # takes "lastUpdateId" with "bids" for partial depth): the generic path decides.
    e: Any = msgspec.UNSET
    lastUpdateId: Any = msgspec.UNSET
    bids: Any = msgspec.UNSET


class _Combined(msgspec.Struct, gc=False):
    stream: str
    data: _WireTrade | _WireAggTrade


class _CombinedBook(msgspec.Struct, gc=False):
    stream: str
    data: _WireBook


_combined: Callable[[str | bytes], Any] = msgspec.json.Decoder(_Combined).decode
_book: Callable[[str | bytes], Any] = msgspec.json.Decoder(_CombinedBook).decode
_raw: Callable[[str | bytes], Any] = msgspec.json.Decoder(_WireTrade | _WireAggTrade).decode
_Failed = (msgspec.DecodeError, msgspec.ValidationError)
_UNSET = msgspec.UNSET


def fast_event(frame: str | bytes, receive_ns: int) -> Trade | AggTrade | BookTicker | None:
    """``frame`` (text, or its bytes) as a live `Trade` / `AggTrade` if it is a
    well-formed frame of one (combined or raw), or a `BookTicker` (combined), else None:
    the generic path decides."""
    # A peek at the head of the frame (its stream name, or a raw frame's event kind), so
    # that other kinds never pay for a failed parse: `in` over the whole frame would cost
    # 0.1-0.3 µs a test on a frame that has no match.
    if type(frame) is str:
        head = frame[:_HEAD]
    elif type(frame) is bytes:  # a binary frame, a recording read as bytes (`in` on bytes
        head = frame[:_HEAD].decode("latin-1")  # costs an exception inside: test text)
    else:
        return None
    if '@trade"' in head or '@aggTrade"' in head:
        decode = _combined
    elif '@bookTicker"' in head:
        return _book_ticker(frame, receive_ns)
    elif '"e":"trade"' in head or '"e":"aggTrade"' in head:
        decode = _raw
    else:
        return None
    try:
        d = decode(frame)
    except _Failed:
        return None
    if type(d) is _Combined:
        d = d.data
    p, q = d.p, d.q
    try:
        price, qty = float(p), float(q)
    except (ValueError, OverflowError):
        return None
    # The codec's rule for positive decimal strings (see its docstring), inline.
    if not (p > "/" and q > "/" and 0.0 < price < _INF > qty > 0.0):
        return None
    if type(d) is _WireTrade:
        return new_trade(d.s, d.t, price, qty, d.T, d.m, d.E, receive_ns)
    return new_agg_trade(d.s, d.a, price, qty, d.f, d.l, d.T, d.m, d.E, receive_ns)


def _book_ticker(frame: str | bytes, receive_ns: int) -> BookTicker | None:
    """A combined book-ticker frame (nearly half of a real feed), as `fast_event` does."""
    try:
        d = _book(frame).data
    except _Failed:
        return None
    if d.e is not _UNSET or (d.lastUpdateId is not _UNSET and d.bids is not _UNSET):
        return None
    b, bq, a, aq = d.b, d.B, d.a, d.A
    try:
        bid, bid_qty, ask, ask_qty = float(b), float(bq), float(a), float(aq)
    except (ValueError, OverflowError):
        return None
    # The codec's rule for non-negative decimal strings, inline.
    if not (b > "/" and bq > "/" and a > "/" and aq > "/"
            and 0.0 <= bid < _INF > bid_qty >= 0.0 <= ask < _INF > ask_qty >= 0.0):  # fmt: skip
        return None
    return new_book_ticker(d.s, d.u, bid, bid_qty, ask, ask_qty, d.E, receive_ns)
