"""A live session's watchdogs: silence, age and proof of life, beside the receive loop.

`SessionWatchdog` is the part of a `Connection` that checks its session from the side,
never per frame (it reads counters the receive loop keeps anyway):

- `SessionWatchdog.silence`: ping after half the silence timeout without frames, end
  the session if neither a frame nor the pong came within the other half; rotate before
  the exchange's lifetime limit (``max_age``).
- `SessionWatchdog.liveness`: every second once the session is live, proof of life per
  stream (the bookkeeping is `gateway.runtime.liveness.StreamWatch`): replace a zombie
  (make-before-break), ask the exchange about streams silent alone and subscribe again
  those it forgot; then ask again for refused streams whose wait is over.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import trio
from trio_websocket import WebSocketConnection

from gateway.errors import SubscriptionError
from gateway.runtime.control_channel import acquire
from gateway.runtime.liveness import Group, StreamWatch, names_of

if TYPE_CHECKING:
    from gateway.runtime.connection import Connection

__all__ = ["SessionWatchdog"]

# The connection's logger: its records keep the name they always had (log filters use it).
log = logging.getLogger("gateway.runtime.connection")

_LIVENESS_PERIOD = 1.0  # seconds between proof-of-life checks (gateway.runtime.liveness)


class SessionWatchdog:
    """The watchdog tasks of ``conn``'s sessions; the proof-of-life bookkeeping is its own."""

    def __init__(self, conn: Connection, stream_silence_factor: float,
                 trade_silence_floor: float) -> None:  # fmt: skip
        """The watchdog of ``conn``: silent streams judged by ``stream_silence_factor``
        cadences (activity streams: at least ``trade_silence_floor`` s)."""
        self._conn = conn
        #: Proof of life per stream (see `gateway.runtime.liveness`), checked every second.
        self._watch = StreamWatch(stream_silence_factor, trade_silence_floor)

    async def silence(self, ws: WebSocketConnection, scope: trio.CancelScope) -> None:
        """Ping after half the silence timeout without frames; reconnect if neither a frame
        nor the pong came within the other half (the wait for a control slot not counted)."""
        conn = self._conn
        opened = trio.current_time()
        half = conn.silence_timeout / 2
        while True:
            seen = conn.frames
            await trio.sleep(half)
            if trio.current_time() - opened >= conn.max_age:
                log.info("[%s] rotating before the exchange's lifetime limit", conn.conn_id)
                conn._rotate()
                return
            if conn.frames != seen:
                continue
            # Waiting for a control slot (a busy pace) is not silence: only ping -> pong is
            # timed. Not bounded: a slot frees within the pace's window per waiter ahead,
            # and the session's end cancels the wait.
            await acquire(lambda: conn.control_limiter)
            with trio.move_on_after(half) as ping_scope:
                await ws.ping()
            if ping_scope.cancelled_caught and conn.frames == seen:
                log.warning("[%s] silent for %.1fs: reconnecting", conn.conn_id, 2 * half)
                conn._end_reason = f"silent for {2 * half:.1f} s"
                scope.cancel()
                return

    async def liveness(self, ws: WebSocketConnection) -> None:
        """Proof of life per stream, every second once the session is live: replace a
        zombie (make-before-break), verify and resubscribe a stream silent alone."""
        conn = self._conn
        live = conn._live
        await live.wait()
        watch = self._watch
        now = trio.current_time()
        watch.sync(conn.streams, now)
        watch.reset(now)
        while ws is conn._ws:
            await trio.sleep(_LIVENESS_PERIOD)
            if conn.rotating or ws is not conn._ws:
                continue
            now = trio.current_time()
            watch.sync(conn.streams, now)
            found = watch.check(now, self._event_count, conn.frames - conn.control_replies)
            if found.zombie is not None:
                silence = found.zombie
                market = conn.frames - conn.control_replies
                answered = await self._answers_ping(ws)
                if conn.frames - conn.control_replies != market or ws is not conn._ws:
                    continue  # data came while the ping waited for its turn: not silent
                if answered:
                    conn.zombie_replacements += 1
                    log.warning(
                        "[%s] zombie: no market frame on %d streams for %.1f s while pongs "
                        "still arrive: replacing the connection", conn.conn_id,
                        len(conn.streams), silence,
                    )  # fmt: skip
                    conn._rotate()
                else:  # nothing at all: a dead peer, no need to wait longer
                    log.warning("[%s] no market frame for %.1f s and no pong: reconnecting",
                                conn.conn_id, silence)  # fmt: skip
                    conn._end_session(f"no market frame for {silence:.1f} s and no pong")
            elif found.overdue:
                await self._verify_streams(ws, found.overdue)
            if conn._refused_retry and ws is conn._ws and not conn.rotating:
                await conn._control.retry_refused(ws)

    async def _answers_ping(self, ws: WebSocketConnection) -> bool:
        """Ping (paced) and wait a bounded time for the pong: does the peer still answer?

        The wait for a control slot comes first and is not part of that bound: a pace
        kept busy by SUBSCRIBE traffic is not a dead peer (see `silence`)."""
        conn = self._conn
        await acquire(lambda: conn.control_limiter)
        with trio.move_on_after(min(5.0, conn.silence_timeout / 2)):
            await ws.ping()
            return True
        return False

    def _event_count(self, symbol: str, kind: str, interval: str | None) -> int | None:
        """``symbol``'s count of ``kind`` events (klines: of ``interval``, from its candle
        book, so that each interval is judged alone), None while its actor is not live."""
        state = self._conn.router.state_of(symbol)
        if state is None or not state.live or state.quarantined:
            return None
        if interval is not None:
            return state.machine.candles.updates(interval)
        return state.machine.count(kind)

    async def _verify_streams(self, ws: WebSocketConnection, overdue: tuple[Group, ...]) -> None:
        """Ask the exchange whether it still lists the silent streams; subscribe again
        those it forgot, leave the others (a quiet market)."""
        conn = self._conn
        conn.stream_checks += 1
        try:
            listed = set(await conn._control.list_subscriptions(ws))
        except SubscriptionError as exc:
            log.info("[%s] LIST_SUBSCRIPTIONS for silent streams failed: %s", conn.conn_id, exc)
            return
        now = trio.current_time()
        missing: list[Group] = []
        for group in overdue:
            if any(n not in listed and n in conn.streams for n in group.names):
                missing.append(group)
                self._watch.resubscribed(group, now)
            else:
                self._watch.listed(group, now)
                log.info("[%s] %s silent past its cadence but still subscribed (a quiet "
                         "market)", conn.conn_id, ", ".join(group.names))  # fmt: skip
        names = [n for n in names_of(missing) if n not in listed and n in conn.streams]
        if not names:
            return
        conn.stream_resubscribes += len(names)
        log.warning("[%s] the exchange no longer lists %s (silent past its cadence): "
                    "subscribing again", conn.conn_id, ", ".join(names))  # fmt: skip
        try:
            await conn._control.send_subscribe(ws, names)
        except SubscriptionError as exc:
            if conn._ws is ws:  # no reply on a live session: replace it
                conn._end_session(f"SUBSCRIBE failed: {exc.message}")
