"""The WebSocket side: accept handshakes, then run each client's reader, writer, pinger
and lifetime tasks, enforcing the exchange's limits.

Built on trio-websocket's server-side `WebSocketConnection`, with two additions that its
public API lacks (kept in this module, pinned to trio-websocket 0.12): incoming ping and
pong frames are counted toward the message-rate limit (a metered wsproto connection),
and data frames, framed once by `encode.Frame`, are written in batches straight to the
connection's stream under its send lock.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import ssl
from collections import deque
from collections.abc import Callable, Generator

import orjson
import trio
import wsproto
from trio_websocket import CloseReason, ConnectionClosed, WebSocketConnection, WebSocketRequest
from wsproto.connection import ConnectionState
from wsproto.events import CloseConnection, Ping, Pong
from wsproto.events import Event as WsEvent

from gateway.simulator.config import SimulatorConfig
from gateway.simulator.http1 import AsgiApp, is_websocket_upgrade, read_head, serve_http
from gateway.simulator.hub import Hub, Session
from gateway.simulator.protocol import TargetError, handle_control, parse_target

__all__ = ["ConnectionLimiter", "WebSocketSide"]

logger = logging.getLogger(__name__)

_HANDSHAKE_TIMEOUT = 10.0
_BATCH_FRAMES = 1024


class _MeteredWS(wsproto.WSConnection):
    """A server wsproto connection that reports every incoming ping and pong, and plays
    the faults that live at the frame level: a deaf session reads nothing (no pong, no
    control reply, no close reply), and pings can precede the reply to a client's close."""

    def __init__(self, hub: Hub) -> None:
        super().__init__(wsproto.ConnectionType.SERVER)
        self.hub = hub
        self.on_control: Callable[[], None] | None = None
        self.session: Session | None = None

    def events(self) -> Generator[WsEvent, None, None]:
        for event in super().events():
            if self.session is not None and self.session.deaf:
                continue  # parsed and forgotten: the peer pings on but never answers
            if self.on_control is not None and isinstance(event, Ping | Pong):
                self.on_control()
            yield event

    def send(self, event: WsEvent) -> bytes:
        data = super().send(event)
        count = self.hub.pings_before_close
        if count and isinstance(event, CloseConnection) and self.state is ConnectionState.CLOSED:
            # The reply to the client's close: pings first, as a peer racing our close
            # does (trio-websocket #184). Framed by hand: wsproto refuses pings now.
            pings = b"".join(bytes([0x89, 2]) + f"{i:02d}".encode() for i in range(count))
            data = pings + data
        return data


async def _send_bytes(conn: WebSocketConnection, data: bytes) -> None:
    """Write pre-framed WebSocket bytes; raises ConnectionClosed once the socket is gone."""
    if conn.closed is not None:
        raise ConnectionClosed(conn.closed)
    async with conn._stream_lock:
        if conn.closed is not None:  # a close frame went out while we waited for the lock
            raise ConnectionClosed(conn.closed)
        try:
            await conn._stream.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            raise ConnectionClosed(CloseReason(1006, "connection lost")) from None


def _is_subscribe(message: str | bytes) -> bool:
    try:
        req = orjson.loads(message)
    except orjson.JSONDecodeError:
        return False
    return type(req) is dict and req.get("method") == "SUBSCRIBE"


def _log_refused(session_id: int, message: str | bytes, reason: str) -> None:
    """One WARNING line for a refused control message: the reason and the message's start."""
    text = message.decode("utf-8", "replace") if isinstance(message, bytes) else message
    shown = text[:200] + ("..." if len(text) > 200 else "")
    logger.warning("connection %d: refused control message %s: %s", session_id, shown, reason)


