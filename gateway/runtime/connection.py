"""The connection actor: one combined-stream WebSocket, kept alive, fed to the router.

It opens ``/stream`` with trio-websocket (TLS verified for ``wss://``; `dial`), subscribes
its shard of streams with paced SUBSCRIBE frames (replies matched by id; `ControlChannel`),
hands every frame to the router with its receive time in ns, watches for silence (ping,
then reconnect) and per-stream proof of life (`SessionWatchdog`), and reconnects with
exponential backoff and full jitter, resubscribing everything, until its attempts are
exhausted (`ConnectionFailed`). Those parts act on the `Connection`'s state.

Whatever ends a session is classified in one place (`gateway.runtime.endings`): the
exchange and the network can only ever cause a reconnect; a stream the exchange
refuses is dropped alone (`on_refused`); a 1008 close slows the control pace.
"""
from __future__ import annotations

import logging
import random
import time
from collections import deque
from collections.abc import Callable, Iterable
from typing import NoReturn

import trio
from trio_websocket import WebSocketConnection

from gateway.core.backoff import ReconnectPolicy
from gateway.core.frames import ControlError, ControlReply, ServerShutdown
from gateway.core.ratelimit import RollingWindowLimiter
from gateway.errors import ConnectionFailed, ConnectionLost, InternalError
from gateway.runtime.control_channel import REFUSED_RETRY, ControlChannel, RefusedHook, acquire
from gateway.runtime.dial import close_socket, open_socket, split_base_url, url_parts
from gateway.runtime.endings import NETWORK_ERRORS, EndKind, SessionEnded, classify
from gateway.runtime.router import NOT_MARKET, Notice, Router
from gateway.runtime.watchdog import SessionWatchdog
from gateway.stats import ConnectionStats

__all__ = ["REFUSED_RETRY", "Connection", "RefusedHook"]

log = logging.getLogger(__name__)

#: Frames the receive loop takes per wake-up when they are already queued: the rest of
#: the program (subscribers, watchdogs, control replies) runs at least this often.
RECEIVE_BURST = 64

_Route = Callable[[str | bytes, int], Notice]


def _none_queued() -> str | bytes:
    """`get_message_nowait` of a connection class that has none: one frame per wake-up."""
    raise trio.WouldBlock


