"""Market records to the exchange's JSON text, and `Frame`: serialised once, sent to all.

Records come from `market` with prices in 1e-8 units, quote volumes in 1e-16 units and
times in microseconds. Every encoder takes ``div`` (1 for microsecond connections, 1000
for millisecond ones) and returns the payload as UTF-8 bytes. A `Frame` caches its text
per (combined, time unit) and its complete WebSocket frame, so a frame sent to many
clients is serialised and framed once.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import orjson

from gateway.simulator.candles import CL, CNT, END, FID, HI, LID, LO, OP, OT, QB, QV, VB, VOL
from gateway.simulator.tickers import WindowStats

__all__ = ["ENCODERS", "Frame", "fmt8", "fmt16", "ws_frame"]

_dumps = orjson.dumps


def fmt8(v: int) -> str:
    """An integer in 1e-8 units as the exchange's 8-decimal string."""
    if v < 0:
        return "-" + fmt8(-v)
    return f"{v // 100_000_000}.{v % 100_000_000:08d}"


def fmt16(v: int) -> str:
    """An integer in 1e-16 units (price x quantity) as an 8-decimal string (truncated)."""
    return fmt8(v // 100_000_000)


def _levels(rows: list[tuple[int, int]]) -> list[list[str]]:
    return [[fmt8(p), fmt8(q)] for p, q in rows]


def trade(r: tuple[Any, ...], div: int) -> bytes:
    s, t, p, q, tt, m, e = r
    return _dumps({"e": "trade", "E": e // div, "s": s, "t": t, "p": fmt8(p), "q": fmt8(q),
                   "T": tt // div, "m": m, "M": True})  # fmt: skip


def agg_trade(r: tuple[Any, ...], div: int) -> bytes:
    s, a, p, q, f, last, tt, m, e = r
    return _dumps({"e": "aggTrade", "E": e // div, "s": s, "a": a, "p": fmt8(p), "q": fmt8(q),
                   "f": f, "l": last, "T": tt // div, "m": m, "M": True})  # fmt: skip


def book_ticker(r: tuple[Any, ...], div: int) -> bytes:
    s, u, b, bq, a, aq = r
    return _dumps({"u": u, "s": s, "b": fmt8(b), "B": fmt8(bq), "a": fmt8(a), "A": fmt8(aq)})


def depth_update(r: tuple[Any, ...], div: int) -> bytes:
    s, first, last, bids, asks, e = r
    return _dumps({"e": "depthUpdate", "E": e // div, "s": s, "U": first, "u": last,
                   "b": _levels(bids), "a": _levels(asks)})  # fmt: skip


def partial_depth(r: tuple[Any, ...], div: int) -> bytes:
    u, bids, asks = r
    return _dumps({"lastUpdateId": u, "bids": _levels(bids), "asks": _levels(asks)})


def kline_body(s: str, interval: str, k: tuple[int, ...], closed: bool, div: int) -> dict[str, Any]:
    """The ``k`` object of a kline event."""
    return {"t": k[OT] // div, "T": k[END] // div - 1, "s": s, "i": interval, "f": k[FID],
            "L": k[LID], "o": fmt8(k[OP]), "c": fmt8(k[CL]), "h": fmt8(k[HI]),
            "l": fmt8(k[LO]), "v": fmt8(k[VOL]), "n": k[CNT], "x": closed, "q": fmt16(k[QV]),
            "V": fmt8(k[VB]), "Q": fmt16(k[QB]), "B": "0"}  # fmt: skip


def kline(r: tuple[Any, ...], div: int) -> bytes:
    s, interval, k, closed, e = r
    return _dumps({"e": "kline", "E": e // div, "s": s,
                   "k": kline_body(s, interval, k, closed, div)})  # fmt: skip


def _change(st: WindowStats) -> tuple[str, str, str]:
    p = st.close - st.open
    pct = p * 100 / st.open if st.open else 0.0
    w = st.quote_volume // st.volume if st.volume else st.close
    return fmt8(p), f"{pct:.3f}", fmt8(w)


def ticker_dict(r: tuple[Any, ...], div: int) -> dict[str, Any]:
    """A 24hrTicker object (also used by REST ``ticker/24hr``)."""
    s, e, st, last_q, b, bq, a, aq = r
    p, pct, w = _change(st)
    return {"e": "24hrTicker", "E": e // div, "s": s, "p": p, "P": pct, "w": w,
            "x": fmt8(st.prev_close), "c": fmt8(st.close), "Q": fmt8(last_q), "b": fmt8(b),
            "B": fmt8(bq), "a": fmt8(a), "A": fmt8(aq), "o": fmt8(st.open),
            "h": fmt8(st.high), "l": fmt8(st.low), "v": fmt8(st.volume),
            "q": fmt16(st.quote_volume), "O": st.open_time // div, "C": st.close_time // div,
            "F": st.first_id, "L": st.last_id, "n": st.count}  # fmt: skip


def ticker(r: tuple[Any, ...], div: int) -> bytes:
    return _dumps(ticker_dict(r, div))


def mini_dict(r: tuple[Any, ...], div: int) -> dict[str, Any]:
    s, e, st = r
    return {"e": "24hrMiniTicker", "E": e // div, "s": s, "c": fmt8(st.close),
            "o": fmt8(st.open), "h": fmt8(st.high), "l": fmt8(st.low), "v": fmt8(st.volume),
            "q": fmt16(st.quote_volume)}  # fmt: skip


def mini_ticker(r: tuple[Any, ...], div: int) -> bytes:
    return _dumps(mini_dict(r, div))


def rolling_dict(r: tuple[Any, ...], div: int) -> dict[str, Any]:
    s, e, window, st = r
    p, pct, w = _change(st)
    return {"e": f"{window}Ticker", "E": e // div, "s": s, "p": p, "P": pct,
            "o": fmt8(st.open), "h": fmt8(st.high), "l": fmt8(st.low), "c": fmt8(st.close),
            "w": w, "v": fmt8(st.volume), "q": fmt16(st.quote_volume),
            "O": st.open_time // div, "C": st.close_time // div, "F": st.first_id,
            "L": st.last_id, "n": st.count}  # fmt: skip


def rolling_ticker(r: tuple[Any, ...], div: int) -> bytes:
    return _dumps(rolling_dict(r, div))


def avg_price(r: tuple[Any, ...], div: int) -> bytes:
    s, e, w, tt = r
    return _dumps({"e": "avgPrice", "E": e // div, "s": s, "i": "5m", "w": fmt8(w), "T": tt // div})


def reference_price(r: tuple[Any, ...], div: int) -> bytes:
    s, price, t = r
    return _dumps({"e": "referencePrice", "s": s, "r": fmt8(price), "t": t // div})


def array(r: tuple[Any, ...], div: int) -> bytes:
    kind, records = r
    build = mini_dict if kind == "24hrMiniTicker" else rolling_dict
    return _dumps([build(x, div) for x in records])


def server_shutdown(r: tuple[Any, ...], div: int) -> bytes:
    return _dumps({"e": "serverShutdown", "E": r[0] // div})


_TIME_KEYS = ("E", "T", "O", "C")


def _micros(obj: Any) -> Any:
    if isinstance(obj, list):
        return [_micros(x) for x in obj]
    if not isinstance(obj, dict):
        return obj
    out = dict(obj)
    for key in _TIME_KEYS:
        if type(out.get(key)) is int:
            out[key] *= 1000
    if out.get("e") == "referencePrice" and type(out.get("t")) is int:
        out["t"] *= 1000
    k = out.get("k")
    if isinstance(k, dict):
        out["k"] = dict(k, t=k["t"] * 1000, T=k["T"] * 1000 + 999)
    return out


def to_micros(payload: bytes) -> bytes:
    """A millisecond payload converted to microseconds (every time field)."""
    return _dumps(_micros(orjson.loads(payload)))


def raw_text(r: tuple[Any, ...], div: int) -> bytes:
    """A record that already is the payload text (replay, faults): ``(ms_bytes, us_bytes)``;
    a missing microsecond text is converted from the millisecond one."""
    if div == 1:
        return bytes(r[1]) if r[1] is not None else to_micros(r[0])
    return bytes(r[0])


ENCODERS: dict[str, Callable[[tuple[Any, ...], int], bytes]] = {
    "trade": trade, "aggTrade": agg_trade, "bookTicker": book_ticker,
    "depthUpdate": depth_update, "depthN": partial_depth, "kline": kline,
    "24hrTicker": ticker, "24hrMiniTicker": mini_ticker, "rolling": rolling_ticker,
    "avgPrice": avg_price, "referencePrice": reference_price, "array": array,
    "serverShutdown": server_shutdown, "raw": raw_text,
}  # fmt: skip


def ws_frame(payload: bytes) -> bytes:
    """A complete unmasked WebSocket text frame (server to client) carrying ``payload``."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return bytes((0x81, 126, n >> 8, n & 0xFF)) + payload
    return b"\x81\x7f" + n.to_bytes(8, "big") + payload


class Frame:
    """One outgoing event: encoded lazily, at most once per (combined, time unit)."""

    __slots__ = ("_cache", "_encode", "_record", "stream")

    def __init__(self, stream: str, kind: str, record: Any) -> None:
        self.stream = stream
        self._encode = ENCODERS[kind]
        self._record = record
        self._cache: list[bytes | None] = [None, None, None, None, None, None]

    def payload(self, micros: bool) -> bytes:
        """The bare event text (what a raw ``/ws`` connection receives)."""
        i = 4 + micros
        text = self._cache[i]
        if text is None:
            text = self._cache[i] = self._encode(self._record, 1 if micros else 1000)
        return text

    def text(self, combined: bool, micros: bool) -> bytes:
        """The frame text for a connection: combined adds the ``{"stream","data"}`` wrapper."""
        raw = self.payload(micros)
        if not combined:
            return raw
        return b'{"stream":"' + self.stream.encode() + b'","data":' + raw + b"}"

    def wire(self, combined: bool, micros: bool) -> bytes:
        """The complete WebSocket frame for a connection (cached)."""
        i = combined * 2 + micros
        data = self._cache[i]
        if data is None:
            data = self._cache[i] = ws_frame(self.text(combined, micros))
        return data