class ConnectionLimiter:
    """Sliding-window count of connection attempts (sans-I/O: ``now`` passed in)."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self._times: deque[float] = deque()

    def allow(self, now: float) -> bool:
        """Count one attempt at ``now``; False when more than ``limit`` fall in the window."""
        q = self._times
        while q and q[0] <= now - self.window:
            q.popleft()
        q.append(now)
        return len(q) <= self.limit


class WebSocketSide:
    """Serves the stream endpoints for one simulator; `serve` runs until cancelled."""

    def __init__(
        self, config: SimulatorConfig, hub: Hub, now_us: Callable[[], int],
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:  # fmt: skip
        self.config = config
        self.ssl_context = ssl_context  #: serve wss:// (TLS) when set
        #: the REST side's ASGI app, also served on this port (None: REST off)
        self.rest_app: AsgiApp | None = None
        self.hub = hub
        self.now_us = now_us
        self.limiter = ConnectionLimiter(
            config.max_connection_attempts, config.connection_attempt_window
        )
        self.refuse_until = -1.0
        self.refuse_status = 503
        self.port = 0
        self._ping_ids = itertools.count(1)

    async def serve(self, *, task_status: trio.TaskStatus[int] = trio.TASK_STATUS_IGNORED) -> None:
        """Listen on ``config.host:config.port``; reports the bound port when ready."""
        listeners = await trio.open_tcp_listeners(self.config.port, host=self.config.host)
        self.port = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as nursery:
            await nursery.start(trio.serve_listeners, self._serve_stream, listeners)
            task_status.started(self.port)

    async def _serve_stream(self, tcp: trio.SocketStream) -> None:
        try:
            peer = tcp.socket.getpeername()[:2]
        except OSError:
            peer = None
        if self.ssl_context is None:
            await self._serve_ws(tcp, peer)
            return
        tls = trio.SSLStream(tcp, self.ssl_context, server_side=True, https_compatible=True)
        done = False
        with trio.move_on_after(_HANDSHAKE_TIMEOUT):
            try:
                await tls.do_handshake()
                done = True
            except trio.BrokenResourceError as exc:  # the client refused our certificate...
                logger.warning("refused TLS handshake: %s", exc.__cause__ or exc)
        if done:
            await self._serve_ws(tls, peer)
        else:
            await trio.aclose_forcefully(tcp)

    async def _serve_ws(self, stream: trio.abc.Stream, peer: tuple[str, int] | None) -> None:
        """One connection: plain HTTP goes to the REST app (if served), the rest is a
        WebSocket handshake (the head already read is fed to wsproto first)."""
        metered = _MeteredWS(self.hub)
        conn = WebSocketConnection(
            stream, metered, message_queue_size=16, max_message_size=self.config.max_message_size
        )
        try:
            head = await read_head(stream, _HANDSHAKE_TIMEOUT)
            if not head:
                return  # closed (or silent) before a request: nothing to answer
            if self.rest_app is not None and not is_websocket_upgrade(head):
                scheme = "https" if self.ssl_context is not None else "http"
                upgrade: bytes | None = None
                with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                    upgrade = await serve_http(stream, self.rest_app, head, scheme=scheme,
                                               server=(self.config.host, self.port),
                                               client=peer)  # fmt: skip
                if upgrade is None:
                    return  # done, or a REST client that went away: no answer needed
                head = upgrade  # a WebSocket upgrade after REST on the same connection
            try:
                metered.receive_data(head)
            except wsproto.utilities.RemoteProtocolError as err:  # as trio-websocket answers
                logger.warning("refused WebSocket upgrade: %s", err)
                if err.event_hint is not None:
                    await stream.send_all(metered.send(err.event_hint))
                return
            async with trio.open_nursery() as nursery:
                nursery.start_soon(conn._reader_task)
                request: WebSocketRequest | None = None
                with trio.move_on_after(_HANDSHAKE_TIMEOUT):
                    request = await conn._get_request()
                if request is not None:
                    try:
                        await self._handle(request, conn, metered)
                    finally:
                        with trio.move_on_after(self.config.close_timeout):
                            await conn.aclose()
                nursery.cancel_scope.cancel()
        except Exception:  # one client's failure must never take the server down
            logger.exception("connection handler failed")
        finally:
            await trio.aclose_forcefully(stream)

    async def _reject(self, request: WebSocketRequest, status: int, msg: str) -> None:
        logger.warning("refused WebSocket upgrade %s: HTTP %d %s", request.path[:200], status,
                       msg)  # fmt: skip
        self.hub.connections_rejected += 1
        self.hub.notify()
        body = orjson.dumps({"code": -1003 if status == 429 else -1, "msg": msg})
        await request.reject(status, extra_headers=[(b"Content-Type", b"application/json")],
                             body=body)  # fmt: skip

    async def _handle(
        self, request: WebSocketRequest, conn: WebSocketConnection, metered: _MeteredWS
    ) -> None:
        cfg, hub = self.config, self.hub
        now = trio.current_time()
        hub.connection_attempts += 1
        if not self.limiter.allow(now):
            await self._reject(request, 429, "Too many connection attempts; retry later.")
            return
        if now < self.refuse_until:
            await self._reject(request, self.refuse_status, "Service unavailable.")
            return
        try:
            target = parse_target(request.path, cfg.max_streams_per_connection)
        except TargetError as exc:
            await self._reject(request, exc.status, str(exc))
            return
        session = hub.open_session(target.combined, target.micros)
        end_code = 1006
        try:
            hub.subscribe(session, target.streams)
            metered.session = session
            metered.on_control = lambda: self._count_incoming(session)
            await request.accept()
            logger.info("connection %d open: %s", session.id, request.path[:200])
            async with trio.open_nursery() as nursery:
                nursery.start_soon(self._reader, session, conn)
                nursery.start_soon(self._writer, session, conn)
                nursery.start_soon(self._pinger, session, conn, nursery)
                nursery.start_soon(self._lifetime, session)
                await session.close_event.wait()
                end_code = await self._close(session, conn)
                nursery.cancel_scope.cancel()
        finally:
            hub.close_session(session, end_code)
            logger.info("connection %d closed (%d)", session.id, end_code)

    def _count_incoming(self, session: Session) -> None:
        session.allow_incoming(trio.current_time(), self.config.max_incoming_per_second)

    async def _close(self, session: Session, conn: WebSocketConnection) -> int:
        if session.close_code is None:  # the client closed first (or the socket broke)
            return int(conn.closed.code) if conn.closed is not None else 1006
        if session.close_abrupt:
            await trio.aclose_forcefully(conn._stream)
            return 1006
        with trio.move_on_after(self.config.close_timeout):
            if not session.close_reason.startswith("Too slow"):
                while session.out and conn.closed is None:  # let queued frames go first
                    session.flushed = trio.Event()
                    await session.flushed.wait()
            await conn.aclose(session.close_code, session.close_reason)
        return session.close_code

    async def _reader(self, session: Session, conn: WebSocketConnection) -> None:
        cfg, hub = self.config, self.hub
        try:
            while True:
                message = await conn.get_message()
                if not session.allow_incoming(trio.current_time(), cfg.max_incoming_per_second):
                    return
                silent = False  # the "ignore" fault: act on the request, never reply
                if hub.subscribe_faults and _is_subscribe(message):
                    fault = hub.subscribe_faults.popleft()
                    if fault.action != "ignore":
                        session.request_close(fault.code, fault.reason, fault.action == "reset")
                        return
                    silent = True
                outcome = handle_control(
                    message, subscriptions=session.streams, combined=session.combined,
                    max_streams=cfg.max_streams_per_connection,
                    max_frame_bytes=cfg.max_control_frame_bytes,
                    refused=hub.refused_streams,
                )  # fmt: skip
                if outcome.rejected:
                    _log_refused(session.id, message, outcome.rejected)
                if outcome.subscribe:
                    hub.subscribe(session, outcome.subscribe)
                if outcome.unsubscribe:
                    hub.unsubscribe(session, outcome.unsubscribe)
                if outcome.combined is not None:
                    session.combined = outcome.combined
                if outcome.reply is not None and not silent:
                    session.push_json(orjson.dumps(outcome.reply))
        except ConnectionClosed:
            session.request_close(None)

    async def _writer(self, session: Session, conn: WebSocketConnection) -> None:
        hub, out = self.hub, session.out
        try:
            while True:
                if not out:
                    session.wake = trio.Event()
                    session.waiting = True
                    await session.wake.wait()
                    continue
                if hub.delay_until > trio.current_time():
                    await trio.sleep_until(hub.delay_until)
                    continue
                n = min(len(out), _BATCH_FRAMES)
                data = b"".join([out.popleft() for _ in range(n)])
                await _send_bytes(conn, data)
                session.frames_sent += n
                hub.frames_sent += n
                hub.drained(session)
                if session.flushed is not None:
                    session.flushed.set()
        except ConnectionClosed:
            session.request_close(None)

    async def _pinger(
        self, session: Session, conn: WebSocketConnection, nursery: trio.Nursery
    ) -> None:
        while True:
            await trio.sleep(self.config.ping_interval)
            if trio.current_time() < self.hub.pings_paused_until:
                continue  # a silent stall: no ping either
            payload = str(next(self._ping_ids)).encode()
            self.hub.pings_sent += 1
            self.hub.notify()
            nursery.start_soon(self._await_pong, session, conn, payload)

    async def _await_pong(
        self, session: Session, conn: WebSocketConnection, payload: bytes
    ) -> None:
        with trio.move_on_after(self.config.pong_timeout):
            try:
                await conn.ping(payload)
            except ConnectionClosed:
                session.request_close(None)
                return
            self.hub.pongs_received += 1
            return
        logger.info("connection %d: no pong within %ss", session.id, self.config.pong_timeout)
        session.request_close(1008, "Pong timeout")

    async def _lifetime(self, session: Session) -> None:
        cfg = self.config
        lead = cfg.shutdown_lead if cfg.shutdown_notice else 0.0
        await trio.sleep(cfg.connection_lifetime - lead)
        if cfg.shutdown_notice:
            e = self.now_us() // (1 if session.micros else 1000)
            data = orjson.dumps({"e": "serverShutdown", "E": e})
            if session.combined:
                data = b'{"stream":"!serverShutdown","data":' + data + b"}"
            session.push_json(data)
            await trio.sleep(lead)
        session.request_close(1000, "Connection lifetime expired")
