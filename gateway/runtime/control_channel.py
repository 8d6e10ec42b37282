"""One connection's control-frame protocol: paced requests, replies matched by id.

`ControlChannel` is the part of a `Connection` that speaks to the exchange in control
frames: SUBSCRIBE (chunked under the frame limit), UNSUBSCRIBE and LIST_SUBSCRIPTIONS,
each paced by the connection's control limiter and answered through `on_reply` (the
receive loop hands it the router's `ControlReply` or `ControlError`). An error reply to
a SUBSCRIBE names no stream, so a refused chunk is halved until the refused names are
alone; those are dropped alone and asked for again later (`REFUSED_RETRY`). A 1008 close
(the exchange's rate penalty) halves the pace (`slow_down`).

The channel keeps only the pending request ids and the id encoder: the streams, the
refusals, the pace and the counters are the connection's, since they outlive a session,
are carried over by a rotation and are reported in its statistics.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

import trio
from trio_websocket import WebSocketConnection

from gateway.core.backoff import ReconnectPolicy
from gateway.core.codec import ControlEncoder
from gateway.core.frames import ControlError, ControlReply
from gateway.core.ratelimit import RollingWindowLimiter
from gateway.core.streams import chunk_for_control
from gateway.errors import SubscriptionError
from gateway.runtime.endings import NETWORK_ERRORS

if TYPE_CHECKING:
    from gateway.runtime.connection import Connection

__all__ = ["REFUSED_RETRY", "ControlChannel", "RefusedHook", "acquire"]

# The connection's logger: its records keep the name they always had (log filters use it).
log = logging.getLogger("gateway.runtime.connection")

_MAX_PACE_WINDOW = 8.0  # seconds: the slowest control pace after repeated 1008 closes
_REFUSED_ALL = 4  # "Too many subscriptions": the whole chunk is refused, no bisecting
#: A refused stream is asked for again after 5 s, 10 s, 20 s ... at most every 5 minutes:
#: a refusal can be passing (the exchange's own trouble), and once it is accepted again
#: its gap is detected and backfilled like any other.
REFUSED_RETRY = ReconnectPolicy(initial=5.0, factor=2.0, cap=300.0, max_attempts=None)

#: ``on_refused(stream, code, message)``: the exchange refused ``stream``.
RefusedHook = Callable[[str, "int | None", str], None]


async def acquire(limiter: Callable[[], RollingWindowLimiter]) -> None:
    """Wait until ``limiter()`` (read again each time: it may be replaced) has a free
    slot, and take it."""
    while True:
        now = trio.current_time()
        if limiter().try_acquire(now):
            return
        await trio.sleep_until(limiter().next_free_time(now))


class ControlChannel:
    """The control requests of ``conn`` and their replies (the state is ``conn``'s)."""

    def __init__(self, conn: Connection) -> None:
        """The control channel of ``conn``, with no request pending yet."""
        self._conn = conn
        self.encoder = ControlEncoder()
        self._pending: dict[int | str | None, trio.MemorySendChannel[Any]] = {}

    # Requests and replies -----------------------------------------------------

    async def request(self, ws: WebSocketConnection | None, rid: int, text: str) -> ControlReply:
        """One control request on session ``ws``, paced, and its reply.

        Raises `SubscriptionError`: with the exchange's code for an error reply; with
        code None when ``ws`` is not (or no longer) the live session, or no reply came.
        """
        conn = self._conn
        if ws is None or ws is not conn._ws:
            raise SubscriptionError(None, "not connected", rid)
        await acquire(lambda: conn.control_limiter)
        if ws is not conn._ws:
            raise SubscriptionError(None, "the session ended before the request went out", rid)
        send, recv = trio.open_memory_channel[Any](1)
        self._pending[rid] = send  # no checkpoint since the check: it belongs to ``ws``
        try:
            await ws.send_message(text)
            conn.control_frames += 1
            conn.control_sent_at.append(trio.current_time())
            with trio.fail_after(conn.reply_timeout):
                reply = await recv.receive()
        except trio.TooSlowError:
            raise SubscriptionError(None, "no reply from exchange", rid) from None
        except trio.EndOfChannel:
            raise SubscriptionError(None, "connection closed before the reply", rid) from None
        except NETWORK_ERRORS:  # the socket closed under the send
            raise SubscriptionError(None, "the session ended before the request went out",
                                    rid) from None  # fmt: skip
        finally:
            self._pending.pop(rid, None)
        if isinstance(reply, ControlError):
            raise SubscriptionError(reply.code, reply.message, rid)
        assert isinstance(reply, ControlReply)
        return reply

    def on_reply(self, reply: ControlReply | ControlError) -> None:
        """Match a reply to its pending request by id; an unmatched error is logged."""
        chan = self._pending.pop(reply.id, None)
        if chan is not None:
            chan.send_nowait(reply)
        elif isinstance(reply, ControlError):
            log.warning("[%s] unsolicited error from exchange: %s", self._conn.conn_id, reply)

    def close_pending(self) -> None:
        """The session ended: every request still waiting for its reply is told so
        (`trio.EndOfChannel`) at once, rather than at its reply timeout."""
        for chan in self._pending.values():
            chan.close()
        self._pending.clear()

    def slow_down(self, reason: str) -> None:
        """The exchange's rate penalty: halve the control pace (down to one frame per
        ``_MAX_PACE_WINDOW`` s) for the rest of the connection's life."""
        conn = self._conn
        conn.rate_penalties += 1
        limit, window = conn.control_limiter.limit, conn.control_limiter.window
        if limit > 1:
            limit //= 2
        else:
            window = min(window * 2, _MAX_PACE_WINDOW)
        conn.control_limiter = RollingWindowLimiter(limit, window)
        log.warning("[%s] %s: control pace now %d frame(s) per %.1f s",
                    conn.conn_id, reason, limit, window)  # fmt: skip

    # Subscriptions ------------------------------------------------------------

    async def subscribe(self, names: Iterable[str]) -> None:
        """`Connection.subscribe`: add streams; sent now if connected (chunked, paced),
        else on connect.

        A stream the exchange refuses is reported through ``on_refused`` and dropped;
        if the session ends first (or never answers), the next one subscribes everything.
        """
        conn = self._conn
        new = [n for n in names if n not in conn.streams]
        conn.streams.update(dict.fromkeys(new))
        for n in new:
            conn.refused.pop(n, None)
            conn._refused_retry.pop(n, None)
        ws = conn._ws
        if ws is not None and new:
            try:
                await self.send_subscribe(ws, new)
            except SubscriptionError as exc:
                if conn._ws is ws:  # no reply on a live session: replace it
                    conn._end_session(f"SUBSCRIBE failed: {exc.message}")

    async def unsubscribe(self, names: Iterable[str]) -> None:
        """`Connection.unsubscribe`: remove streams; sent now if connected (a later session
        never has them).

        An error reply is logged: the streams are gone from the connection either way
        (frames that still come for them are counted as unrouted).
        """
        conn = self._conn
        names = list(names)
        for n in names:  # a refused stream is no longer asked for either
            conn.refused.pop(n, None)
            conn._refused_retry.pop(n, None)
        gone = [n for n in names if n in conn.streams]
        for n in gone:
            del conn.streams[n]
        ws = conn._ws
        if ws is None:
            return
        try:
            for chunk in chunk_for_control(gone):
                await self.request(ws, *self.encoder.unsubscribe(chunk))
        except SubscriptionError as exc:
            log.info("[%s] UNSUBSCRIBE not confirmed: %s", conn.conn_id, exc)

    async def list_subscriptions(self, ws: WebSocketConnection | None) -> list[str]:
        """The streams the exchange lists for session ``ws`` (`SubscriptionError` when it
        is not the live session or no reply came)."""
        reply = await self.request(ws, *self.encoder.list_subscriptions())
        return list(reply.result or [])

    async def send_subscribe(self, ws: WebSocketConnection, names: list[str]) -> None:
        """SUBSCRIBE ``names`` on session ``ws``, in chunks under the control frame limit
        (`SubscriptionError` with code None: no reply, the session is ending)."""
        for chunk in chunk_for_control(names):
            await self._subscribe_chunk(ws, chunk)

    async def _subscribe_chunk(self, ws: WebSocketConnection, chunk: list[str]) -> None:
        """SUBSCRIBE ``chunk`` on session ``ws``; an error reply names no stream, so
        halve and ask again until the refused names are alone, and drop just those."""
        chunk = [n for n in chunk if n in self._conn.streams]  # unsubscribed meanwhile
        if not chunk:
            return
        try:
            await self.request(ws, *self.encoder.subscribe(chunk))
        except SubscriptionError as exc:
            if exc.code is None:
                raise  # no reply: the session's ending, not the streams' fault
            if len(chunk) > 1 and exc.code != _REFUSED_ALL:
                mid = len(chunk) // 2
                await self._subscribe_chunk(ws, chunk[:mid])
                await self._subscribe_chunk(ws, chunk[mid:])
                return
            for name in chunk:
                self._refuse(name, exc.code, exc.message)

    def _refuse(self, name: str, code: int | None, message: str) -> None:
        """Drop ``name`` from the connection and ask for it again later (`REFUSED_RETRY`);
        only its first refusal is reported (a retry refused again is logged at info)."""
        conn = self._conn
        if conn.streams.pop(name, False) is False:
            return  # unsubscribed meanwhile: nothing to report
        conn.refused[name] = (code, message)
        count = conn._refused_retry.get(name, (0, 0.0))[0] + 1
        wait = REFUSED_RETRY.ceiling(count - 1)
        conn._refused_retry[name] = (count, trio.current_time() + wait)
        if count > 1:
            log.info("[%s] exchange refused stream %s again (%d times): code %s: %s; next "
                     "try in %.0f s", conn.conn_id, name, count, code, message, wait)  # fmt: skip
            return
        log.warning("[%s] exchange refused stream %s: code %s: %s; asking again in %.0f s",
                    conn.conn_id, name, code, message, wait)  # fmt: skip
        if conn.on_refused is not None:
            conn.on_refused(name, code, message)

    async def retry_refused(self, ws: WebSocketConnection) -> None:
        """SUBSCRIBE again the refused streams whose wait is over; those accepted stream
        again (their gap is detected and backfilled by the symbols)."""
        conn = self._conn
        now = trio.current_time()
        due = [n for n, (_, at) in conn._refused_retry.items() if at <= now and n in conn.refused]
        if not due:
            return
        conn.refusal_retries += len(due)
        conn.streams.update(dict.fromkeys(due))
        try:
            await self.send_subscribe(ws, due)
        except SubscriptionError as exc:
            if conn._ws is ws:  # no reply on a live session: replace it
                conn._end_session(f"SUBSCRIBE failed: {exc.message}")
            return  # they are in conn.streams: the next session asks for them
        for name in due:
            if name in conn.streams:  # accepted this time
                conn.refused.pop(name, None)
                count, _ = conn._refused_retry.pop(name, (0, 0.0))
                log.warning("[%s] exchange accepted stream %s again after %d refusals",
                            conn.conn_id, name, count)  # fmt: skip
