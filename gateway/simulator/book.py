"""One symbol's order book around a moving best bid (sans-I/O; prices in ticks).

The book keeps ``levels`` price levels a side, one tick apart, with a one-tick spread.
Moving the best bid re-centres it (levels that cross or fall off are removed, new ones
appear with random quantities); a trade takes quantity off the touch. Every step gets
one update id, and every level change is recorded for the two diff-depth speeds, so a
REST snapshot plus the diffs reproduces the book exactly (section 5.1 of the protocol).
"""

from __future__ import annotations

import random

__all__ = ["Book", "DepthDiff"]

#: (first update id, last update id, bid changes, ask changes) with [ticks, qty] rows
DepthDiff = tuple[int, int, list[tuple[int, int]], list[tuple[int, int]]]


class _Pending:
    __slots__ = ("asks", "bids", "first")

    def __init__(self) -> None:
        self.first = 0
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}


class Book:
    """Bids and asks as ``{ticks: qty_e8}`` with update ids and pending diffs per speed."""

    __slots__ = ("_fast", "_lot", "_rng", "_slow", "asks", "best_bid", "bids", "levels",
                 "update_id")  # fmt: skip

    def __init__(self, rng: random.Random, best_bid: int, levels: int, lot_e8: int) -> None:
        self._rng = rng
        self._lot = lot_e8
        self.levels = levels
        self.best_bid = best_bid
        self.update_id = 1_000_000 + rng.randrange(1_000_000)
        self._fast = _Pending()  # changes for the 100 ms diff stream
        self._slow = _Pending()  # changes for the 1000 ms diff stream
        self.bids = {best_bid - i: self.new_qty() for i in range(levels)}
        self.asks = {best_bid + 1 + i: self.new_qty() for i in range(levels)}

    @property
    def best_ask(self) -> int:
        """Lowest ask price in ticks (always best bid + 1)."""
        return self.best_bid + 1

    def new_qty(self) -> int:
        """A random resting quantity (1e-8 units)."""
        return (int(self._rng.random() * 4999) + 1) * self._lot

    def begin(self) -> int:
        """Start one book event: the next update id, shared by all changes until the next."""
        uid = self.update_id = self.update_id + 1
        if not self._fast.first:
            self._fast.first = uid
        if not self._slow.first:
            self._slow.first = uid
        return uid

    def _set(self, side: dict[int, int], is_bid: bool, price: int, qty: int) -> None:
        if qty:
            side[price] = qty
        else:
            side.pop(price, None)
        if is_bid:
            self._fast.bids[price] = self._slow.bids[price] = qty
        else:
            self._fast.asks[price] = self._slow.asks[price] = qty

    def set_bid(self, price: int, qty: int) -> None:
        """Set (qty > 0) or remove (qty == 0) a bid level, recording the change."""
        self._set(self.bids, True, price, qty)

    def set_ask(self, price: int, qty: int) -> None:
        """Set (qty > 0) or remove (qty == 0) an ask level, recording the change."""
        self._set(self.asks, False, price, qty)

    def move_to(self, best_bid: int) -> None:
        """Re-centre the book on a new best bid (part of the current book event)."""
        old, n = self.best_bid, self.levels
        if best_bid == old:
            return
        self.best_bid = best_bid
        if abs(best_bid - old) >= n:
            for p in list(self.bids):
                self.set_bid(p, 0)
            for p in list(self.asks):
                self.set_ask(p, 0)
            for i in range(n):
                self.set_bid(best_bid - i, self.new_qty())
                self.set_ask(best_bid + 1 + i, self.new_qty())
            return
        if best_bid > old:
            for p in range(old + 1, best_bid + 1):  # asks crossed: they become bids
                self.set_ask(p, 0)
                self.set_bid(p, self.new_qty())
            for p in range(old - n + 1, best_bid - n + 1):
                self.set_bid(p, 0)
            for p in range(old + n + 1, best_bid + n + 1):
                self.set_ask(p, self.new_qty())
        else:
            for p in range(best_bid + 1, old + 1):  # bids crossed: they become asks
                self.set_bid(p, 0)
                self.set_ask(p, self.new_qty())
            for p in range(best_bid + n + 1, old + n + 1):
                self.set_ask(p, 0)
            for p in range(best_bid - n + 1, old - n + 1):
                self.set_bid(p, self.new_qty())

    def take(self, is_buy: bool, qty: int) -> None:
        """A taker order fills ``qty`` at the touch; an emptied level is refilled by makers."""
        if is_buy:
            price = self.best_ask
            left = self.asks.get(price, 0) - qty
            self.set_ask(price, left if left > 0 else self.new_qty())
        else:
            price = self.best_bid
            left = self.bids.get(price, 0) - qty
            self.set_bid(price, left if left > 0 else self.new_qty())

    def jitter(self) -> None:
        """A maker somewhere in the book changes its quantity."""
        r = self._rng.random() * 2
        offset = int((r % 1.0) * self.levels)
        if r < 1.0:
            self.set_bid(self.best_bid - offset, self.new_qty())
        else:
            self.set_ask(self.best_ask + offset, self.new_qty())

    def flush(self, speed_ms: int) -> DepthDiff | None:
        """Take the changes pending for one diff speed (None when nothing changed)."""
        pend = self._fast if speed_ms == 100 else self._slow
        if not pend.first:
            return None
        diff = (pend.first, self.update_id, sorted(pend.bids.items(), reverse=True),
                sorted(pend.asks.items()))  # fmt: skip
        if speed_ms == 100:
            self._fast = _Pending()
        else:
            self._slow = _Pending()
        return diff

    def top(self, limit: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
        """The best ``limit`` levels a side: bids high to low, asks low to high."""
        bids = sorted(self.bids.items(), reverse=True)[:limit]
        asks = sorted(self.asks.items())[:limit]
        return bids, asks
