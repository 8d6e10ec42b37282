"""The connection actor: one combined-stream WebSocket, kept alive, fed to the router.

It opens ``/stream`` with trio-websocket (TLS verified for ``wss://``), subscribes its
shard of streams with paced SUBSCRIBE frames (replies matched by id), hands every
frame to the router with its receive time in ns, watches for silence (ping, then
reconnect), and reconnects with exponential backoff and full jitter, resubscribing
everything, until its attempts are exhausted (`ConnectionFailed`).

Whatever ends a session is classified in one place (`gateway.runtime.endings`): the
exchange and the network can only ever cause a reconnect; a stream the exchange
refuses is dropped alone (`on_refused`); a 1008 close slows the control pace.
"""

from __future__ import annotations

import base64
import logging
import math
import random
import time
import urllib.parse
from collections import deque
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

import trio
from trio_websocket import WebSocketConnection

from gateway.core.backoff import ReconnectPolicy
from gateway.core.codec import ControlEncoder
from gateway.core.events import ControlError, ControlReply, ServerShutdown
from gateway.core.ratelimit import RollingWindowLimiter
from gateway.core.redact import redact_url, split_credentials
from gateway.core.streams import chunk_for_control
from gateway.errors import (
    ConfigError,
    ConnectionFailed,
    ConnectionLost,
    InternalError,
    SubscriptionError,
)
from gateway.runtime.endings import NETWORK_ERRORS, EndKind, SessionEnded, classify
from gateway.runtime.liveness import Group, StreamWatch, names_of
from gateway.runtime.router import NOT_MARKET, Notice, Router
from gateway.runtime.tls import client_ssl_context
from gateway.runtime.websocket import open_websocket
from gateway.stats import ConnectionStats
from gateway.validators import url_problem

log = logging.getLogger(__name__)

_MAX_PACE_WINDOW = 8.0  # seconds: the slowest control pace after repeated 1008 closes
_REFUSED_ALL = 4  # "Too many subscriptions": the whole chunk is refused, no bisecting
_LIVENESS_PERIOD = 1.0  # seconds between proof-of-life checks (gateway.runtime.liveness)
#: A refused stream is asked for again after 5 s, 10 s, 20 s ... at most every 5 minutes:
#: a refusal can be passing (the exchange's own trouble), and once it is accepted again
#: its gap is detected and backfilled like any other.
REFUSED_RETRY = ReconnectPolicy(initial=5.0, factor=2.0, cap=300.0, max_attempts=None)

#: ``on_refused(stream, code, message)``: the exchange refused ``stream``.
RefusedHook = Callable[[str, "int | None", str], None]


