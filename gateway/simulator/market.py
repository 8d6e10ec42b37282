"""The deterministic market: every symbol's order flow and all streams derived from it.

Sans-I/O: a plain object driven with ``now`` (µs) passed in. Each symbol has its own
``random.Random(f"{seed}:{symbol}")``, so adding a symbol never changes another's trades.
`Market.generate` makes trades (each taker order moves the price by a random walk step,
then fills one to three trades at the touch); `Market.tick` closes candles at interval
boundaries and produces the periodic pushes (depth every 100 ms / 1 s, tickers every
second, open klines every two seconds). Both return emissions ``(stream, kind, record)``
for the streams in ``wanted`` only; the state advances the same whether or not anyone
listens, so what a client sees never depends on who else is subscribed.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Container
from typing import Any

from gateway.core.streams import DEPTH_LEVELS, INTERVALS, ROLLING_WINDOWS, normalize_symbol
from gateway.simulator.book import Book
from gateway.simulator.candles import ALIAS, CandleSet, SeriesKey
from gateway.simulator.tickers import WINDOW_US, average_price, window_stats

__all__ = ["Emission", "Market", "SymbolMarket"]

#: (stream name, record kind, record); the kind selects the encoder in `encode`.
Emission = tuple[str, str, Any]

_E8 = 100_000_000
_MS100 = 100_000
_SECOND = 1_000_000
_LOT = 100_000  # 0.001 in 1e-8 units


class SymbolMarket:
    """One symbol: its random source, book, candles, ids and bounded trade history."""

    def __init__(self, name: str, market: Market, now_us: int) -> None:
        self.name = name
        self.rng = random.Random(f"{market.seed}:{name}")
        self.tick_e8 = market.tick_e8
        start = round(market.start_price * _E8) // self.tick_e8
        self.book = Book(self.rng, start, market.book_levels, _LOT)
        self.candles = CandleSet(now_us, start * self.tick_e8, market.kline_history)
        self.volatility = market.volatility
        self.next_trade_id = 1 + self.rng.randrange(10_000_000)
        self.next_agg_id = 1 + self.rng.randrange(1_000_000)
        self.aggs: deque[tuple[int, int, int, int, int, int, bool]] = deque(
            maxlen=market.agg_history
        )
        #: Plain trades REST keeps (``historicalTrades``): (id, price, qty, time, maker).
        self.trades: deque[tuple[int, int, int, int, bool]] = deque(maxlen=market.trade_history)
        self.last_qty = 0
        self.last_trade_time = now_us
        self.changed = False
        low = name.lower()
        self.s_trade, self.s_agg, self.s_book = (
            f"{low}@trade",
            f"{low}@aggTrade",
            f"{low}@bookTicker",
        )
        self.s_depth = {100: f"{low}@depth@100ms", 1000: f"{low}@depth"}
        self.s_partial = {(n, sp): f"{low}@depth{n}{'@100ms' if sp == 100 else ''}"
                          for n in DEPTH_LEVELS for sp in (100, 1000)}  # fmt: skip
        self.s_ticker, self.s_mini = f"{low}@ticker", f"{low}@miniTicker"
        self.s_rolling = {w: f"{low}@ticker_{w}" for w in ROLLING_WINDOWS}
        self.s_avg, self.s_ref = f"{low}@avgPrice", f"{low}@referencePrice"
        self.s_klines: dict[SeriesKey, list[tuple[str, str]]] = {}
        for interval in INTERVALS:
            for tz in ("", "+08:00"):
                suffix = f"@{tz}" if tz else ""
                self.s_klines.setdefault(ALIAS[(interval, tz)], []).append(
                    (f"{low}@kline_{interval}{suffix}", interval)
                )

    def price_e8(self, ticks: int) -> int:
        """Ticks to 1e-8 units."""
        return ticks * self.tick_e8

    def _klines(self, closed: list[tuple[SeriesKey, list[int]]], now_us: int,
                wanted: Container[str], out: list[Emission]) -> None:  # fmt: skip
        for key, candle in closed:
            for stream, interval in self.s_klines[key]:
                if stream in wanted:
                    out.append(
                        (stream, "kline", (self.name, interval, tuple(candle), True, now_us))
                    )

    def order(self, now_us: int, wanted: Container[str], out: list[Emission],
              exact: tuple[int, int, bool] | None = None) -> int:  # fmt: skip
        """One taker order at ``now_us`` (random, or ``exact`` = (ticks, qty_e8, is_buy)).

        Appends its trade, aggTrade and bookTicker emissions; returns the number of trades.
        """
        rng, book = self.rng, self.book
        book.begin()
        if exact is None:
            sigma = self.volatility * book.best_bid
            step = round(rng.gauss(0.0, sigma)) if sigma > 0 else 0
            book.move_to(max(book.levels + 1, book.best_bid + step))
            r = rng.random()
            is_buy = r < 0.5
            qtys = [(int(rng.random() * 199) + 1) * _LOT]
            if r % 0.5 < 0.2:  # a larger taker order fills several makers
                qtys.append((int(rng.random() * 199) + 1) * _LOT)
                if r % 0.5 < 0.05:
                    qtys.append((int(rng.random() * 199) + 1) * _LOT)
        else:
            ticks, qty, is_buy = exact
            r = 0.5  # no jitter for an exact trade
            book.move_to(max(book.levels + 1, ticks - 1 if is_buy else ticks))
            qtys = [qty]
        price = self.price_e8(book.best_ask if is_buy else book.best_bid)
        book.take(is_buy, sum(qtys))
        if r < 0.25 or r >= 0.75:  # now and then a maker elsewhere moves
            book.jitter()
        maker = not is_buy
        first = tid = self.next_trade_id
        name, s_trade, add = self.name, self.s_trade, self.candles.add_trade
        send = s_trade in wanted
        keep = self.trades.append
        for qty in qtys:
            closed = add(now_us, price, qty, tid, maker)
            if closed:
                self._klines(closed, now_us, wanted, out)
            keep((tid, price, qty, now_us, maker))
            if send:
                out.append((s_trade, "trade", (name, tid, price, qty, now_us, maker, now_us)))
            tid += 1
        self.next_trade_id = tid
        total = sum(qtys)
        agg = (self.next_agg_id, price, total, first, self.next_trade_id - 1, now_us, maker)
        self.next_agg_id += 1
        self.aggs.append(agg)
        if self.s_agg in wanted:
            out.append((self.s_agg, "aggTrade", (name, *agg, now_us)))
        if self.s_book in wanted:
            out.append((self.s_book, "bookTicker", self.book_ticker()))
        self.last_qty = qtys[-1]
        self.last_trade_time = now_us
        self.changed = True
        return len(qtys)

    def book_ticker(self) -> tuple[str, int, int, int, int, int]:
        """(symbol, update id, bid, bid qty, ask, ask qty) in 1e-8 units."""
        b = self.book
        return (self.name, b.update_id, self.price_e8(b.best_bid), b.bids[b.best_bid],
                self.price_e8(b.best_ask), b.asks[b.best_ask])  # fmt: skip

    def depth(self, limit: int) -> tuple[int, list[tuple[int, int]], list[tuple[int, int]]]:
        """(last update id, bids, asks), prices in 1e-8 units, best first."""
        bids, asks = self.book.top(limit)
        e8 = self.tick_e8
        return (self.book.update_id, [(p * e8, q) for p, q in bids],
                [(p * e8, q) for p, q in asks])  # fmt: skip

    def boundary(self, b_us: int, now_us: int, wanted: Container[str], out: list[Emission]) -> None:
        """Periodic work for the 100 ms boundary ``b_us`` (emitted at ``now_us``)."""
        one_s = b_us % _SECOND == 0
        if one_s:
            self._klines(self.candles.advance(b_us), now_us, wanted, out)
        for speed in (100, 1000) if one_s else (100,):
            diff = self.book.flush(speed)
            stream = self.s_depth[speed]
            if diff is not None and stream in wanted:
                e8 = self.tick_e8
                first, last, bids, asks = diff
                out.append((stream, "depthUpdate", (self.name, first, last,
                            [(p * e8, q) for p, q in bids], [(p * e8, q) for p, q in asks],
                            now_us)))  # fmt: skip
            for n in DEPTH_LEVELS:
                stream = self.s_partial[(n, speed)]
                if stream in wanted:
                    out.append((stream, "depthN", self.depth(n)))
        if not one_s:
            return
        if self.s_ticker in wanted:
            out.append((self.s_ticker, "24hrTicker", self.ticker(now_us)))
        if self.s_mini in wanted:
            out.append((self.s_mini, "24hrMiniTicker", self.mini_ticker(now_us)))
        for w, stream in self.s_rolling.items():
            if stream in wanted:
                out.append((stream, "rolling", self.rolling_ticker(now_us, w)))
        if self.s_avg in wanted:
            out.append((self.s_avg, "avgPrice", (self.name, now_us,
                        average_price(self.candles, now_us), self.last_trade_time)))  # fmt: skip
        if self.s_ref in wanted:
            out.append((self.s_ref, "referencePrice", (self.name, self.candles.last_price, now_us)))
        if b_us % (2 * _SECOND) == 0:
            for key, names in self.s_klines.items():
                if key[0] == "1s":
                    continue
                for stream, interval in names:
                    if stream in wanted:
                        candle = tuple(self.candles.current(key))
                        out.append((stream, "kline", (self.name, interval, candle, False, now_us)))

    def ticker(self, now_us: int) -> tuple[Any, ...]:
        """24h ticker record: (symbol, E, stats, last qty, bid, bid qty, ask, ask qty)."""
        bt = self.book_ticker()
        stats = window_stats(self.candles, now_us, WINDOW_US["24h"])
        return (self.name, now_us, stats, self.last_qty, bt[2], bt[3], bt[4], bt[5])

    def mini_ticker(self, now_us: int) -> tuple[Any, ...]:
        """Mini ticker record: (symbol, E, stats)."""
        return (self.name, now_us, window_stats(self.candles, now_us, WINDOW_US["24h"]))

    def rolling_ticker(self, now_us: int, window: str) -> tuple[Any, ...]:
        """Rolling-window ticker record: (symbol, E, window, stats)."""
        return (self.name, now_us, window, window_stats(self.candles, now_us, WINDOW_US[window]))


class Market:
    """All symbols of the simulated exchange, created on first use."""

    def __init__(
        self, *, symbols: tuple[str, ...], seed: int = 0, start_price: float = 100.0,
        tick_size: float = 0.01, volatility: float = 0.00005, book_levels: int = 100,
        agg_history: int = 50_000, kline_history: int = 1000, now_us: int = 0,
        trade_history: int = 50_000,
    ) -> None:  # fmt: skip
        self.seed, self.start_price, self.volatility = seed, start_price, volatility
        self.tick_e8 = round(tick_size * _E8)
        self.book_levels, self.agg_history, self.kline_history = (
            book_levels, agg_history, kline_history)  # fmt: skip
        self.trade_history = trade_history
        self.listed = tuple(normalize_symbol(s) for s in symbols)
        self._symbols: dict[str, SymbolMarket] = {}
        self._order: list[SymbolMarket] = []
        self._cursor = 0
        self.trades_total = 0
        self._next_boundary = (now_us // _MS100 + 1) * _MS100
        self.now_us = now_us
        for s in self.listed:
            self.symbol(s)

    def symbol(self, name: str) -> SymbolMarket:
        """The symbol's market (any valid name; unlisted ones are created on demand)."""
        name = normalize_symbol(name)
        sym = self._symbols.get(name)
        if sym is None:
            sym = self._symbols[name] = SymbolMarket(name, self, self.now_us)
            self._order.append(sym)
        return sym

    def get(self, name: str) -> SymbolMarket | None:
        """The symbol's market if it exists (no creation)."""
        return self._symbols.get(name.upper())

    @property
    def active(self) -> list[SymbolMarket]:
        """Symbols that trade, in creation order."""
        return self._order

    def generate(self, now_us: int, trades: int, wanted: Container[str],
                 symbol: str | None = None) -> list[Emission]:  # fmt: skip
        """At least ``trades`` trades at ``now_us``, round-robin over symbols (or one)."""
        out: list[Emission] = []
        out.extend(self.tick(now_us, wanted))
        order = self._order if symbol is None else [self.symbol(symbol)]
        done = 0
        while done < trades:
            if symbol is None:
                sym = order[self._cursor % len(order)]
                self._cursor += 1
            else:
                sym = order[0]
            done += sym.order(now_us, wanted, out)
        self.trades_total += done
        return out

    def inject_trade(
        self, symbol: str, price: float, quantity: float, now_us: int,
        wanted: Container[str], is_buy: bool | None = None,
    ) -> tuple[int, list[Emission]]:  # fmt: skip
        """One trade at exactly ``price`` (on the tick grid) and ``quantity``; returns its id.

        The book is moved so that ``price`` is the touch, so klines, tickers and the book
        stay consistent. ``is_buy`` (taker side) defaults to buy when the price is above
        the current best bid.
        """
        sym = self.symbol(symbol)
        ticks_f = price * _E8 / sym.tick_e8
        ticks = round(ticks_f)
        if abs(ticks - ticks_f) > 1e-6 or ticks <= sym.book.levels + 1:
            raise ValueError(
                f"price {price} is not a positive multiple of the tick size "
                f"{sym.tick_e8 / _E8} above {sym.book.levels + 1} ticks"
            )
        qty = round(quantity * _E8)
        if qty <= 0:
            raise ValueError(f"quantity must be positive, got {quantity}")
        out = self.tick(now_us, wanted)
        if is_buy is None:
            is_buy = ticks > sym.book.best_bid
        trade_id = sym.next_trade_id
        self.trades_total += sym.order(now_us, wanted, out, exact=(ticks, qty, is_buy))
        return trade_id, out

    def tick(self, now_us: int, wanted: Container[str]) -> list[Emission]:
        """Run every 100 ms boundary up to ``now_us``: candle closes and periodic pushes."""
        out: list[Emission] = []
        if now_us < self.now_us:
            return out
        self.now_us = now_us
        b = self._next_boundary
        if now_us - b > 5 * _SECOND:
            # far behind (a long pause): close candles, then skip the missed pushes
            for sym in self._order:
                sym._klines(sym.candles.advance(now_us), now_us, wanted, out)
            b = now_us // _SECOND * _SECOND
        while b <= now_us:
            for sym in self._order:
                sym.boundary(b, now_us, wanted, out)
            if b % _SECOND == 0:
                self._arrays(now_us, wanted, out)
            b += _MS100
        self._next_boundary = b
        return out

    def _arrays(self, now_us: int, wanted: Container[str], out: list[Emission]) -> None:
        changed = [s for s in self._order if s.changed]
        for s in self._order:
            s.changed = False
        if not changed:
            return
        if "!miniTicker@arr" in wanted:
            out.append(("!miniTicker@arr", "array",
                        ("24hrMiniTicker", [s.mini_ticker(now_us) for s in changed])))  # fmt: skip
        for w in ROLLING_WINDOWS:
            stream = f"!ticker_{w}@arr"
            if stream in wanted:
                rows = [s.rolling_ticker(now_us, w) for s in changed]
                out.append((stream, "array", ("rolling", rows)))
