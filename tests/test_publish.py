"""Fan-out to user code: filtered, bounded subscriptions and callbacks that cannot hurt."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from gateway import BookTicker, Trade
from gateway.runtime.publish import Publisher


def trade(symbol: str, i: int) -> Trade:
    return Trade(symbol, i, 100.0 + i, 1.0, i, False, i, 0)


def book(symbol: str, i: int) -> BookTicker:
    return BookTicker(symbol, i, 99.0 + i, 1.0, 100.0 + i, 1.0)


async def test_subscriptions_filter_by_symbol_and_kind() -> None:
    pub = Publisher()
    btc_trades = pub.subscribe(["btcusdt"], [Trade])
    everything = pub.subscribe()
    for i in range(3):
        pub.publish(trade("BTCUSDT", i))
        pub.publish(trade("ETHUSDT", i))
        pub.publish(book("BTCUSDT", i))
    assert [e.trade_id for e in btc_trades.drain_nowait(100)] == [0, 1, 2]
    got = everything.drain_nowait(100)
    assert len(got) == 7  # 6 trades + the book tickers conflated into the newest one
    assert [e.update_id for e in got if isinstance(e, BookTicker)] == [2]


async def test_slow_subscriber_drops_its_own_oldest_and_counts() -> None:
    pub = Publisher()
    slow = pub.subscribe(kinds=[Trade], bound=5)
    fast = pub.subscribe(kinds=[Trade], bound=100)
    for i in range(20):
        pub.publish(trade("BTCUSDT", i))
    assert [e.trade_id for e in slow.drain_nowait(100)] == [15, 16, 17, 18, 19]
    assert slow.dropped == 15 and slow.conflated == 0  # trades are never conflated
    assert len(fast.drain_nowait(100)) == 20 and fast.dropped == 0


async def test_a_burst_is_taken_in_batches_in_order_with_latest_values_in_their_place() -> None:
    pub = Publisher()
    sub = pub.subscribe(bound=10_000)
    pub.publish(book("BTCUSDT", 0))
    for i in range(3000):  # one REST page's worth and more, published in one go
        pub.publish(trade("BTCUSDT", i))
    pub.publish(book("BTCUSDT", 1))  # replaces the queued one, keeps its place
    first = await sub.receive_batch(2000)
    rest = await sub.receive_batch(2000)
    assert (len(first), len(rest), len(sub)) == (2000, 1001, 0)
    assert isinstance(first[0], BookTicker) and first[0].update_id == 1
    assert [e.trade_id for e in first[1:] + rest] == list(range(3000))
    assert sub.dropped == 1 and sub.conflated == 1  # superseded, not missed


async def test_closed_subscription_stops_receiving() -> None:
    pub = Publisher()
    with pub.subscribe() as sub:
        pub.publish(trade("BTCUSDT", 1))
    pub.publish(trade("BTCUSDT", 2))  # no error: it is gone from the publisher
    assert [e.trade_id for e in sub.drain_nowait(10)] == [1]


async def test_raising_callback_is_counted_and_reported_never_fatal() -> None:
    pub = Publisher()
    seen: list[int] = []
    errors: list[BaseException] = []

    def bad(ev: Trade) -> None:
        raise RuntimeError(f"boom {ev.trade_id}")

    async def good(ev: Trade) -> None:
        await trio.lowlevel.checkpoint()
        seen.append(ev.trade_id)

    pub.add_callback(Trade, bad)
    pub.add_callback(Trade, good)
    pub.error_callbacks.append(errors.append)
    async with trio.open_nursery() as nursery:
        await nursery.start(pub.run)
        for i in range(3):
            pub.publish(trade("BTCUSDT", i))
        await trio.testing.wait_all_tasks_blocked()
        nursery.cancel_scope.cancel()
    assert seen == [0, 1, 2]
    assert pub.callback_errors == 3
    assert [str(e) for e in errors] == ["boom 0", "boom 1", "boom 2"]


async def test_symbol_overflow_is_counted_once_and_keeps_trade_extremes() -> None:
    from actors import Mailbox, Overflow
    from gateway.runtime.symbol import SymbolRuntime

    state = SymbolRuntime("BTCUSDT", Publisher())
    state.mailbox = Mailbox(2, Overflow.DROP_NEWEST)  # the actor is down: events queue
    for i, price in enumerate((100.0, 101.0, 90.0, 120.0, 95.0)):
        state.deliver(Trade("BTCUSDT", i, price, 1.0, i, False, i, 0))
    assert state.snapshot().dropped == 3
    assert (state.machine.unchecked_low, state.machine.unchecked_high) == (90.0, 120.0)


async def test_a_subscription_is_the_receive_side_only() -> None:
    """A subscriber cannot put events into its own (or anyone's) channel."""
    publisher = Publisher()
    sub = publisher.subscribe(["BTCUSDT"], [Trade], 4)
    assert isinstance(sub, trio.abc.ReceiveChannel)
    for name in ("put_nowait", "send", "send_nowait", "mark_handled", "take_in_flight"):
        assert not hasattr(sub, name), name
    publisher.publish(Trade("BTCUSDT", 1, 1.0, 1.0, 0, False, 0))
    publisher.publish(Trade("ETHUSDT", 2, 1.0, 1.0, 0, False, 0))  # not this one's symbol
    async with sub:
        assert len(sub) == 1 and (await sub.receive()).trade_id == 1
    assert sub.closed and sub.symbols == frozenset({"BTCUSDT"})
    publisher.publish(Trade("BTCUSDT", 3, 1.0, 1.0, 0, False, 0))  # after close: not queued
    with pytest.raises(trio.EndOfChannel):
        await sub.receive()


async def test_who_takes_a_kind_follows_every_subscription_and_callback_change() -> None:
    """`Publisher.publish` keeps, per event type, who takes it: each subscribe,
    unsubscribe and callback change is seen by the very next publish of that type."""
    pub = Publisher()
    assert pub.publish(trade("BTCUSDT", 0)) is False  # nobody: nothing done
    sub = pub.subscribe(kinds=[Trade])
    assert pub.publish(trade("BTCUSDT", 1)) is True
    assert pub.publish(book("BTCUSDT", 1)) is False  # books: still nobody
    seen: list[object] = []
    pub.add_callback(BookTicker, seen.append)
    assert pub.publish(book("BTCUSDT", 2)) is True and len(pub.callback_queue) == 1
    pub.remove_callback(BookTicker, seen.append)
    assert pub.publish(book("BTCUSDT", 3)) is False
    sub.close()
    assert pub.publish(trade("BTCUSDT", 2)) is False
    assert [e.trade_id for e in sub.drain_nowait(10)] == [1]
    everything = pub.subscribe()
    assert pub.publish(book("BTCUSDT", 4)) is True
    assert everything.drain_nowait(10) == [book("BTCUSDT", 4)]


async def test_a_subscriber_takes_queued_events_in_streaks_and_still_sees_cancellation() -> None:
    # The connection delivers frames in bursts of up to RECEIVE_BURST per wake-up; a
    # subscriber that took one event per scheduler pass would fall behind and drop. So
    # `async for` takes what is queued without a checkpoint, up to STREAK events, and
    # then checkpoints: cancellation is seen within STREAK events. `receive` keeps
    # trio's rule: a checkpoint every call.
    from gateway.runtime.connection import RECEIVE_BURST
    from gateway.runtime.publish import STREAK

    assert STREAK >= RECEIVE_BURST
    pub = Publisher()
    sub = pub.subscribe(kinds=[Trade], bound=1000)
    for i in range(3 * STREAK):
        pub.publish(trade("BTCUSDT", i))
    got: list[int] = []
    with trio.CancelScope() as scope:
        async for event in sub:
            got.append(event.trade_id)
            scope.cancel()  # seen at the next checkpoint, not at the next event
    assert got == list(range(STREAK))
    with trio.CancelScope() as scope:
        scope.cancel()
        with pytest.raises(trio.Cancelled):
            await sub.receive()  # a checkpoint, even with events queued
    got.append((await sub.receive()).trade_id)
    assert got == list(range(STREAK + 1)) and sub.dropped == 0
