"""The codec's fast path for the two hottest frames, trade and aggTrade: parsed by msgspec
straight into typed wire structs (no intermediate dicts, the JSON types checked as it
parses), then built into the same `Trade` / `AggTrade` the generic path builds.

Why msgspec: a combined trade frame parsed into a typed struct costs about 0.6x an
``orjson.loads`` into dicts, and the field lookups and type checks the generic path does
by hand come for free (docs/benchmarks.md, "Decode"). `fast_trade` answers None for
anything it does not take whole (another kind, a bytes frame, a wrong type, a value out
of range), and the generic path then decodes that frame or raises its precise
`DecodeError`: what the fast path accepts is exactly what the generic path accepts, to
the same event (tests/test_codec.py checks it, with hypothesis).
"""

from __future__ import annotations

import math

import msgspec

from gateway.core.events import AggTrade, Trade
from gateway.core.fast_events import new_agg_trade, new_trade

__all__ = ["fast_trade"]

_INF = math.inf


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


class _Combined(msgspec.Struct, gc=False):
    stream: str
    data: _WireTrade | _WireAggTrade


_combined = msgspec.json.Decoder(_Combined).decode
_raw = msgspec.json.Decoder(_WireTrade | _WireAggTrade).decode
_Failed = (msgspec.DecodeError, msgspec.ValidationError)


def fast_trade(frame: object, receive_ns: int) -> Trade | AggTrade | None:
    """``frame`` as a live `Trade` / `AggTrade` if it is a well-formed text frame of one
    (combined or raw), else None: the generic path decides."""
    if type(frame) is not str:
        return None
    # A peek at the stream name or the event kind, so that other kinds never pay for a
    # failed parse (`in` is the cheapest test there is; a match elsewhere only costs that).
    if '@trade"' in frame or '@aggTrade"' in frame:
        try:
            d = _combined(frame).data
        except _Failed:
            return None
    elif '"e":"trade"' in frame or '"e":"aggTrade"' in frame:
        try:
            d = _raw(frame)
        except _Failed:
            return None
    else:
        return None
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
    return new_agg_trade(d.s, d.a, price, qty, d.f, d.l, d.T, d.m, d.E, receive_ns)  # type: ignore[union-attr]