class Connection:
    """One connection actor; `run` loops connect / subscribe / receive / reconnect."""

    def __init__(
        self, conn_id: str, base_url: str, streams: Iterable[str], router: Router, *,
        policy: ReconnectPolicy, connect_limiter: RollingWindowLimiter, control_rate: int = 4,
        silence_timeout: float = 30.0, connect_timeout: float = 10.0,
        max_age: float = 23 * 3600.0, time_unit: str = "MILLISECOND",
        rng: random.Random | None = None,
        on_error: Callable[[BaseException], None] | None = None,
        on_rotate: Callable[[Connection], None] | None = None,
        on_refused: RefusedHook | None = None, reply_timeout: float = 10.0,
        stream_silence_factor: float = 5.0, trade_silence_floor: float = 10.0,
        ca_file: str = "",
    ) -> None:  # fmt: skip
        self.conn_id = conn_id
        self.ca_file = ca_file  #: extra CAs trusted for wss:// (GatewayConfig.ca_file)
        #: ``display_url``: the URL as it may be shown: logs, errors, stats (credentials
        #: masked). Credentials go in the handshake's Authorization header (``_headers``).
        self.base_url, self.display_url, self._headers = split_base_url(base_url)
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
        self._control = ControlChannel(self)  #: SUBSCRIBE and the like, replies by id
        #: The watchdog tasks of each session, and its proof of life per stream.
        self._watchdog = SessionWatchdog(self, stream_silence_factor, trade_silence_floor)
        self._ws: WebSocketConnection | None = None
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
        self._control.on_reply(reply)

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

    # Control requests (`ControlChannel`) ---------------------------------------

    async def subscribe(self, names: Iterable[str]) -> None:
        """Add streams; sent now if connected (chunked, paced), else on connect; a stream
        refused is reported (``on_refused``) and dropped (`ControlChannel.subscribe`)."""
        await self._control.subscribe(names)

    async def unsubscribe(self, names: Iterable[str]) -> None:
        """Remove streams; sent now if connected (a later session never has them), an
        error reply only logged (`ControlChannel.unsubscribe`)."""
        await self._control.unsubscribe(names)

    async def list_subscriptions(self) -> list[str]:
        """Ask the exchange which streams this connection carries (`SubscriptionError`
        when it is not connected or does not answer)."""
        return await self._control.list_subscriptions(self._ws)

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
        """`run`'s loop: a session, then (unless stopped) a reconnect after its backoff
        delay, or `ConnectionFailed` once the attempts are used up."""
        attempt = 0
        _, host, port, _ = url_parts(self.base_url, self.time_unit)
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
                self._control.slow_down(ending.reason)
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

    async def _session(self, task_status: trio.TaskStatus[None] | None) -> NoReturn:
        """One session: connect, subscribe (from a side task) and receive until it ends,
        which it always does by raising; the socket is closed on the way out."""
        scheme, host, port, resource = url_parts(self.base_url, self.time_unit)
        await acquire(lambda: self.connect_limiter)
        self.state = "connecting"
        self._end_reason = "session ended"
        async with trio.open_nursery() as nursery:
            with trio.fail_after(self.connect_timeout):
                ws, stream = await open_socket(
                    nursery, scheme, host, port, resource, self.ca_file, self._headers
                )
            try:
                self._ws = ws
                self._opened = True
                self.connects += 1
                self.control_limiter = RollingWindowLimiter(
                    self.control_limiter.limit, self.control_limiter.window
                )
                with trio.CancelScope() as scope:
                    self._session_scope = scope
                    nursery.start_soon(self._watchdog.silence, ws, scope)
                    nursery.start_soon(self._watchdog.liveness, ws)
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
                self._control.close_pending()
                await close_socket(ws, stream)
                # Last, with no checkpoint after it: a Cancelled raised here would be
                # absorbed by the nursery's own scope and hide the session's error.
                nursery.cancel_scope.cancel()

    async def _subscribe_all(
        self, ws: WebSocketConnection, names: list[str], task_status: trio.TaskStatus[None] | None
    ) -> None:
        """Subscribe ``names`` on the session just opened, then mark it live."""
        await self._control.send_subscribe(ws, names)
        self._mark_live(task_status)

    def _mark_live(self, task_status: trio.TaskStatus[None] | None) -> None:
        """The session is up and subscribed: `wait_live` returns, `run` has started."""
        self.state = "live"
        self._live.set()
        log.info("[%s] live with %d streams", self.conn_id, len(self.streams))
        if not self._connected.is_set():
            self._connected.set()
        if task_status is not None:
            task_status.started()

    async def _receive(self, ws: WebSocketConnection) -> None:
        """The hot path: every frame of ``ws`` to the router, with its receive time in ns
        (and to the frame tap first, if there is one); what is not market data comes back.

        Frames already queued are taken without a checkpoint, up to `RECEIVE_BURST` per
        wake-up, so that a busy feed pays one scheduler pass per burst, not per frame.
        """
        route: _Route = self.router.route
        if (tap := self.router.frame_tap) is not None:
            route = self._tapped(tap, route)  # a wrapper, so that no tap costs nothing
        clock = time.time_ns
        get = ws.get_message
        take: Callable[[], str | bytes] = getattr(ws, "get_message_nowait", _none_queued)
        notice = self._on_notice
        while True:
            frame = await get()
            left = RECEIVE_BURST
            while True:
                self.frames += 1
                if (note := route(frame, clock())) is not None:
                    notice(note)
                left -= 1
                if not left:
                    break
                try:
                    frame = take()
                except trio.WouldBlock:
                    break

    def _tapped(self, tap: Callable[[str | bytes, int], None], route: _Route) -> _Route:
        """``route`` behind the frame tap, whose failures are counted, never fatal."""
        failed = self.router.tap_failed

        def tapped(frame: str | bytes, now: int) -> Notice:
            try:
                tap(frame, now)
            except Exception as exc:  # noqa: BLE001 - user code: counted, never fatal
                failed(exc)
            return route(frame, now)

        return tapped

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
