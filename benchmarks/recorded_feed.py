"""Real captured frames, looped: the Binance recordings of tests/data/binance-recorded
(depth diffs, book tickers, klines and aggregate trades of about 30 real symbols, in the
order they arrived) spread over the benchmark's symbols, for the feed server's
``--frames-from recorded``.

Each pass over the recordings maps a recorded symbol to another benchmark symbol, and
every id is rewritten so that each benchmark symbol's streams stay contiguous across
frames and passes, as the exchange's would be today: aggregate-trade ids and their trade
ids, depth update ids (``U``..``u``, keeping each diff's width), book-ticker update ids,
and kline open times (one minute after the other, in the connection's time unit; the
last update of each candle is its closing one, as the exchange sends it). Event
times become the feed's placeholder, patched to the send time. Prices, quantities,
levels and the mix of kinds are the exchange's own.
"""

from __future__ import annotations

import copy
import time
from pathlib import Path
from typing import Any, Protocol

import orjson

from gateway.simulator.encode import ws_frame

RECORDED = Path(__file__).resolve().parent.parent / "tests" / "data" / "binance-recorded"
#: The recordings, in order (each a stream.txt of ``receive_time: frame`` lines).
RECORDINGS = ("2021-04-17", "2021-08-14", "2021-10-12")
#: The stream kinds the recordings carry (each benchmark symbol subscribes to all four).
KINDS = ("aggTrade", "kline_1m", "depth@100ms", "bookTicker")
_MINUTE_MS = 60_000
_DAY_MS = 86_400_000


class Contains(Protocol):
    """The symbols (indices) a client wants."""

    def __contains__(self, sym: int) -> bool: ...


def recorded_rows() -> list[tuple[str, dict[str, Any]]]:
    """``(recorded symbol, data)`` of every recorded frame, in arrival order."""
    rows = []
    for name in RECORDINGS:
        with open(RECORDED / name / "stream.txt", encoding="utf-8") as f:
            next(f)  # the URL line
            for line in f:
                _, _, frame = line.strip().partition(": ")
                if frame:
                    obj = orjson.loads(frame)
                    rows.append((obj["stream"].partition("@")[0], obj["data"]))
    return rows


class Recorded:
    """``frames`` frames of the recordings over ``names`` (lower-case symbols), with the
    rewrite of each pass (`span`), the same interface as the feed server's `Rendered`."""

    def __init__(self, names: list[str], frames: int, token: int, micros: bool) -> None:
        rows = recorded_rows()
        ranks = {sym: i for i, sym in enumerate(dict.fromkeys(sym for sym, _ in rows))}
        self.names, self.token, self.unit = names, token, 1000 if micros else 1
        self.syms: list[int] = []
        self._templates: list[dict[str, Any]] = []
        counters: dict[tuple[int, str], int] = {}
        last_open: dict[int, int] = {}
        self._fields: list[list[tuple[str, int, tuple[int, str]]]] = []
        for i in range(frames):
            sym_name, data = rows[i % len(rows)]
            sym = (ranks[sym_name] + (i // len(rows)) * len(ranks)) % len(names)
            self.syms.append(sym)
            self._templates.append(data)
            self._fields.append(self._ids(sym, data, counters, last_open))
        #: Per (symbol, counter): how far a pass moves it (ids continue where they ended).
        self._per_pass = counters
        #: The kline frames that close their candle: the last of each candle of a symbol
        #: (a symbol takes another recorded symbol's frames on the next pass over them,
        #: and the exchange always sends a candle's final update before the next candle).
        last_of: dict[tuple[int, int], int] = {}
        for i, fields in enumerate(self._fields):
            if fields and fields[0][0] == "k.t":
                last_of[(self.syms[i], fields[0][1])] = i
        self._closing = set(last_of.values())
        self._base_open = (time.time_ns() // 1_000_000 // _DAY_MS) * _DAY_MS

    def __len__(self) -> int:
        return len(self.syms)

    @staticmethod
    def _ids(sym: int, data: dict[str, Any], counters: dict[tuple[int, str], int],
             last_open: dict[int, int]) -> list[tuple[str, int, tuple[int, str]]]:  # fmt: skip
        """The id fields of one frame in pass 0 as ``(field, value, counter)``; advances
        the symbol's counters."""

        def take(name: str, width: int) -> int:
            key = (sym, name)
            start = counters.get(key, 0) + 1
            counters[key] = start + width
            return start

        e = data.get("e")
        if e == "aggTrade":
            first = take("trade", data["l"] - data["f"])
            return [("a", take("agg", 0), (sym, "agg")), ("f", first, (sym, "trade")),
                    ("l", first + data["l"] - data["f"], (sym, "trade"))]  # fmt: skip
        if e == "depthUpdate":
            first = take("depth", data["u"] - data["U"])
            return [("U", first, (sym, "depth")),
                    ("u", first + data["u"] - data["U"], (sym, "depth"))]  # fmt: skip
        if e == "kline":
            opened = data["k"]["t"]
            if last_open.get(sym) != opened:  # a new candle: the next minute
                last_open[sym] = opened
                counters[(sym, "minute")] = counters.get((sym, "minute"), 0) + 1
            return [("k.t", counters[(sym, "minute")], (sym, "minute"))]
        return [("u", take("book", 0), (sym, "book"))]  # bookTicker

    def _frame(self, i: int, loop: int) -> bytes:
        return ws_frame(self.text(i, loop))

    def text(self, i: int, loop: int) -> bytes:
        """Frame ``i`` of pass ``loop``: the combined-stream JSON, as the exchange sends it."""
        data = copy.deepcopy(self._templates[i]) if "k" in self._templates[i] else dict(
            self._templates[i])  # fmt: skip
        name = self.names[self.syms[i]]
        data["s"] = name.upper()
        for field, value, key in self._fields[i]:
            value += loop * self._per_pass[key]
            if field == "k.t":
                opened = (self._base_open + value * _MINUTE_MS) * self.unit
                k = data["k"]
                k.update(t=opened, T=opened + _MINUTE_MS * self.unit - 1, s=name.upper(),
                         x=i in self._closing)  # fmt: skip
            else:
                data[field] = value
        if "E" in data:
            data["E"] = self.token
        kind = {"aggTrade": "aggTrade", "kline": "kline_1m", "depthUpdate": "depth@100ms"}.get(
            data.get("e", ""), "bookTicker")  # fmt: skip
        return orjson.dumps({"stream": f"{name}@{kind}", "data": data})

    def span(self, start: int, end: int, loop: int, wanted: Contains) -> bytes:
        """Frames ``start:end`` of pass ``loop`` of the symbols in ``wanted``, joined."""
        syms = self.syms
        return b"".join(self._frame(i, loop) for i in range(start, end) if syms[i] in wanted)
