"""Mailbox: bounded, with overflow policies, counters, in-flight tracking, closing."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from hypothesis import given, settings
from hypothesis import strategies as st

from actors import Mailbox, Overflow


def drain(mailbox: Mailbox[Any]) -> list[Any]:
    out = []
    while True:
        try:
            out.append(mailbox.receive_nowait())
        except (trio.WouldBlock, trio.EndOfChannel):
            return out


# ---------------------------------------------------------------- construction


def test_bound_must_be_at_least_one() -> None:
    with pytest.raises(ValueError, match="bound"):
        Mailbox(0)


def test_conflate_requires_a_key_and_only_conflate_takes_one() -> None:
    with pytest.raises(ValueError, match="key"):
        Mailbox(3, Overflow.CONFLATE)
    with pytest.raises(ValueError, match="key"):
        Mailbox(3, Overflow.DROP_OLDEST, key=lambda m: m)


# ------------------------------------------------------------ overflow policies


def test_block_refuses_when_full_without_counting_a_drop() -> None:
    mailbox: Mailbox[int] = Mailbox(2)
    assert mailbox.put_nowait(1) and mailbox.put_nowait(2)
    with pytest.raises(trio.WouldBlock):
        mailbox.put_nowait(3)
    assert (len(mailbox), mailbox.dropped) == (2, 0)
    assert drain(mailbox) == [1, 2]


def test_drop_newest_discards_the_offered_message_and_counts_it() -> None:
    mailbox: Mailbox[int] = Mailbox(2, Overflow.DROP_NEWEST)
    results = [mailbox.put_nowait(i) for i in range(5)]
    assert results == [True, True, False, False, False]
    assert mailbox.dropped == 3
    assert drain(mailbox) == [0, 1]


def test_drop_oldest_evicts_the_oldest_queued_message_and_counts_it() -> None:
    mailbox: Mailbox[int] = Mailbox(2, Overflow.DROP_OLDEST)
    assert all(mailbox.put_nowait(i) for i in range(5))
    assert mailbox.dropped == 3
    assert drain(mailbox) == [3, 4]


def test_conflate_replaces_the_queued_value_of_a_key_in_place() -> None:
    mailbox: Mailbox[tuple[str, int]] = Mailbox(10, Overflow.CONFLATE, key=lambda m: m[0])
    for msg in [("BTC", 1), ("ETH", 1), ("BTC", 2), ("BTC", 3), ("ETH", 2)]:
        assert mailbox.put_nowait(msg)
    assert mailbox.dropped == 3  # BTC 1, BTC 2, ETH 1 were superseded
    assert len(mailbox) == 2
    assert drain(mailbox) == [("BTC", 3), ("ETH", 2)]  # BTC keeps its place in line


def test_conflate_with_a_new_key_when_full_evicts_the_oldest_key() -> None:
    mailbox: Mailbox[tuple[str, int]] = Mailbox(2, Overflow.CONFLATE, key=lambda m: m[0])
    for msg in [("A", 1), ("B", 1), ("C", 1)]:
        mailbox.put_nowait(msg)
    assert mailbox.dropped == 1
    assert drain(mailbox) == [("B", 1), ("C", 1)]


def test_conflate_after_a_value_was_taken_queues_the_key_again() -> None:
    mailbox: Mailbox[tuple[str, int]] = Mailbox(4, Overflow.CONFLATE, key=lambda m: m[0])
    mailbox.put_nowait(("A", 1))
    assert mailbox.receive_nowait() == ("A", 1)
    mailbox.put_nowait(("A", 2))
    assert (drain(mailbox), mailbox.dropped) == ([("A", 2)], 0)


def test_conflate_queues_messages_keyed_none_in_line_and_never_replaces_them() -> None:
    mailbox: Mailbox[tuple[str | None, int]] = Mailbox(4, Overflow.CONFLATE, key=lambda m: m[0])
    for msg in [(None, 1), ("A", 1), (None, 2), ("A", 2), (None, 3)]:
        assert mailbox.put_nowait(msg)
    assert (len(mailbox), mailbox.dropped) == (4, 1)  # only A 1 was superseded
    mailbox.put_nowait((None, 4))  # full: the oldest message (None 1) makes room
    assert mailbox.dropped == 2
    assert mailbox.receive_nowait() == ("A", 2)
    assert mailbox.drain_nowait(10) == [(None, 2), (None, 3), (None, 4)]
    mailbox.put_nowait(("A", 3))
    mailbox.put_nowait((None, 5))
    mailbox.put_nowait(("B", 1))
    mailbox.put_nowait(("A", 4))
    mailbox.put_nowait(("C", 1))
    mailbox.put_nowait(("D", 1))  # full: evicts A's place and its value
    assert drain(mailbox) == [(None, 5), ("B", 1), ("C", 1), ("D", 1)]


def test_high_water_is_the_deepest_the_mailbox_has_been() -> None:
    mailbox: Mailbox[int] = Mailbox(10)
    for i in range(7):
        mailbox.put_nowait(i)
    drain(mailbox)
    mailbox.put_nowait(99)
    stats = mailbox.stats()
    assert (stats.depth, stats.high_water, stats.received_total) == (1, 7, 7)


# ------------------------------------------------------------- waiting, closing


async def test_receive_waits_for_a_message_in_order() -> None:
    mailbox: Mailbox[int] = Mailbox(10)
    got: list[int] = []

    async def consumer() -> None:
        async for msg in mailbox:
            got.append(msg)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(consumer)
        await trio.testing.wait_all_tasks_blocked()
        for i in range(5):
            mailbox.put_nowait(i)
            await trio.testing.wait_all_tasks_blocked()
        mailbox.close()
    assert got == [0, 1, 2, 3, 4]


async def test_blocked_senders_wait_for_space_and_are_admitted_in_order() -> None:
    mailbox: Mailbox[int] = Mailbox(1)
    mailbox.put_nowait(0)
    async with trio.open_nursery() as nursery:
        for i in (1, 2, 3):
            nursery.start_soon(mailbox.send, i)
            await trio.testing.wait_all_tasks_blocked()
        assert len(mailbox) == 1
        got = [await mailbox.receive() for _ in range(4)]
    assert got == [0, 1, 2, 3]
    assert mailbox.dropped == 0


async def test_send_under_a_dropping_policy_never_waits() -> None:
    mailbox: Mailbox[int] = Mailbox(1, Overflow.DROP_NEWEST)
    assert await mailbox.send(1) is True
    assert await mailbox.send(2) is False
    assert mailbox.dropped == 1


async def test_close_lets_queued_messages_drain_then_ends_the_channel() -> None:
    mailbox: Mailbox[int] = Mailbox(10)
    mailbox.put_nowait(1)
    mailbox.put_nowait(2)
    await mailbox.aclose()
    with pytest.raises(trio.ClosedResourceError):
        mailbox.put_nowait(3)
    with pytest.raises(trio.ClosedResourceError):
        await mailbox.send(3)
    assert [msg async for msg in mailbox] == [1, 2]
    with pytest.raises(trio.EndOfChannel):
        await mailbox.receive()
    with pytest.raises(trio.EndOfChannel):
        mailbox.drain_nowait(5)


async def test_close_wakes_a_waiting_receiver_and_fails_waiting_senders() -> None:
    mailbox: Mailbox[int] = Mailbox(1)
    mailbox.put_nowait(0)
    outcomes: list[str] = []

    async def blocked_sender() -> None:
        with pytest.raises(trio.ClosedResourceError):
            await mailbox.send(1)
        outcomes.append("sender failed")

    async def waiting_receiver(other: Mailbox[int]) -> None:
        with pytest.raises(trio.EndOfChannel):
            await other.receive()
        outcomes.append("receiver ended")

    empty: Mailbox[int] = Mailbox(1)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(blocked_sender)
        nursery.start_soon(waiting_receiver, empty)
        await trio.testing.wait_all_tasks_blocked()
        mailbox.close()
        empty.close()
    assert sorted(outcomes) == ["receiver ended", "sender failed"]
    assert drain(mailbox) == [0]


async def test_a_cancelled_receive_takes_nothing_and_a_cancelled_send_queues_nothing(
    autojump_clock: trio.testing.MockClock,
) -> None:
    mailbox: Mailbox[int] = Mailbox(1)
    with trio.move_on_after(1) as scope:
        await mailbox.receive()
    assert scope.cancelled_caught
    mailbox.put_nowait(1)
    with trio.CancelScope() as scope:
        scope.cancel()
        await mailbox.send(2)
    assert drain(mailbox) == [1]
    assert mailbox.received_total == 1


# --------------------------------------------------------------------- in flight


def test_the_last_message_handed_out_is_in_flight_until_the_next_receive() -> None:
    mailbox: Mailbox[str | None] = Mailbox(10)
    assert not mailbox.has_in_flight
    mailbox.put_nowait("a")
    mailbox.put_nowait(None)
    assert mailbox.receive_nowait() == "a"
    assert mailbox.in_flight == "a"
    assert mailbox.receive_nowait() is None
    assert mailbox.has_in_flight and mailbox.in_flight is None
    with pytest.raises(trio.WouldBlock):
        mailbox.receive_nowait()  # asking for the next one: the previous was handled
    assert not mailbox.has_in_flight


def test_a_drained_batch_is_in_flight_as_a_whole_until_marked_handled() -> None:
    mailbox: Mailbox[int] = Mailbox(10)
    for i in range(5):
        mailbox.put_nowait(i)
    assert mailbox.drain_nowait(3) == [0, 1, 2]
    assert mailbox.in_flight == [0, 1, 2]
    mailbox.mark_handled()
    assert mailbox.take_in_flight() == (False, None)
    assert mailbox.drain_nowait(10) == [3, 4]
    assert mailbox.take_in_flight() == (True, [3, 4])


async def test_receive_batch_waits_for_the_first_message_then_takes_what_is_queued(
    autojump_clock: trio.testing.MockClock,
) -> None:
    mailbox: Mailbox[int] = Mailbox(10)

    async def producer() -> None:
        await trio.sleep(1)
        for i in range(4):
            mailbox.put_nowait(i)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(producer)
        batch = await mailbox.receive_batch(3)
    assert batch == [0, 1, 2]
    assert trio.current_time() == pytest.approx(1)
    assert await mailbox.receive_batch(3) == [3]


async def test_a_full_blocking_mailbox_admits_waiting_senders_after_a_drain() -> None:
    mailbox: Mailbox[int] = Mailbox(2)
    mailbox.put_nowait(0)
    mailbox.put_nowait(1)
    async with trio.open_nursery() as nursery:
        for i in (2, 3, 4):
            nursery.start_soon(mailbox.send, i)
            await trio.testing.wait_all_tasks_blocked()
        assert mailbox.drain_nowait(10) == [0, 1]
        assert len(mailbox) == 2  # two waiting senders moved in, in order
        assert drain(mailbox) == [2, 3, 4]  # the third moved in as space freed


# -------------------------------------------------------------------- invariants

operations = st.lists(
    st.one_of(
        st.tuples(st.just("put"), st.integers(0, 5)),
        st.tuples(st.just("take"), st.just(0)),
        st.tuples(st.just("drain"), st.integers(1, 4)),
    ),
    max_size=60,
)


@settings(max_examples=150, deadline=None)
@given(
    ops=operations,
    bound=st.integers(1, 5),
    overflow=st.sampled_from(list(Overflow)),
)
def test_bound_is_never_exceeded_and_every_offered_message_is_accounted_for(
    ops: list[tuple[str, int]], bound: int, overflow: Overflow
) -> None:
    key = (lambda m: m[1]) if overflow is Overflow.CONFLATE else None
    mailbox: Mailbox[tuple[int, int]] = Mailbox(bound, overflow, key=key)
    offered = 0
    received: list[tuple[int, int]] = []
    for seq, (op, arg) in enumerate(ops):
        if op == "put":
            try:
                mailbox.put_nowait((seq, arg))
            except trio.WouldBlock:
                assert overflow is Overflow.BLOCK and len(mailbox) == bound
            else:
                offered += 1
        elif op == "take":
            received.extend(_take_one(mailbox))
        else:
            try:
                received.extend(mailbox.drain_nowait(arg))
            except trio.WouldBlock:
                assert len(mailbox) == 0
        assert 0 <= len(mailbox) <= bound
        assert mailbox.high_water <= bound
        assert mailbox.received_total + mailbox.dropped + len(mailbox) == offered
    assert mailbox.received_total == len(received)
    if overflow is Overflow.CONFLATE:
        # A replaced value takes its predecessor's place: order holds per key.
        for k in {k for _, k in received}:
            seqs = [seq for seq, key in received if key == k]
            assert seqs == sorted(seqs)
    else:
        seqs = [seq for seq, _ in received]
        assert seqs == sorted(seqs)


def _take_one(mailbox: Mailbox[tuple[int, int]]) -> list[tuple[int, int]]:
    try:
        return [mailbox.receive_nowait()]
    except trio.WouldBlock:
        return []


@settings(max_examples=200, deadline=None)
@given(ops=st.lists(st.tuples(st.sampled_from(["plain", "keyed", "drain"]), st.integers(0, 3)),
                    max_size=60),
       bound=st.integers(1, 6),
       overflow=st.sampled_from([Overflow.DROP_OLDEST, Overflow.DROP_NEWEST, Overflow.CONFLATE]))
def test_put_in_line_is_put_nowait_for_a_message_never_conflated(
    ops: list[tuple[str, int]], bound: int, overflow: Overflow,
) -> None:
    """`Mailbox.put_in_line` (the publisher's fast path) leaves a mailbox exactly as
    `put_nowait` would for a message whose key is None, whatever came before."""
    def key(msg: tuple[str, int]) -> object:
        return msg[1] if msg[0] == "keyed" else None

    conflate = overflow is Overflow.CONFLATE
    a: Mailbox[tuple[str, int]] = Mailbox(bound, overflow, key=key if conflate else None)
    b: Mailbox[tuple[str, int]] = Mailbox(bound, overflow, key=key if conflate else None)
    for n, (op, k) in enumerate(ops):
        if op == "drain":
            assert len(a) == len(b)
            if len(a):
                assert a.drain_nowait(k + 1) == b.drain_nowait(k + 1)
            continue
        msg = ("keyed" if op == "keyed" and conflate else "plain", n)
        if msg[0] == "keyed":
            msg = ("keyed", k)
            assert a.put_nowait(msg) == b.put_nowait(msg)
        else:
            assert a.put_nowait(msg) == b.put_in_line(msg)
        assert (len(a), a.dropped, a.high_water) == (len(b), b.dropped, b.high_water)
    assert len(a) == len(b)
    if len(a):
        assert a.drain_nowait(bound) == b.drain_nowait(bound)
