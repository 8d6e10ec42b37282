"""A local order book kept in sync from diff-depth events and a REST snapshot (pure).

Follows binance-market-streams.md section 5.1. The caller (an actor) feeds
every ``<symbol>@depth[@100ms]`` event to `OrderBookSync.on_diff` and the
``GET /api/v3/depth`` answer to `OrderBookSync.on_snapshot`; each returns the
`SyncState`, which tells the caller what to do:

- ``BUFFERING``: no book yet; diffs are buffered while a snapshot is awaited
  (the initial state: the caller fetches a snapshot at start);
- ``SYNCED``: the book is live;
- ``NEEDS_SNAPSHOT``: fetch a (new) snapshot. Entered when events were missed
  (a diff with ``U > book_id + 1``: the book is discarded and buffering starts
  again from that diff), when the buffer overflowed (``max_buffer`` events; the
  oldest are dropped, so a snapshot already requested may now be too old), or
  when a snapshot was older than the buffered stream (``lastUpdateId + 1 <
  first U``). Call `snapshot_requested` when the request goes out (optional:
  it only moves the state back to ``BUFFERING``).

Rules applied (5.1): buffered diffs with ``u <= lastUpdateId`` are dropped; the
first applied one has ``U <= lastUpdateId + 1 <= u``; afterwards a diff with
``u <= book_id`` is stale and ignored, one with ``U > book_id + 1`` is a gap,
anything else is applied (``U == book_id + 1`` in steady state; an overlap, as in
a make-before-break rotation, is harmless because quantities are absolute).
The buffer is kept contiguous: a hole inside it drops what came before the hole.

Levels are floats keyed by price. Prices parsed from decimal strings map equal
decimal values to equal floats whatever their zero padding, which is the
property section 5.1 asks of a price key.
"""

from __future__ import annotations

import enum
import heapq
from collections import deque
from collections.abc import Iterable

from gateway.core.events import DepthUpdate, Level

__all__ = ["OrderBookSync", "SyncState"]


class SyncState(enum.Enum):
    """Where the local book is (see the module docstring for what the caller does)."""

    BUFFERING = "buffering"
    SYNCED = "synced"
    NEEDS_SNAPSHOT = "needs_snapshot"


