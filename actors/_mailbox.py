"""Bounded mailboxes: a deque, an overflow policy, counters, one cheap wakeup.

A `Mailbox` is what an actor reads from and what everybody else writes to.
The write side is synchronous and cheap (`Mailbox.put_nowait`), because the
router calls it per message on the hot path; only `BLOCK` mailboxes ever make
a sender wait, and only through the async `Mailbox.send`.

Why not a trio memory channel underneath: dropping the oldest message and
replacing a queued value by key both need to reach into the buffer, and the
supervisor needs to know which message the actor was handling when it
crashed. The wakeup mirrors trio's own channel (a parked receiver task is
rescheduled directly), so a hop costs the same.

The overflow policies are in `actors._overflow`; the state every operation here
shares, and its read-only views (`Mailbox.stats`, `Mailbox.in_flight`), in
`actors._mailbox_state`.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import TypeVar

import outcome
import trio
from trio.lowlevel import (
    Abort,
    RaiseCancelT,
    cancel_shielded_checkpoint,
    checkpoint,
    checkpoint_if_cancelled,
    current_task,
    enable_ki_protection,
    reschedule,
    wait_task_rescheduled,
)

from ._mailbox_state import _NOTHING, MailboxStats, _MailboxState
from ._overflow import Overflow, _Keyed

__all__ = ["Mailbox", "MailboxStats", "Overflow"]

T = TypeVar("T")


class Mailbox(_MailboxState[T], trio.abc.ReceiveChannel[T]):
    """A bounded, single-owner mailbox; the receive side is a trio channel.

    Receive side (the owning actor): ``async for msg in mailbox``,
    `receive`, `receive_nowait`, `receive_batch`, `drain_nowait`. Several
    tasks may receive at once (each message goes to one of them), but the
    design is one consumer: the actor that owns the mailbox.

    Send side (anyone holding the mailbox): `put_nowait` (synchronous,
    applies the overflow policy) and `send` (waits for space under `BLOCK`).

    Counters, readable at any time: ``depth`` (``len(mailbox)``),
    ``high_water`` (the largest depth seen), ``dropped`` (messages discarded
    by the overflow policy), ``conflated`` (the part of ``dropped`` that a newer
    message of the same key replaced in line, under `CONFLATE`), ``received_total``
    (messages handed to a consumer). Every message offered and not refused is exactly one of:
    received, dropped, or still queued.

    In-flight message: each receive records the message it hands out as
    `in_flight`; the next receive call (even one that then waits or fails)
    clears it, because asking for the next message means the previous one
    was handled. A batch call (`drain_nowait`, `receive_batch`) records the
    whole batch, as a list. `mark_handled` clears it early. The supervisor
    turns whatever is in flight when an actor crashes into a dead letter,
    so it is not delivered again.

    Closing (`close` / `aclose`): queued messages can still be received;
    then receivers get `trio.EndOfChannel` (so ``async for`` ends), and
    senders get `trio.ClosedResourceError`, including those waiting in
    `send`. Closing is final.
    """

    __slots__ = ()

    # ------------------------------------------------------------- send side

    @enable_ki_protection
    def put_nowait(self, msg: T) -> bool:
        """Offer ``msg`` without waiting; return False if it was dropped.

        Applies the overflow policy when full. Returns True when ``msg`` was
        queued (under `DROP_OLDEST` or `CONFLATE` something older may have
        been dropped to make room; that is counted, not reported here).

        Raises `trio.WouldBlock` under `BLOCK` when full (the message is not
        counted as dropped: the caller still has it), and
        `trio.ClosedResourceError` once the mailbox is closed.
        """
        latest = self._latest
        if latest is not None and not self._closed:
            return self._put_conflating(msg, latest)
        return self.put_in_line(msg)

    def put_in_line(self, msg: T) -> bool:
        """`put_nowait` for a message that is never conflated (its key is None, or the
        mailbox does not conflate): the same effect, without calling the key. For a
        publisher's hot path, which knows the message's kind already."""
        if self._closed:
            raise trio.ClosedResourceError("mailbox is closed")
        buffer = self._buffer
        if len(buffer) >= self._bound:
            latest = self._latest
            if latest is None:
                overflow = self._overflow
                if overflow is Overflow.BLOCK:
                    raise trio.WouldBlock
                self.dropped += 1
                if overflow is Overflow.DROP_NEWEST:
                    return False
                buffer.popleft()  # DROP_OLDEST
            else:
                old = buffer.popleft()
                if type(old) is _Keyed:
                    del latest[old.key]
                self.dropped += 1
        buffer.append(msg)
        depth = len(buffer)
        if depth > self.high_water:
            self.high_water = depth
        if self._receivers:
            reschedule(self._receivers.popitem(last=False)[0])
        return True

    def _put_conflating(self, msg: T, latest: dict[Hashable, T]) -> bool:
        assert self._key is not None
        key = self._key(msg)
        if key is not None and key in latest:
            latest[key] = msg  # replaces the queued value, keeps its place
            self.dropped += 1
            self.conflated += 1
            return True
        buffer = self._buffer
        if len(buffer) >= self._bound:
            old = buffer.popleft()
            if type(old) is _Keyed:
                del latest[old.key]
            self.dropped += 1
        if key is None:
            buffer.append(msg)
        else:
            buffer.append(_Keyed(key))
            latest[key] = msg
        depth = len(buffer)
        if depth > self.high_water:
            self.high_water = depth
        if self._receivers:
            reschedule(self._receivers.popitem(last=False)[0])
        return True

    @enable_ki_protection
    async def send(self, msg: T) -> bool:
        """Offer ``msg``, waiting for space if the policy is `BLOCK`.

        Returns as `put_nowait` does. Blocked senders are admitted in the
        order they started waiting. Always a checkpoint; a cancelled `send`
        has not queued its message. Raises `trio.ClosedResourceError` if the
        mailbox is or becomes closed.
        """
        await checkpoint_if_cancelled()
        try:
            queued = self.put_nowait(msg)
        except trio.WouldBlock:
            pass
        else:
            await cancel_shielded_checkpoint()
            return queued

        task = current_task()
        self._senders[task] = msg

        def abort_fn(_: RaiseCancelT) -> Abort:
            del self._senders[task]
            return Abort.SUCCEEDED

        await wait_task_rescheduled(abort_fn)
        return True

    def _admit_senders(self) -> None:
        # Called after a take under BLOCK: move waiting senders' messages in.
        buffer = self._buffer
        senders = self._senders
        while senders and len(buffer) < self._bound:
            task, msg = senders.popitem(last=False)
            buffer.append(msg)
            reschedule(task)
        if buffer and self._receivers:
            reschedule(self._receivers.popitem(last=False)[0])

    def close(self) -> None:
        """Close the mailbox (idempotent, synchronous).

        Queued messages stay receivable; waiting receivers wake (to take them
        or get `trio.EndOfChannel`); waiting senders get
        `trio.ClosedResourceError`.
        """
        if self._closed:
            return
        self._closed = True
        for task in self._receivers:
            reschedule(task)
        self._receivers.clear()
        for task in self._senders:
            reschedule(task, outcome.Error(trio.ClosedResourceError("mailbox was closed")))
        self._senders.clear()

    async def aclose(self) -> None:
        """`close`, then a checkpoint (the `trio.abc.AsyncResource` contract)."""
        self.close()
        await checkpoint()

    # ---------------------------------------------------------- receive side

    def _take(self) -> T:
        item = self._buffer.popleft()
        if type(item) is _Keyed:
            assert self._latest is not None
            item = self._latest.pop(item.key)
        msg: T = item
        self.received_total += 1
        self._in_flight = msg
        if self._senders:
            self._admit_senders()
        return msg

    @enable_ki_protection
    def receive_nowait(self) -> T:
        """Take the oldest message without waiting.

        Raises `trio.WouldBlock` if none is queued, `trio.EndOfChannel` if
        none is queued and the mailbox is closed.
        """
        if self._buffer:
            return self._take()
        self._in_flight = _NOTHING
        if self._closed:
            raise trio.EndOfChannel
        raise trio.WouldBlock

    @enable_ki_protection
    def drain_nowait(self, max_items: int) -> list[T]:
        """Take up to ``max_items`` (>= 1) queued messages, oldest first.

        The whole batch becomes the in-flight item: if the actor crashes
        before its next receive (or `mark_handled`), the batch is recorded
        as one dead letter and none of it is delivered again. An actor that
        wants per-message dead letters should loop over `receive_nowait`.

        Raises `trio.WouldBlock` if nothing is queued, `trio.EndOfChannel`
        if nothing is queued and the mailbox is closed.
        """
        if max_items < 1:
            raise ValueError(f"max_items must be >= 1, got {max_items!r}")
        buffer = self._buffer
        if not buffer:
            self._in_flight = _NOTHING
            if self._closed:
                raise trio.EndOfChannel
            raise trio.WouldBlock
        count = min(max_items, len(buffer))
        popleft = buffer.popleft
        batch = [popleft() for _ in range(count)]
        latest = self._latest
        if latest:  # conflated values are taken from their dict, in their place
            batch = [latest.pop(m.key) if type(m) is _Keyed else m for m in batch]
        self.received_total += count
        self._in_flight = batch
        if self._senders:
            self._admit_senders()
        return batch

    async def _wait_nonempty(self) -> None:
        # Park until a put or a close; the caller re-checks the buffer.
        self._in_flight = _NOTHING
        task = current_task()
        self._receivers[task] = None

        def abort_fn(_: RaiseCancelT) -> Abort:
            del self._receivers[task]
            return Abort.SUCCEEDED

        await wait_task_rescheduled(abort_fn)

    @enable_ki_protection
    async def receive(self) -> T:
        """Wait for and take the oldest message.

        Waits while the mailbox is empty and open. Always a checkpoint; if
        cancelled, nothing was taken. Raises `trio.EndOfChannel` once the
        mailbox is closed and empty.
        """
        self._in_flight = _NOTHING  # asking for the next: the last one was handled
        await checkpoint_if_cancelled()
        if self._buffer:
            msg = self._take()
            await cancel_shielded_checkpoint()
            return msg
        while True:
            if self._closed:
                self._in_flight = _NOTHING
                raise trio.EndOfChannel
            await self._wait_nonempty()
            # Woken by a put (or close): we have already yielded, so no
            # second checkpoint; loop if another receiver got there first.
            if self._buffer:
                return self._take()

    async def receive_batch(self, max_items: int) -> list[T]:
        """Wait until a message is queued, then take up to ``max_items``.

        The batch is in flight as a whole (see `drain_nowait`). Always a
        checkpoint. Raises `trio.EndOfChannel` once closed and empty.
        """
        if max_items < 1:
            raise ValueError(f"max_items must be >= 1, got {max_items!r}")
        self._in_flight = _NOTHING  # asking for the next: the last batch was handled
        await checkpoint_if_cancelled()
        if self._buffer:
            batch = self.drain_nowait(max_items)
            await cancel_shielded_checkpoint()
            return batch
        while True:
            if self._closed:
                self._in_flight = _NOTHING
                raise trio.EndOfChannel
            await self._wait_nonempty()
            if self._buffer:
                return self.drain_nowait(max_items)

    def __aiter__(self) -> Mailbox[T]:
        return self

    async def __anext__(self) -> T:
        try:
            return await self.receive()
        except trio.EndOfChannel:
            raise StopAsyncIteration from None
