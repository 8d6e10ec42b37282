"""Which connection carries which stream: a new connection per group of streams, new
streams placed where there is room, a symbol's streams dropped, and make-before-break
rotation of a connection that must go (its age, or the exchange's ``serverShutdown``).
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable

import trio

from gateway.config import GatewayConfig
from gateway.core.backoff import ReconnectPolicy
from gateway.core.events import StreamRefused
from gateway.core.ratelimit import RollingWindowLimiter
from gateway.core.streams import parse_stream, shard_streams
from gateway.errors import ConnectionFailed, SubscriptionError
from gateway.runtime.connection import Connection
from gateway.runtime.connections import Connections
from gateway.runtime.publish import Publisher
from gateway.runtime.router import Router

__all__ = ["Rotation"]

#: The logger these records always came from (moved out of `gateway.api`).
log = logging.getLogger("gateway.api")


class Rotation:
    """Opens the gateway's connections (into ``links``), places streams on them and
    rotates them make-before-break; ``nursery()`` is `open_gateway`'s, for rotations."""

    def __init__(
        self, config: GatewayConfig, router: Router, publisher: Publisher, links: Connections,
        rng: random.Random, nursery: Callable[[], trio.Nursery],
    ) -> None:  # fmt: skip
        self._config = config
        self._router = router
        self._publisher = publisher
        self._links = links
        self._connections = links.all
        self._rng = rng
        self._nursery = nursery
        #: Every connection's handshakes together, within the exchange's 300 per 5 min.
        self._connect_limiter = RollingWindowLimiter(300, 300.0)

    def new_connection(self, streams: list[str], conn_id: str | None = None) -> Connection:
        """A connection for ``streams`` (named ``conn_id``, else the next ``conn-N``),
        appended to the gateway's connections; not yet started."""
        c = self._config
        conn_id = conn_id or f"conn-{len(self._connections) + 1}"
        conn = Connection(
            conn_id, c.url, streams, self._router,
            policy=ReconnectPolicy(
                c.reconnect.initial, c.reconnect.factor, c.reconnect.cap, c.reconnect.max_attempts
            ),
            connect_limiter=self._connect_limiter, control_rate=c.control_rate,
            silence_timeout=c.silence_timeout, connect_timeout=c.connect_timeout,
            max_age=c.max_connection_age, time_unit=c.time_unit, rng=self._rng,
            on_error=lambda exc: self._publisher.report_error("connection", exc),
            on_rotate=self.rotate,
            on_refused=lambda name, code, msg: self._stream_refused(conn_id, name, code, msg),
            stream_silence_factor=c.stream_silence_factor,
            trade_silence_floor=c.trade_silence_floor, ca_file=c.ca_file,
        )  # fmt: skip
        self._connections.append(conn)
        return conn

    async def subscribe(self, names: list[str]) -> None:
        """Subscribe ``names`` live: first where a connection has room, the rest on new
        connections. Raises `SubscriptionError` if the exchange refuses the SUBSCRIBE."""
        limit = self._config.max_streams_per_connection
        for conn in self._connections:
            room = limit - len(conn.streams)
            if room > 0 and names:
                await conn.subscribe(names[:room])
                names = names[room:]
        for group in shard_streams(names, limit) if names else []:
            await self._links.start(self.new_connection(group))

    async def unsubscribe_symbol(self, symbol: str) -> None:
        """Unsubscribe every stream of ``symbol`` on every connection, refused ones too
        (so none is asked for again). Raises `SubscriptionError` if the exchange refuses."""
        for conn in self._connections:
            # Refused streams too: they are no longer asked for again.
            mine = [n for n in (*conn.streams, *conn.refused)
                    if parse_stream(n).symbol == symbol]  # fmt: skip
            if mine:
                await conn.unsubscribe(mine)

    def _stream_refused(self, conn_id: str, name: str, code: int | None, message: str) -> None:
        """The exchange refused one stream: tell subscribers and error callbacks."""
        symbol = parse_stream(name).symbol
        self._publisher.publish(StreamRefused(symbol, name, code, message, conn_id))
        error = SubscriptionError(code, f"stream {name} refused: {message}")
        self._publisher.report_error("stream", error, symbol)

    def rotate(self, old: Connection) -> None:
        """``old`` must go (`Connection.on_rotate`): replace it in the gateway's nursery."""
        self._nursery().start_soon(self.rotate_to_new, old)

    async def rotate_to_new(self, old: Connection) -> None:
        """Make-before-break: a new connection is live and subscribed before the old one
        closes; the overlap's duplicate trades are dropped by id in the symbol actors."""
        new = self.new_connection(list(old.streams), old.conn_id)
        new.inherit(old)
        try:
            await self._links.start(new)
        except ConnectionFailed as exc:  # the old connection still streams: keep it
            self._connections.remove(new)  # its attempts reached on_error as ConnectionLost
            old.rotating = False
            log.warning("[%s] rotation failed, keeping the old connection: %s", old.conn_id, exc)
            return
        late = [n for n in old.streams if n not in new.streams]  # added during the overlap
        if late:
            await new.subscribe(late)
        await self._links.stop(old)
        log.info("[%s] rotated: new connection live, old one closed", new.conn_id)
