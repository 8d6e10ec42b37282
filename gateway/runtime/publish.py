"""Fan-out to user code: per-subscriber bounded channels and callback dispatch.

Symbol actors publish synchronously (`Publisher.publish`); nothing here ever
blocks them. Each subscriber has its own bounded mailbox: latest-value events
(tickers, book tickers, partial depth) conflate per symbol, the oldest of the rest is
dropped and counted when a subscriber falls behind. Callbacks run in one dispatcher
task outside the symbol actors; a raising callback is logged and counted, never fatal.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, TypeAlias

import trio

from actors import Mailbox, Overflow
from gateway.core.events import (
    AvgPrice,
    BookTicker,
    GatewayErrorEvent,
    MiniTicker,
    PartialDepth,
    ReferencePrice,
    RollingTicker,
    Ticker,
)

log = logging.getLogger(__name__)

Callback = Callable[[Any], Awaitable[None] | None]

#: Who takes events of one type: inboxes, callbacks, and whether they go in line (never
#: conflated); `_NOBODY` when nobody does.
_Route: TypeAlias = "tuple[tuple[_Inbox, ...], tuple[Callback, ...], bool] | tuple[()]"
_NOBODY: tuple[()] = ()

_LATEST_VALUE: frozenset[type] = frozenset(
    {Ticker, MiniTicker, RollingTicker, BookTicker, AvgPrice, ReferencePrice, PartialDepth}
)


async def invoke(callback: Callable[[Any], Awaitable[None] | None], arg: Any) -> None:
    """Call user code that may be sync or async, and wait for it if it is async."""
    result = callback(arg)
    if inspect.isawaitable(result):
        await result


class _Inbox(Mailbox[Any]):
    """The publisher's side of one subscription: a conflating mailbox with the filter
    the publisher indexes it by."""

    __slots__ = ("kinds", "symbols")

    def __init__(self, symbols: frozenset[str] | None, kinds: frozenset[type] | None,
                 bound: int) -> None:  # fmt: skip
        def key(ev: Any) -> object:
            kind = type(ev)
            return (kind, ev.symbol) if kind in _LATEST_VALUE else None  # None: kept in line

        super().__init__(bound, Overflow.CONFLATE, key=key)
        self.symbols = symbols
        self.kinds = kinds


#: Events ``async for`` over a subscription takes per checkpoint when they are queued:
#: the connection's receive loop delivers up to 64 frames a wake-up.
STREAK = 64


class Subscription(trio.abc.ReceiveChannel[Any]):
    """A subscriber's own bounded channel of events: the receive side only.

    Use as a context manager (``with`` or ``async with``), or call `close`, to stop
    receiving; `dropped` counts events this subscriber lost by falling behind.
    """

    __slots__ = ("_inbox", "_publisher", "_streak")

    def __init__(self, publisher: Publisher, inbox: _Inbox) -> None:
        self._publisher = publisher
        self._inbox = inbox
        self._streak = 0  # events `receive` may still take without a checkpoint

    @property
    def symbols(self) -> frozenset[str] | None:
        """The symbols this subscription receives (None: all)."""
        return self._inbox.symbols

    @property
    def kinds(self) -> frozenset[type] | None:
        """The event types this subscription receives (None: all)."""
        return self._inbox.kinds

    @property
    def dropped(self) -> int:
        """Events lost by falling behind (the oldest first; latest-value kinds conflate)."""
        return self._inbox.dropped

    @property
    def conflated(self) -> int:
        """The part of `dropped` that was a latest-value event (ticker, book ticker ...)
        replaced in line by a newer one of its symbol: superseded, not missed."""
        return self._inbox.conflated

    @property
    def closed(self) -> bool:
        """True once `close` was called."""
        return self._inbox.closed

    def __len__(self) -> int:
        """Events queued now."""
        return len(self._inbox)

    async def __anext__(self) -> Any:
        """``async for``: the next event, with a checkpoint every `STREAK` events, not
        each: events already queued are taken without one, so that a subscriber keeps up
        with a connection that delivers its frames in bursts (`RECEIVE_BURST` a wake-up).
        Cancellation is seen within `STREAK` events, and at once when the queue is empty.
        `receive` keeps trio's rule (a checkpoint every call)."""
        if self._streak:
            self._streak -= 1
            try:
                return self._inbox.receive_nowait()
            except trio.WouldBlock:
                pass
            except trio.EndOfChannel:
                raise StopAsyncIteration from None
        self._streak = STREAK - 1
        try:
            return await self._inbox.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None

    async def receive(self) -> Any:
        """The next event (a checkpoint each call; ``async for`` takes queued events in
        streaks, `receive_batch` many at once); `trio.EndOfChannel` once closed and
        drained."""
        return await self._inbox.receive()

    def receive_nowait(self) -> Any:
        """The next event if one is queued; raises `trio.WouldBlock` otherwise."""
        return self._inbox.receive_nowait()

    async def receive_batch(self, max_items: int) -> list[Any]:
        """Up to ``max_items`` events, waiting only for the first (bursts: a REST page of
        backfilled rows is published at once); raises `trio.EndOfChannel` when done."""
        return await self._inbox.receive_batch(max_items)

    def drain_nowait(self, max_items: int) -> list[Any]:
        """Up to ``max_items`` queued events without waiting; raises `trio.WouldBlock`
        when none is queued."""
        return self._inbox.drain_nowait(max_items)

    def close(self) -> None:
        """Stop this subscription; events already queued can still be received."""
        self._publisher.unsubscribe(self)
        self._inbox.close()

    async def aclose(self) -> None:
        """`close`, as trio's async resources do (a checkpoint)."""
        self.close()
        await trio.lowlevel.checkpoint()

    def __enter__(self) -> Subscription:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"<Subscription {self._inbox!r}>"


