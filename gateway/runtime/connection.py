"""The connection actor: one combined-stream WebSocket, kept alive, fed to the router.

It opens ``/stream`` with trio-websocket (TLS verified for ``wss://``), subscribes its
shard of streams with paced SUBSCRIBE frames (replies matched by id), hands every
frame to the router with its receive time in ns, watches for silence (ping, then
reconnect), and reconnects with exponential backoff and full jitter, resubscribing
everything, until its attempts are exhausted (`ConnectionFailed`).
"""

from __future__ import annotations

import logging
import math
import random
import ssl
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any

import trio
from trio_websocket import ConnectionClosed, HandshakeError, WebSocketConnection, wrap_client_stream

from gateway.core.backoff import ReconnectPolicy
from gateway.core.codec import ControlEncoder
from gateway.core.events import ControlError, ControlReply, ServerShutdown
from gateway.core.ratelimit import RollingWindowLimiter
from gateway.core.redact import redact_url
from gateway.core.streams import chunk_for_control
from gateway.errors import ConnectionFailed, SubscriptionError
from gateway.runtime.groups import collapse
from gateway.runtime.router import ControlSink, Router

log = logging.getLogger(__name__)

_NETWORK_ERRORS = (OSError, ConnectionClosed, HandshakeError, trio.BrokenResourceError)


class _Reconnect(Exception):
    """Internal: this session must end and the connection be re-established."""