class Connection:
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
        on_refused: RefusedHook | None = None,
        reply_timeout: float = 10.0,
        stream_silence_factor: float = 5.0,
        trade_silence_floor: float = 10.0,
        ca_file: str = "",
    ) -> None:
        self.conn_id = conn_id
        self.ca_file = ca_file  #: extra CAs trusted for wss:// (GatewayConfig.ca_file)
        problem = url_problem(base_url, ("ws", "wss"))
        if problem is not None:  # never guess a host or speak plaintext for https://
            raise ConfigError(f"url must be a ws:// or wss:// URL with a host; got "
                              f"{redact_url(base_url)!r} ({problem})")  # fmt: skip
        #: The URL as it may be shown: logs, errors, stats (credentials masked).
        self.display_url = redact_url(base_url.rstrip("/"))
        bare, user, password = split_credentials(base_url)
        self.base_url = bare.rstrip("/")
        # Credentials in the URL go in the handshake's Authorization header, not the URL.
        self._headers: list[tuple[bytes, bytes]] | None = None
        if user is not None:
            token = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
            self._headers = [(b"Authorization", f"Basic {token}".encode())]
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
        self.on_refused = on_refused
        self.rotating = False
        self._stopping = False
        #: Why `run` gave up for good (set by the connections supervisor's child).
        self.failure: ConnectionFailed | None = None
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
        #: Streams the exchange refused: name -> (code, message). Asked for again later.
        self.refused: dict[str, tuple[int | None, str]] = {}
        #: Refused streams: name -> (refusals so far, trio time of the next SUBSCRIBE).
        self._refused_retry: dict[str, tuple[int, float]] = {}
        self.refusal_retries = 0  #: SUBSCRIBEs sent again for refused streams
        #: 1008 closes received (the exchange's rate penalty); each slows the pace.
        self.rate_penalties = 0
        self._end_reason = "session ended"
        self._opened = False  # this session's socket opened (else: "could not connect")
        self.rotations = 0
        self.frames = 0
        self.control_frames = 0
        #: When each recent control frame was sent (trio time), for diagnostics and tests.
        self.control_sent_at: deque[float] = deque(maxlen=1000)
        self.last_error: str | None = None
        #: Proof of life per stream (see `gateway.runtime.liveness`), checked every second.
        self._watch = StreamWatch(stream_silence_factor, trade_silence_floor)
        #: Frames that carried no market data (control replies, unknown, malformed,
        #: unrouted): not proof of life for the streams.
        self.control_replies = 0
        #: Replaced because no stream sent anything while pings were answered (a zombie).
        self.zombie_replacements = 0
        #: Streams subscribed again because the exchange no longer listed them.
        self.stream_resubscribes = 0
        #: LIST_SUBSCRIPTIONS asked because a stream was silent past its cadence.
        self.stream_checks = 0

    def inherit(self, old: Connection) -> None:
        """Carry ``old``'s history over to this connection, which replaces it (rotation):
        its counters, its control pace after rate penalties, the streams it had refused."""
        self.connects, self.reconnects, self.rotations = old.connects, old.reconnects, old.rotations
        self.control_limiter, self.rate_penalties = old.control_limiter, old.rate_penalties
        self.refused = dict(old.refused)
        self._refused_retry = dict(old._refused_retry)
        self.refusal_retries = old.refusal_retries
        self.zombie_replacements = old.zombie_replacements
        self.stream_resubscribes, self.stream_checks = old.stream_resubscribes, old.stream_checks

    # What the router hands back -----------------------------------------------

    def _on_notice(self, notice: Notice) -> None:
        """A frame that carried no market event, as `Router.route` returned it."""
        if notice is NOT_MARKET:
            self.on_not_market()
        elif type(notice) is ServerShutdown:
            self.on_server_shutdown(notice)
        else:
            self.on_control(notice)  # type: ignore[arg-type]

    def on_control(self, reply: ControlReply | ControlError) -> None:
        """Match a reply to its pending request by id."""
        self.control_replies += 1
        chan = self._pending.pop(reply.id, None)
        if chan is not None:
            chan.send_nowait(reply)
        elif isinstance(reply, ControlError):
            log.warning("[%s] unsolicited error from exchange: %s", self.conn_id, reply)

    def on_not_market(self) -> None:
        """A frame with no market event: counted apart, so a zombie that still sends
        junk is judged on its market frames alone."""
        self.control_replies += 1

    def on_server_shutdown(self, event: ServerShutdown) -> None:
        """The exchange will close us: rotate (or reconnect) at once."""
        log.info("[%s] serverShutdown received", self.conn_id)
        self._rotate()

    def _end_session(self, reason: str) -> None:
        """End the current session (if any); the connection reconnects."""
        if self._session_scope is not None:
            self._end_reason = reason
            self._session_scope.cancel()

    def _rotate(self) -> None:
        """Hand over to a fresh connection (make-before-break) or, without one, reconnect."""
        if self.rotating:
            return
        self.rotations += 1
        if self.on_rotate is not None:
            self.rotating = True
            self.on_rotate(self)
        else:
            self._end_session("rotation")

    async def stop(self) -> None:
        """Close the socket gracefully (bounded by a second) and end `run`, which returns."""
        self._stopping = True
        ws = self._ws
        if ws is not None:
            # The reader still runs: it reads the close reply, and the session ends.
            with trio.CancelScope(shield=True), trio.move_on_after(1):
                try:
                    await ws.aclose()
                except NETWORK_ERRORS as exc:  # the peer is gone already: nothing to close
                    log.debug("[%s] close: %r", self.conn_id, exc)
                await self._stopped.wait()
        self._run_scope.cancel()

    # Control requests ---------------------------------------------------------

    async def _request(self, ws: WebSocketConnection | None, rid: int, text: str) -> ControlReply:
        """One control request on session ``ws``, paced, and its reply.

        Raises `SubscriptionError`: with the exchange's code for an error reply; with
        code None when ``ws`` is not (or no longer) the live session, or no reply came.
        """
        if ws is None or ws is not self._ws:
            raise SubscriptionError(None, "not connected", rid)
        await self._acquire(lambda: self.control_limiter)
        if ws is not self._ws:
            raise SubscriptionError(None, "the session ended before the request went out", rid)
        send, recv = trio.open_memory_channel[Any](1)
        self._pending[rid] = send  # no checkpoint since the check: it belongs to ``ws``
        try:
            await ws.send_message(text)
            self.control_frames += 1
            self.control_sent_at.append(trio.current_time())
            with trio.fail_after(self.reply_timeout):
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

    @staticmethod
    async def _acquire(limiter: Callable[[], RollingWindowLimiter]) -> None:
        """Wait until ``limiter()`` (read again each time: it may be replaced) has a free
        slot, and take it."""
        while True:
            now = trio.current_time()
            if limiter().try_acquire(now):
                return
            await trio.sleep_until(limiter().next_free_time(now))

    async def subscribe(self, names: Iterable[str]) -> None:
        """Add streams; sent now if connected (chunked, paced), else on connect.

        A stream the exchange refuses is reported through ``on_refused`` and dropped;
        if the session ends first (or never answers), the next one subscribes everything.
        """
        new = [n for n in names if n not in self.streams]
        self.streams.update(dict.fromkeys(new))
        for n in new:
            self.refused.pop(n, None)
            self._refused_retry.pop(n, None)
        ws = self._ws
        if ws is not None and new:
            try:
                await self._send_subscribe(ws, new)
            except SubscriptionError as exc:
                if self._ws is ws:  # no reply on a live session: replace it
                    self._end_session(f"SUBSCRIBE failed: {exc.message}")

    async def unsubscribe(self, names: Iterable[str]) -> None:
        """Remove streams; sent now if connected (a later session never has them).

        An error reply is logged: the streams are gone from this connection either way
        (frames that still come for them are counted as unrouted).
        """
        names = list(names)
        for n in names:  # a refused stream is no longer asked for either
            self.refused.pop(n, None)
            self._refused_retry.pop(n, None)
        gone = [n for n in names if n in self.streams]
        for n in gone:
            del self.streams[n]
        ws = self._ws
        if ws is None:
            return
        try:
            for chunk in chunk_for_control(gone):
                await self._request(ws, *self.encoder.unsubscribe(chunk))
        except SubscriptionError as exc:
            log.info("[%s] UNSUBSCRIBE not confirmed: %s", self.conn_id, exc)

    async def list_subscriptions(self) -> list[str]:
        """Ask the exchange which streams this connection carries (`SubscriptionError`
        when it is not connected or does not answer)."""
        reply = await self._request(self._ws, *self.encoder.list_subscriptions())
        return list(reply.result or [])

    async def _send_subscribe(self, ws: WebSocketConnection, names: list[str]) -> None:
        for chunk in chunk_for_control(names):
            await self._subscribe_chunk(ws, chunk)

    async def _subscribe_chunk(self, ws: WebSocketConnection, chunk: list[str]) -> None:
        """SUBSCRIBE ``chunk`` on session ``ws``; an error reply names no stream, so
        halve and ask again until the refused names are alone, and drop just those."""
        chunk = [n for n in chunk if n in self.streams]  # unsubscribed meanwhile
        if not chunk:
            return
        try:
            await self._request(ws, *self.encoder.subscribe(chunk))
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
        """Drop ``name`` from this connection and ask for it again later (`REFUSED_RETRY`);
        only its first refusal is reported (a retry refused again is logged at info)."""
        if self.streams.pop(name, False) is False:
            return  # unsubscribed meanwhile: nothing to report
        self.refused[name] = (code, message)
        count = self._refused_retry.get(name, (0, 0.0))[0] + 1
        wait = REFUSED_RETRY.ceiling(count - 1)
        self._refused_retry[name] = (count, trio.current_time() + wait)
        if count > 1:
            log.info("[%s] exchange refused stream %s again (%d times): code %s: %s; next "
                     "try in %.0f s", self.conn_id, name, count, code, message, wait)  # fmt: skip
            return
        log.warning("[%s] exchange refused stream %s: code %s: %s; asking again in %.0f s",
                    self.conn_id, name, code, message, wait)  # fmt: skip
        if self.on_refused is not None:
            self.on_refused(name, code, message)

    async def _retry_refused(self, ws: WebSocketConnection) -> None:
        """SUBSCRIBE again the refused streams whose wait is over; those accepted stream
        again (their gap is detected and backfilled by the symbols)."""
        now = trio.current_time()
        due = [n for n, (_, at) in self._refused_retry.items() if at <= now and n in self.refused]
        if not due:
            return
        self.refusal_retries += len(due)
        self.streams.update(dict.fromkeys(due))
        try:
            await self._send_subscribe(ws, due)
        except SubscriptionError as exc:
            if self._ws is ws:  # no reply on a live session: replace it
                self._end_session(f"SUBSCRIBE failed: {exc.message}")
            return  # they are in self.streams: the next session asks for them
        for name in due:
            if name in self.streams:  # accepted this time
                self.refused.pop(name, None)
                count, _ = self._refused_retry.pop(name, (0, 0.0))
                log.warning("[%s] exchange accepted stream %s again after %d refusals",
                            self.conn_id, name, count)  # fmt: skip

    # The actor ----------------------------------------------------------------

    async def wait_live(self) -> None:
        """Wait until a session is up and subscribed (returns at once if one is)."""
        await self._live.wait()

    @property
    def ever_live(self) -> bool:
        """Whether a session of this connection ever went live (subscribed)."""
        return self._connected.is_set()

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Keep this connection alive until cancelled or `stop`; raises `ConnectionFailed`
        when the reconnect attempts run out, `InternalError` on a bug. It may run again
        after a bug (its supervisor does), with its streams, refusals and counters."""
        self._stopped = trio.Event()
        self._run_scope = scope = trio.CancelScope()
        if self._live.is_set():  # run again after a bug ended a live session
            self._live = trio.Event()
        try:
            if not self._stopping:
                with scope:
                    await self._run(task_status)
            self.state = "stopped"
            if not self._connected.is_set():
                task_status.started()  # stopped before it ever went live: nothing to wait for
        finally:
            self._stopped.set()

    async def _run(self, task_status: trio.TaskStatus[None]) -> None:
        attempt = 0
        _, host, port, _ = self._url_parts()
        endpoint = f"{host}:{port}"
        while True:
            self._opened = False
            try:
                await self._session(None if self._connected.is_set() else task_status)
            except (Exception, BaseExceptionGroup) as exc:  # noqa: BLE001 - classified below
                ending = classify(exc)
                if ending.kind is EndKind.CANCELLED:
                    assert ending.reraise is not None
                    raise ending.reraise from None
                if ending.kind is EndKind.BUG:
                    self.state = "failed"
                    raise InternalError(
                        f"[{self.conn_id}] bug in the connection actor: {ending.reason}"
                    ) from ending.cause
            self._ws = None
            self._live = trio.Event()
            if self._stopping:
                return
            if self.state == "live":
                attempt = 0
            self.state = "reconnecting"
            if ending.kind is EndKind.RATE_LIMITED:
                self._slow_down(ending.reason)
            attempt += 1
            exhausted = self.policy.exhausted(attempt)
            delay = None if exhausted else self.policy.delay(attempt - 1, self.rng)
            lost = ConnectionLost(
                self.conn_id, endpoint, ending.reason, opened=self._opened, attempt=attempt,
                max_attempts=self.policy.max_attempts, retry_in=delay,
            )  # fmt: skip
            lost.__cause__ = ending.cause
            self.last_error = lost.summary
            log.warning("%s", lost)
            if self.on_error is not None:
                self.on_error(lost)
            if delay is None:
                self.state = "failed"
                raise ConnectionFailed(
                    f"[{self.conn_id}] gave up after {attempt} attempts to "
                    f"{self.display_url}: {lost.summary}"
                ) from ending.cause
            self.reconnects += 1
            await trio.sleep(delay)

    def _slow_down(self, reason: str) -> None:
        """The exchange's rate penalty: halve the control pace (down to one frame per
        ``_MAX_PACE_WINDOW`` s) for the rest of this connection's life."""
        self.rate_penalties += 1
        limit, window = self.control_limiter.limit, self.control_limiter.window
        if limit > 1:
            limit //= 2
        else:
            window = min(window * 2, _MAX_PACE_WINDOW)
        self.control_limiter = RollingWindowLimiter(limit, window)
        log.warning("[%s] %s: control pace now %d frame(s) per %.1f s",
                    self.conn_id, reason, limit, window)  # fmt: skip

    def _url_parts(self) -> tuple[str, str, int, str]:
        parts = urllib.parse.urlsplit(self.base_url)
        secure = parts.scheme == "wss"
        port = parts.port or (443 if secure else 80)
        resource = (parts.path.rstrip("/") or "") + "/stream"
        if self.time_unit == "MICROSECOND":
            resource += "?timeUnit=MICROSECOND"
        assert parts.hostname  # checked when the connection was made
        return parts.scheme, parts.hostname, port, resource

    async def _session(self, task_status: trio.TaskStatus[None] | None) -> NoReturn:
        scheme, host, port, resource = self._url_parts()
        await self._acquire(lambda: self.connect_limiter)
        self.state = "connecting"
        self._end_reason = "session ended"
        async with trio.open_nursery() as nursery:
            with trio.fail_after(self.connect_timeout):
                tcp = await trio.open_tcp_stream(host, port)
                stream: Any = tcp
                if scheme == "wss":
                    ctx = client_ssl_context(self.ca_file)
                    stream = trio.SSLStream(tcp, ctx, server_hostname=host, https_compatible=True)
                    # Here, not in the WebSocket reader (which would hide why it failed): a
                    # certificate refused is then reported as such (ca_file, see config).
                    try:
                        await stream.do_handshake()
                    except BaseException:
                        await trio.aclose_forcefully(stream)
                        raise
                try:
                    ws = await open_websocket(nursery, stream, host, resource, self._headers)
                except BaseException:
                    await trio.aclose_forcefully(stream)
                    raise
            try:
                self._ws = ws
                self._opened = True
                self.connects += 1
                self.control_limiter = RollingWindowLimiter(
                    self.control_limiter.limit, self.control_limiter.window
                )
                with trio.CancelScope() as scope:
                    self._session_scope = scope
                    nursery.start_soon(self._watchdog, ws, scope)
                    nursery.start_soon(self._liveness, ws)
                    if self.streams:
                        # Subscribe from a side task: replies arrive through _receive.
                        nursery.start_soon(
                            self._subscribe_all, ws, list(self.streams), task_status
                        )
                    else:
                        self._mark_live(task_status)
                    await self._receive(ws)
                raise SessionEnded(self._end_reason)
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
        self, ws: WebSocketConnection, names: list[str], task_status: trio.TaskStatus[None] | None
    ) -> None:
        await self._send_subscribe(ws, names)
        self._mark_live(task_status)

    def _mark_live(self, task_status: trio.TaskStatus[None] | None) -> None:
        self.state = "live"
        self._live.set()
        log.info("[%s] live with %d streams", self.conn_id, len(self.streams))
        if not self._connected.is_set():
            self._connected.set()
        if task_status is not None:
            task_status.started()


    async def _receive(self, ws: WebSocketConnection) -> None:
        route = self.router.route
        clock = time.time_ns
        get = ws.get_message
        tap = self.router.frame_tap
        notice = self._on_notice
        if tap is None:
            while True:
                frame = await get()
                self.frames += 1
                if (note := route(frame, clock())) is not None:
                    notice(note)
        else:  # a separate loop, so that an unused tap costs nothing per frame
            while True:
                frame = await get()
                self.frames += 1
                now = clock()
                try:
                    tap(frame, now)
                except Exception as exc:  # noqa: BLE001 - user code: counted, never fatal
                    self.router.tap_failed(exc)
                if (note := route(frame, now)) is not None:
                    notice(note)

    async def _watchdog(self, ws: WebSocketConnection, scope: trio.CancelScope) -> None:
        """Ping after half the silence timeout without frames; reconnect if neither a frame
        nor the pong came within the other half (the wait for a control slot not counted)."""
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
            # Waiting for a control slot (a busy pace) is not silence: only ping -> pong is
            # timed. Not bounded: a slot frees within the pace's window per waiter ahead,
            # and the session's end cancels the wait.
            await self._acquire(lambda: self.control_limiter)
            with trio.move_on_after(half) as ping_scope:
                await ws.ping()
            if ping_scope.cancelled_caught and self.frames == seen:
                log.warning("[%s] silent for %.1fs: reconnecting", self.conn_id, 2 * half)
                self._end_reason = f"silent for {2 * half:.1f} s"
                scope.cancel()
                return

    async def _liveness(self, ws: WebSocketConnection) -> None:
        """Proof of life per stream, every second once the session is live: replace a
        zombie (make-before-break), verify and resubscribe a stream silent alone."""
        live = self._live
        await live.wait()
        watch = self._watch
        now = trio.current_time()
        watch.sync(self.streams, now)
        watch.reset(now)
        while ws is self._ws:
            await trio.sleep(_LIVENESS_PERIOD)
            if self.rotating or ws is not self._ws:
                continue
            now = trio.current_time()
            watch.sync(self.streams, now)
            found = watch.check(now, self._event_count, self.frames - self.control_replies)
            if found.zombie is not None:
                silence = found.zombie
                market = self.frames - self.control_replies
                answered = await self._answers_ping(ws)
                if self.frames - self.control_replies != market or ws is not self._ws:
                    continue  # data came while the ping waited for its turn: not silent
                if answered:
                    self.zombie_replacements += 1
                    log.warning(
                        "[%s] zombie: no market frame on %d streams for %.1f s while pongs "
                        "still arrive: replacing the connection", self.conn_id,
                        len(self.streams), silence,
                    )  # fmt: skip
                    self._rotate()
                else:  # nothing at all: a dead peer, no need to wait longer
                    log.warning("[%s] no market frame for %.1f s and no pong: reconnecting",
                                self.conn_id, silence)  # fmt: skip
                    self._end_session(f"no market frame for {silence:.1f} s and no pong")
            elif found.overdue:
                await self._verify_streams(ws, found.overdue)
            if self._refused_retry and ws is self._ws and not self.rotating:
                await self._retry_refused(ws)

    async def _answers_ping(self, ws: WebSocketConnection) -> bool:
        """Ping (paced) and wait a bounded time for the pong: does the peer still answer?

        The wait for a control slot comes first and is not part of that bound: a pace
        kept busy by SUBSCRIBE traffic is not a dead peer (see `_watchdog`)."""
        await self._acquire(lambda: self.control_limiter)
        with trio.move_on_after(min(5.0, self.silence_timeout / 2)):
            await ws.ping()
            return True
        return False

    def _event_count(self, symbol: str, kind: str, interval: str | None) -> int | None:
        """``symbol``'s count of ``kind`` events (klines: of ``interval``, from its candle
        book, so that each interval is judged alone), None while its actor is not live."""
        state = self.router.state_of(symbol)
        if state is None or not state.live or state.quarantined:
            return None
        if interval is not None:
            return state.machine.candles.updates(interval)
        return state.machine.counts.get(kind, 0)

    async def _verify_streams(self, ws: WebSocketConnection, overdue: tuple[Group, ...]) -> None:
        """Ask the exchange whether it still lists the silent streams; subscribe again
        those it forgot, leave the others (a quiet market)."""
        self.stream_checks += 1
        try:
            reply = await self._request(ws, *self.encoder.list_subscriptions())
        except SubscriptionError as exc:
            log.info("[%s] LIST_SUBSCRIPTIONS for silent streams failed: %s", self.conn_id, exc)
            return
        listed = set(reply.result or [])
        now = trio.current_time()
        missing: list[Group] = []
        for group in overdue:
            if any(n not in listed and n in self.streams for n in group.names):
                missing.append(group)
                self._watch.resubscribed(group, now)
            else:
                self._watch.listed(group, now)
                log.info("[%s] %s silent past its cadence but still subscribed (a quiet "
                         "market)", self.conn_id, ", ".join(group.names))  # fmt: skip
        names = [n for n in names_of(missing) if n not in listed and n in self.streams]
        if not names:
            return
        self.stream_resubscribes += len(names)
        log.warning("[%s] the exchange no longer lists %s (silent past its cadence): "
                    "subscribing again", self.conn_id, ", ".join(names))  # fmt: skip
        try:
            await self._send_subscribe(ws, names)
        except SubscriptionError as exc:
            if self._ws is ws:  # no reply on a live session: replace it
                self._end_session(f"SUBSCRIBE failed: {exc.message}")

    def snapshot(self, restarts: int = 0) -> ConnectionStats:
        """Statistics for summaries (``restarts``: its supervisor's count)."""
        return ConnectionStats(
            id=self.conn_id, state=self.state, streams=len(self.streams),
            connects=self.connects, reconnects=self.reconnects, rotations=self.rotations,
            frames=self.frames, control_frames=self.control_frames,
            control_pace=f"{self.control_limiter.limit}/{self.control_limiter.window:g}s",
            rate_penalties=self.rate_penalties, zombie_replacements=self.zombie_replacements,
            stream_resubscribes=self.stream_resubscribes, stream_checks=self.stream_checks,
            refused=dict(self.refused), refusal_retries=self.refusal_retries,
            last_error=self.last_error, restarts=restarts,
        )  # fmt: skip