class Publisher:
    """Routes published events to matching subscriptions and to the callback queue."""

    def __init__(self, callback_buffer: int = 10_000) -> None:
        self._subs: list[Subscription] = []
        self._by_type: dict[type, list[_Inbox]] = {}
        self._catch_all: list[_Inbox] = []
        self._callbacks: dict[type, list[Callback]] = {}
        #: Per event type, who takes it (`_route_of`): the hot path's one lookup.
        self._routes: dict[type, _Route] = {}
        self.callback_queue: Mailbox[tuple[Callback, Any]] = Mailbox(
            callback_buffer, Overflow.DROP_NEWEST
        )
        self.callback_errors = 0
        self.callback_calls = 0
        self.error_callbacks: list[Callback] = []

    # Subscriptions -------------------------------------------------------

    def subscribe(
        self,
        symbols: Iterable[str] | None = None,
        kinds: Iterable[type] | None = None,
        bound: int = 1000,
    ) -> Subscription:
        """A new subscription for ``symbols`` (None: all) and event ``kinds`` (None: all)."""
        sub = Subscription(self, _Inbox(
            frozenset(s.upper() for s in symbols) if symbols is not None else None,
            frozenset(kinds) if kinds is not None else None,
            bound,
        ))  # fmt: skip
        self._subs.append(sub)
        self._reindex()
        return sub

    def unsubscribe(self, sub: Subscription) -> None:
        """Remove ``sub``; idempotent."""
        if sub in self._subs:
            self._subs.remove(sub)
            self._reindex()

    def _reindex(self) -> None:
        self._routes.clear()
        self._by_type = {}
        inboxes = [sub._inbox for sub in self._subs]
        self._catch_all = [box for box in inboxes if box.kinds is None]
        for box in inboxes:
            for kind in box.kinds or ():
                self._by_type.setdefault(kind, []).append(box)

    # Callbacks -----------------------------------------------------------

    def add_callback(self, kind: type, callback: Callback) -> None:
        """Call ``callback(event)`` (sync or async) for every published event of ``kind``."""
        self._callbacks.setdefault(kind, []).append(callback)
        self._routes.clear()

    def remove_callback(self, kind: type, callback: Callback) -> None:
        """Stop calling ``callback`` for ``kind``; idempotent."""
        cbs = self._callbacks.get(kind, [])
        if callback in cbs:
            cbs.remove(callback)
            self._routes.clear()

    # Hot path ------------------------------------------------------------

    def publish(self, event: Any) -> bool:
        """Offer ``event`` to every matching subscriber and callback; never blocks. False
        when nobody takes events of its kind (nothing was done)."""
        kind = type(event)
        route = self._routes.get(kind)
        if route is None:
            route = self._route_of(kind)
        if not route:  # nobody takes this kind
            return False
        boxes, callbacks, in_line = route
        if boxes:
            symbol = event.symbol
            for box in boxes:
                if box.symbols is None or symbol in box.symbols:
                    if in_line:  # never conflated: no key to compute
                        box.put_in_line(event)
                    else:
                        box.put_nowait(event)
        if callbacks:
            queue = self.callback_queue
            for cb in callbacks:
                queue.put_nowait((cb, event))
        return True

    def _route_of(self, kind: type) -> _Route:
        """Who takes events of ``kind``: its subscribers (those of the kind, then the
        catch-all ones) and callbacks; cached until a subscription or callback changes."""
        boxes = (*self._by_type.get(kind, ()), *self._catch_all)
        callbacks = tuple(self._callbacks.get(kind, ()))
        route = (boxes, callbacks, kind not in _LATEST_VALUE) if boxes or callbacks else _NOBODY
        self._routes[kind] = route
        return route

    def report_error(self, source: str, error: BaseException, symbol: str | None = None) -> None:
        """Queue an error event for the error callbacks (and error subscribers)."""
        event = GatewayErrorEvent(source, error, symbol)
        self.publish(event)
        for cb in self.error_callbacks:
            self.callback_queue.put_nowait((cb, error))

    # The dispatcher task -------------------------------------------------

    async def run(
        self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Run queued callbacks one by one until cancelled; a raising callback is counted."""
        task_status.started()
        async for cb, event in self.callback_queue:
            self.callback_calls += 1
            try:
                await invoke(cb, event)
            except Exception as exc:  # noqa: BLE001 - user callback: never fatal
                self.callback_errors += 1
                log.warning(
                    "callback %s raised %r on %s (counted: %d)",
                    getattr(cb, "__qualname__", cb), exc, type(event).__name__,
                    self.callback_errors,
                )  # fmt: skip
                if cb not in self.error_callbacks:
                    for err_cb in self.error_callbacks:
                        self.callback_queue.put_nowait((err_cb, exc))
