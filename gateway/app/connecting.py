"""What a run knows about its connections before the gateway is live.

`open_gateway` yields the `Gateway` only once every connection is live, so a run that
ends while still connecting has no block to ask from. `ConnectWatch` is handed the
`Gateway` through `open_gateway`'s ``on_start`` hook, before anything connects, and
reads the real connection snapshots from it; shards the gateway has not started yet
(the same ``conn-N`` split `open_gateway` makes) show as ``idle``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from gateway.app.tracker import RunTracker
from gateway.config import GatewayConfig
from gateway.core.events import GatewayErrorEvent
from gateway.core.streams import shard_streams
from gateway.errors import ConnectionFailed, ConnectionLost
from gateway.stats import ConnectionStats, GatewayStats, RouterStats

if TYPE_CHECKING:
    from gateway.api import Gateway

__all__ = ["ConnectWatch"]


class ConnectWatch:
    """The connections of a run that is connecting (or never got further), in the
    shape of ``Connection.snapshot``, and the errors it met on the way."""

    def __init__(self, config: GatewayConfig, tracker: RunTracker) -> None:
        groups = shard_streams(config.stream_names(), config.max_streams_per_connection)
        self.planned: list[int] = [len(g) for g in groups]  #: streams per planned connection
        self.tracker = tracker
        self.gateway: Gateway | None = None  #: set by `attach`, before anything connects
        self.live = False  #: set once open_gateway yielded: the tracker sees errors from then on
        self.last_error: str | None = None  #: the last failed attempt before going live

    def attach(self, gateway: Gateway) -> None:
        """`open_gateway`'s ``on_start``: watch this gateway's connections."""
        self.gateway = gateway

    def on_error(self, error: BaseException) -> None:
        """`open_gateway`'s ``on_error``: before the gateway is live, note each error (attempt
        counts and states are the connections' own, read through `attach`)."""
        if self.live or isinstance(error, ConnectionFailed):
            return  # the tracker's subscription, or the run's own error, reports these
        if isinstance(error, ConnectionLost):  # one failed attempt of one connection
            self.last_error = str(error)
            self.tracker.take(GatewayErrorEvent("connection", error))
        else:  # a refused stream, a raising tap ... while still connecting
            self.tracker.take(GatewayErrorEvent("gateway", error))

    def connections(self) -> list[ConnectionStats]:
        """Per planned connection: its real snapshot once the gateway started it, else
        an ``idle`` one that never opened."""
        started = {}
        if self.gateway is not None:
            started = {c.id: c for c in self.gateway.stats().connections}
        planned = [(f"conn-{i + 1}", streams) for i, streams in enumerate(self.planned)]
        return [started.get(name) or ConnectionStats(id=name, state="idle", streams=streams)
                for name, streams in planned]  # fmt: skip

    def stats(self) -> GatewayStats:
        """A run that never went live as `Gateway.stats` would say it: no symbol had an
        event, the planned connections, a router that saw nothing."""
        return GatewayStats(symbols={}, connections=tuple(self.connections()),
                            router=RouterStats())  # fmt: skip