class Connection(ControlSink):
    """One connection actor; `run` loops connect / subscribe / receive / reconnect."""

    def __init__(
        self,
        conn_id: str,
        base_url: str,
        streams: Iterable[str],
        router: Router,
        *,
        policy: ReconnectPolicy,
        connect_limiter: RollingWindowLimiter,
        control_rate: int = 4,
        silence_timeout: float = 30.0,
        connect_timeout: float = 10.0,
        max_age: float = 23 * 3600.0,
        time_unit: str = "MILLISECOND",
        rng: random.Random | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        on_rotate: Callable[[Connection], None] | None = None,
        reply_timeout: float = 10.0,
    ) -> None:
        self.conn_id = conn_id
        self.base_url = base_url.rstrip("/")
        #: The URL as it may be shown: logs, errors, stats (credentials masked).
        self.display_url = redact_url(self.base_url)
        self.streams: dict[str, None] = dict.fromkeys(streams)
        self.router = router
        self.policy = policy
        self.connect_limiter = connect_limiter
        self.control_limiter = RollingWindowLimiter(control_rate, 1.0)
        self.silence_timeout = silence_timeout
        self.connect_timeout = connect_timeout
        self.max_age = max_age
        self.time_unit = time_unit.upper()
        self.rng = rng or random.Random()
        self.on_error = on_error
        self.on_rotate = on_rotate
        self.rotating = False
        self._stopping = False
        self._stopped = trio.Event()
        self._run_scope = trio.CancelScope()
        self.reply_timeout = reply_timeout
        self.encoder = ControlEncoder()
        self._ws: WebSocketConnection | None = None
        self._pending: dict[int | str | None, trio.MemorySendChannel[Any]] = {}
        self._session_scope: trio.CancelScope | None = None
        self._connected = trio.Event()
        self._live = trio.Event()
        # Statistics
        self.state = "idle"
        self.connects = 0
        self.reconnects = 0
        self.rotations = 0
        self.frames = 0
        self.control_frames = 0
        #: When each recent control frame was sent (trio time), for diagnostics and tests.
        self.control_sent_at: deque[float] = deque(maxlen=1000)
        self.last_error: str | None = None

    # ControlSink --------------------------------------------------------------

    def on_control(self, reply: ControlReply | ControlError) -> None:
        """Match a reply to its pending request by id."""
        chan = self._pending.pop(reply.id, None)
        if chan is not None:
            chan.send_nowait(reply)
        elif isinstance(reply, ControlError):
            log.warning("[%s] unsolicited error from exchange: %s", self.conn_id, reply)

    def on_server_shutdown(self, event: ServerShutdown) -> None:
        """The exchange will close us: rotate (or reconnect) at once."""
        log.info("[%s] serverShutdown received", self.conn_id)
        self._rotate()

    def _rotate(self) -> None:
        """Hand over to a fresh connection (make-before-break) or, without one, reconnect."""
        if self.rotating:
            return
        self.rotations += 1
        if self.on_rotate is not None:
            self.rotating = True
            self.on_rotate(self)
        elif self._session_scope is not None:
            self._session_scope.cancel()

    async def stop(self) -> None:
        """Close the socket gracefully (bounded by a second) and end `run`, which returns."""
        self._stopping = True
        ws = self._ws
        if ws is not None:
            # The reader still runs: it reads the close reply, and the session ends.
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                await ws.aclose()
                await self._stopped.wait()
        self._run_scope.cancel()

    # Control requests ---------------------------------------------------------

    async def _request(self, rid: int, text: str) -> ControlReply:
        ws = self._ws
        if ws is None:
            raise SubscriptionError(None, "not connected", rid)
        send, recv = trio.open_memory_channel[Any](1)
        self._pending[rid] = send
        try:
            await self._pace()
            await ws.send_message(text)
            self.control_frames += 1
            self.control_sent_at.append(trio.current_time())
            with trio.fail_after(self.reply_timeout):
                reply = await recv.receive()
        except trio.TooSlowError:
            raise SubscriptionError(None, "no reply from exchange", rid) from None
        except trio.EndOfChannel:
            raise SubscriptionError(None, "connection closed before the reply", rid) from None
        finally:
            self._pending.pop(rid, None)
        if isinstance(reply, ControlError):
            raise SubscriptionError(reply.code, reply.message, rid)
        assert isinstance(reply, ControlReply)
        return reply

    async def _pace(self) -> None:
        """Wait until the rolling-window limiter allows one more outgoing frame, and take it."""
        while True:
            now = trio.current_time()
            if self.control_limiter.try_acquire(now):
                return
            await trio.sleep_until(self.control_limiter.next_free_time(now))

    async def subscribe(self, names: Iterable[str]) -> None:
        """Add streams; sent now if connected (chunked, paced), else on connect."""
        new = [n for n in names if n not in self.streams]
        self.streams.update(dict.fromkeys(new))
        if self._ws is not None and new:
            await self._send_subscribe(new)

    async def unsubscribe(self, names: Iterable[str]) -> None:
        """Remove streams; sent now if connected."""
        gone = [n for n in names if n in self.streams]
        for n in gone:
            del self.streams[n]
        if self._ws is not None:
            for chunk in chunk_for_control(gone):
                await self._request(*self.encoder.unsubscribe(chunk))

    async def list_subscriptions(self) -> list[str]:
        """Ask the exchange which streams this connection carries."""
        reply = await self._request(*self.encoder.list_subscriptions())
        return list(reply.result or [])

    async def _send_subscribe(self, names: list[str]) -> None:
        for chunk in chunk_for_control(names):
            await self._request(*self.encoder.subscribe(chunk))

    # The actor ----------------------------------------------------------------

    async def wait_live(self) -> None:
        """Wait until a session is up and subscribed (returns at once if one is)."""
        await self._live.wait()

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep this connection alive until cancelled or `stop`; raises `ConnectionFailed`
        when the reconnect attempts run out."""
        try:
            with self._run_scope:
                await self._run(task_status)
            self.state = "stopped"
        finally:
            self._stopped.set()

    async def _run(self, task_status: trio.TaskStatus[None]) -> None:
        attempt = 0
        while True:
            try:
                await self._session(None if self._connected.is_set() else task_status)
            except (*_NETWORK_ERRORS, _Reconnect, SubscriptionError, trio.TooSlowError) as exc:
                self._ws = None
                self._live = trio.Event()
                if self._stopping:
                    return
                self.last_error = repr(exc)
                if self.state == "live":
                    attempt = 0
                self.state = "reconnecting"
                if self.on_error is not None:
                    self.on_error(exc)
                if self.policy.exhausted(attempt + 1):
                    self.state = "failed"
                    raise ConnectionFailed(
                        f"[{self.conn_id}] gave up after {attempt + 1} attempts "
                        f"to {self.display_url}: {exc!r}"
                    ) from exc
                delay = self.policy.delay(attempt, self.rng)
                log.warning(
                    "[%s] connection lost (%r); reconnect attempt %d in %.2fs",
                    self.conn_id, exc, attempt + 1, delay,
                )  # fmt: skip
                attempt += 1
                self.reconnects += 1
                await trio.sleep(delay)

    def _url_parts(self) -> tuple[str, str, int, str]:
        parts = urllib.parse.urlsplit(self.base_url)
        secure = parts.scheme == "wss"
        port = parts.port or (443 if secure else 80)
        resource = (parts.path.rstrip("/") or "") + "/stream"
        if self.time_unit == "MICROSECOND":
            resource += "?timeUnit=MICROSECOND"
        return parts.scheme, parts.hostname or "127.0.0.1", port, resource

    async def _session(self, task_status: trio.TaskStatus[None] | None) -> None:
        scheme, host, port, resource = self._url_parts()
        await self._wait_connect_slot()
        self.state = "connecting"
        try:
            await self._session_body(scheme, host, port, resource, task_status)
        except BaseExceptionGroup as group:
            raise collapse(group) from None

    async def _session_body(
        self, scheme: str, host: str, port: int, resource: str,
        task_status: trio.TaskStatus[None] | None,
    ) -> None:  # fmt: skip
        async with trio.open_nursery() as nursery:
            with trio.fail_after(self.connect_timeout):
                tcp = await trio.open_tcp_stream(host, port)
                stream: Any = tcp
                if scheme == "wss":
                    ctx = ssl.create_default_context()
                    stream = trio.SSLStream(tcp, ctx, server_hostname=host, https_compatible=True)
                try:
                    ws = await wrap_client_stream(
                        nursery, stream, host, resource, message_queue_size=256,
                        max_message_size=8 * 2**20, receive_buffer_size=65536,
                    )  # fmt: skip
                except BaseException:
                    await trio.aclose_forcefully(stream)
                    raise
            try:
                self._ws = ws
                self.connects += 1
                self.control_limiter = RollingWindowLimiter(
                    self.control_limiter.limit, self.control_limiter.window
                )
                with trio.CancelScope() as scope:
                    self._session_scope = scope
                    nursery.start_soon(self._watchdog, ws, scope)
                    if self.streams:
                        # Subscribe from a side task: replies arrive through _receive.
                        nursery.start_soon(self._subscribe_all, list(self.streams), task_status)
                    else:
                        self._mark_live(task_status)
                    await self._receive(ws)
                raise _Reconnect("session ended (rotation or silence)")
            finally:
                self._ws = None
                self._session_scope = None
                for chan in self._pending.values():
                    chan.close()
                self._pending.clear()
                # Being cancelled, the reader task is gone and no close reply would be
                # read: close the stream at once rather than wait for the handshake.
                cancelled = trio.current_effective_deadline() == -math.inf
                with trio.CancelScope(shield=True):
                    if not cancelled:
                        with trio.move_on_after(1):
                            await ws.aclose()
                    await trio.aclose_forcefully(stream)
                # Last, with no checkpoint after it: a Cancelled raised here would be
                # absorbed by the nursery's own scope and hide the session's error.
                nursery.cancel_scope.cancel()

    async def _subscribe_all(
        self, names: list[str], task_status: trio.TaskStatus[None] | None
    ) -> None:
        await self._send_subscribe(names)
        self._mark_live(task_status)

    def _mark_live(self, task_status: trio.TaskStatus[None] | None) -> None:
        self.state = "live"
        self._live.set()
        log.info("[%s] live with %d streams", self.conn_id, len(self.streams))
        if not self._connected.is_set():
            self._connected.set()
        if task_status is not None:
            task_status.started()

    async def _wait_connect_slot(self) -> None:
        while True:
            now = trio.current_time()
            if self.connect_limiter.try_acquire(now):
                return
            await trio.sleep_until(self.connect_limiter.next_free_time(now))

    async def _receive(self, ws: WebSocketConnection) -> None:
        route = self.router.route
        clock = time.time_ns
        get = ws.get_message
        tap = self.router.frame_tap
        if tap is None:
            while True:
                frame = await get()
                self.frames += 1
                route(frame, clock(), self)
        else:  # a separate loop, so that an unused tap costs nothing per frame
            while True:
                frame = await get()
                self.frames += 1
                now = clock()
                tap(frame, now)
                route(frame, now, self)

    async def _watchdog(self, ws: WebSocketConnection, scope: trio.CancelScope) -> None:
        """Ping after half the silence timeout without frames; reconnect after the whole."""
        opened = trio.current_time()
        half = self.silence_timeout / 2
        while True:
            seen = self.frames
            await trio.sleep(half)
            if trio.current_time() - opened >= self.max_age:
                log.info("[%s] rotating before the exchange's lifetime limit", self.conn_id)
                self._rotate()
                return
            if self.frames != seen:
                continue
            with trio.move_on_after(half) as ping_scope:
                await self._pace()
                await ws.ping()
            if ping_scope.cancelled_caught and self.frames == seen:
                log.warning("[%s] silent for %.1fs: reconnecting", self.conn_id, 2 * half)
                self.last_error = "silence"
                scope.cancel()
                return

    def snapshot(self) -> dict[str, Any]:
        """Statistics for summaries."""
        return {
            "id": self.conn_id,
            "state": self.state,
            "streams": len(self.streams),
            "connects": self.connects,
            "reconnects": self.reconnects,
            "rotations": self.rotations,
            "frames": self.frames,
            "control_frames": self.control_frames,
            "last_error": self.last_error,
        }