class OrderBookSync:
    """One symbol's local order book and its synchronisation state machine.

    Counters: ``applied`` (diffs applied), ``stale`` (ignored, already reflected),
    ``gaps`` (missed events detected), ``overflows`` (buffered diffs dropped),
    ``old_snapshots`` (snapshots refused as too old), ``syncs`` (times SYNCED).
    """

    __slots__ = (
        "_asks",
        "_best_ask",
        "_best_ask_ok",
        "_best_bid",
        "_best_bid_ok",
        "_bids",
        "_buffer",
        "applied",
        "gaps",
        "last_update_id",
        "max_buffer",
        "old_snapshots",
        "overflows",
        "stale",
        "state",
        "symbol",
        "syncs",
    )

    def __init__(self, symbol: str, max_buffer: int = 1000) -> None:
        if max_buffer < 1:
            raise ValueError(f"max_buffer must be >= 1, got {max_buffer!r}")
        self.symbol = symbol
        self.max_buffer = max_buffer
        self.state = SyncState.BUFFERING
        #: The book's update id (the last ``u`` applied), None while not synced.
        self.last_update_id: int | None = None
        self._bids: dict[float, float] = {}
        self._asks: dict[float, float] = {}
        self._best_bid: float | None = None
        self._best_bid_ok = True  # False: the cached best was removed; recompute lazily
        self._best_ask: float | None = None
        self._best_ask_ok = True
        self._buffer: deque[DepthUpdate] = deque()
        self.applied = self.stale = self.gaps = self.overflows = 0
        self.old_snapshots = self.syncs = 0

    # -- input --------------------------------------------------------------------------

    def on_diff(self, update: DepthUpdate) -> SyncState:
        """Feed one diff-depth event; returns the state after it."""
        if self.state is SyncState.SYNCED:
            book_id = self.last_update_id
            assert book_id is not None
            if update.final_update_id <= book_id:
                self.stale += 1
            elif update.first_update_id > book_id + 1:
                self._lose_sync(update)
            else:
                self._apply(update)
            return self.state
        self._buffer_diff(update)
        return self.state

    def on_snapshot(
        self, last_update_id: int, bids: Iterable[Level], asks: Iterable[Level]
    ) -> SyncState:
        """Feed a REST depth snapshot; returns ``SYNCED``, or ``NEEDS_SNAPSHOT`` if it is
        older than the buffered stream. While ``SYNCED``, a snapshot not newer than
        the book is ignored and a newer one replaces the book."""
        if self.state is SyncState.SYNCED:
            assert self.last_update_id is not None
            if last_update_id <= self.last_update_id:
                return self.state
        buffer = self._buffer
        if buffer and last_update_id + 1 < buffer[0].first_update_id:
            self.old_snapshots += 1
            self.state = SyncState.NEEDS_SNAPSHOT
            return self.state
        self._bids = {p: q for p, q in bids if q != 0.0}
        self._asks = {p: q for p, q in asks if q != 0.0}
        self._best_bid_ok = self._best_ask_ok = False
        self.last_update_id = last_update_id
        self.state = SyncState.SYNCED
        self.syncs += 1
        pending, self._buffer = buffer, deque()
        for update in pending:
            if self.state is SyncState.SYNCED:
                self.on_diff(update)
            else:  # a gap inside the replay (cannot happen with a contiguous buffer)
                self._buffer_diff(update)
        return self.state

    def snapshot_requested(self) -> None:
        """The caller asked for a snapshot: ``NEEDS_SNAPSHOT`` -> ``BUFFERING``."""
        if self.state is SyncState.NEEDS_SNAPSHOT:
            self.state = SyncState.BUFFERING

    def reset(self) -> None:
        """Drop the book and the buffer: ``NEEDS_SNAPSHOT`` (e.g. after a reconnect that
        lost continuity and will not be detected by ids)."""
        self._clear_book()
        self._buffer.clear()
        self.state = SyncState.NEEDS_SNAPSHOT

    # -- internals ----------------------------------------------------------------------

    def _buffer_diff(self, update: DepthUpdate) -> None:
        buffer = self._buffer
        if buffer:
            last = buffer[-1].final_update_id
            if update.final_update_id <= last:
                self.stale += 1
                return
            if update.first_update_id > last + 1:
                buffer.clear()  # a hole: no snapshot can bridge what came before it
        buffer.append(update)
        if len(buffer) > self.max_buffer:
            buffer.popleft()
            self.overflows += 1
            self.state = SyncState.NEEDS_SNAPSHOT

    def _lose_sync(self, update: DepthUpdate) -> None:
        self.gaps += 1
        self._clear_book()
        self._buffer.clear()
        self._buffer.append(update)
        self.state = SyncState.NEEDS_SNAPSHOT

    def _clear_book(self) -> None:
        self._bids = {}
        self._asks = {}
        self._best_bid = self._best_ask = None
        self._best_bid_ok = self._best_ask_ok = True
        self.last_update_id = None

    def _apply(self, update: DepthUpdate) -> None:
        bids = self._bids
        best = self._best_bid
        ok = self._best_bid_ok
        for price, qty in update.bids:
            if qty == 0.0:
                if bids.pop(price, None) is not None and price == best:
                    ok = False
            else:
                bids[price] = qty
                if ok and (best is None or price > best):
                    best = price
        self._best_bid, self._best_bid_ok = best, ok
        asks = self._asks
        best = self._best_ask
        ok = self._best_ask_ok
        for price, qty in update.asks:
            if qty == 0.0:
                if asks.pop(price, None) is not None and price == best:
                    ok = False
            else:
                asks[price] = qty
                if ok and (best is None or price < best):
                    best = price
        self._best_ask, self._best_ask_ok = best, ok
        self.last_update_id = update.final_update_id
        self.applied += 1

    # -- views --------------------------------------------------------------------------

    def best_bid(self) -> Level | None:
        """The highest bid ``(price, quantity)``, or None (empty book or not synced)."""
        if not self._best_bid_ok:
            self._best_bid = max(self._bids) if self._bids else None
            self._best_bid_ok = True
        price = self._best_bid
        return None if price is None else (price, self._bids[price])

    def best_ask(self) -> Level | None:
        """The lowest ask ``(price, quantity)``, or None (empty book or not synced)."""
        if not self._best_ask_ok:
            self._best_ask = min(self._asks) if self._asks else None
            self._best_ask_ok = True
        price = self._best_ask
        return None if price is None else (price, self._asks[price])

    def top(self, n: int) -> tuple[list[Level], list[Level]]:
        """The best ``n`` levels a side: bids highest first, asks lowest first."""
        return (
            heapq.nlargest(n, self._bids.items()),
            heapq.nsmallest(n, self._asks.items()),
        )

    @property
    def bids(self) -> dict[float, float]:
        """A copy of the bid levels (price -> quantity)."""
        return dict(self._bids)

    @property
    def asks(self) -> dict[float, float]:
        """A copy of the ask levels (price -> quantity)."""
        return dict(self._asks)

    @property
    def buffered(self) -> int:
        """How many diffs wait for a snapshot."""
        return len(self._buffer)

    @property
    def first_buffered_id(self) -> int | None:
        """``U`` of the oldest buffered diff: a snapshot must have ``lastUpdateId >= U - 1``."""
        return self._buffer[0].first_update_id if self._buffer else None

    def __repr__(self) -> str:
        return (
            f"OrderBookSync({self.symbol!r}, {self.state.value}, id={self.last_update_id}, "
            f"bids={len(self._bids)}, asks={len(self._asks)}, buffered={len(self._buffer)})"
        )
