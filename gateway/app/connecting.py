"""What a run knows about its connections before the gateway is live.

`open_gateway` yields the `Gateway` (and with it ``gw.connections``) only once every
connection is live, so a run that ends while still connecting has no connection to
ask. `ConnectWatch` fills that gap from what the app does see: the planned shards of
the configuration (the same ``conn-N`` split `open_gateway` makes) and each failed
attempt, reported to the ``on_error`` callback it gives `open_gateway`.

Errors reach ``on_error`` without the connection that had them; with several planned
connections (more than ``max_streams_per_connection`` streams) every one of them is
attributed to ``conn-1``, the others show ``idle``. A hook in `open_gateway` handing
over the `Gateway` before it connects would make this exact.
"""

from __future__ import annotations

from typing import Any

from gateway.app.tracker import RunTracker
from gateway.config import GatewayConfig
from gateway.core.streams import shard_streams
from gateway.errors import ConnectionFailed
from gateway.runtime.publish import GatewayErrorEvent

__all__ = ["ConnectWatch"]


class ConnectWatch:
    """Counts failed connection attempts until the gateway is live; pictures the
    connections of a run that never got there, in the shape of ``Connection.snapshot``."""

    def __init__(self, config: GatewayConfig, tracker: RunTracker) -> None:
        groups = shard_streams(config.stream_names(), config.max_streams_per_connection)
        self.planned: list[int] = [len(g) for g in groups]  #: streams per planned connection
        self.tracker = tracker
        self.live = False  #: set once open_gateway yielded: the tracker sees errors from then on
        self.failures = 0  #: failed attempts before the gateway was live
        self.last_error: str | None = None
        self.gave_up: str | None = None  #: the `ConnectionFailed` message, if one came

    def on_error(self, error: BaseException) -> None:
        """`open_gateway`'s ``on_error``: before the gateway is live, count and note each error."""
        if isinstance(error, ConnectionFailed):
            self.gave_up = str(error)
            return
        if self.live:
            return  # from now on the tracker's subscription reports them, with their source
        self.failures += 1
        self.last_error = repr(error)
        self.tracker.take(GatewayErrorEvent("connection", error))

    def state(self) -> str:
        """The first connection's state as `Connection` would name it."""
        if self.gave_up is not None:
            return "failed"
        return "reconnecting" if self.failures else "connecting"

    def connections(self) -> list[dict[str, Any]]:
        """Per planned connection, what is known: never live, attempts, the last error.

        ``connects`` (WebSocket sessions opened) is not known here: None.
        """
        out = []
        for i, streams in enumerate(self.planned):
            first = i == 0
            failures = self.failures if first else 0
            out.append({
                "id": f"conn-{i + 1}",
                "state": self.state() if first else "idle",
                "streams": streams,
                "connects": None,
                "reconnects": max(0, failures - (1 if first and self.gave_up else 0)),
                "rotations": 0,
                "frames": 0,
                "last_error": self.last_error if first else None,
            })  # fmt: skip
        return out

    def stats(self) -> dict[str, Any]:
        """A run that never went live in the shape of `Gateway.stats`: no symbol had an
        event, the planned connections, a router that saw nothing."""
        router = dict.fromkeys(("frames", "malformed", "unknown", "unrouted"), 0)
        return {"symbols": {}, "connections": self.connections(), "router": router}
