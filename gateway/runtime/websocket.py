"""Client WebSockets on our terms: trio-websocket's connection with its close race fixed.

`open_websocket` is `trio_websocket.wrap_client_stream` with two differences, both
pinned to trio-websocket 0.12 (its private ``_reader_task``, ``_open_handshake`` and
``_wsproto``): the connection skips a ping that arrives during our close handshake
(upstream issue #184), and a server that hangs up mid-handshake is an error at once
instead of a wait for the connect deadline.
"""

from __future__ import annotations

import trio
from trio_websocket import WebSocketConnection
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import Ping

__all__ = ["open_websocket"]


class _GuardedConnection(WebSocketConnection):
    """trio-websocket's connection without its close race (python-trio/trio-websocket#184).

    0.12.2 answers a ping that arrives after our close frame; wsproto refuses to send
    that pong (`LocalProtocolError` in LOCAL_CLOSING), from the reader task. RFC 6455
    lets a closing endpoint skip it, as the unreleased fix (PR #198) does. Remove this
    class once a release carries that fix.
    """

    async def _handle_ping_event(self, event: Ping) -> None:
        if self._wsproto.state is ConnectionState.OPEN:
            await super()._handle_ping_event(event)


async def open_websocket(
    nursery: trio.Nursery, stream: trio.abc.Stream, host: str, resource: str,
    headers: list[tuple[bytes, bytes]] | None,
) -> WebSocketConnection:  # fmt: skip
    """`trio_websocket.wrap_client_stream`, building `_GuardedConnection` instead."""
    ws = _GuardedConnection(
        stream, WSConnection(ConnectionType.CLIENT), host=host, path=resource,  # type: ignore[arg-type]
        client_extra_headers=headers, message_queue_size=256, max_message_size=8 * 2**20,
        receive_buffer_size=65536,
    )  # fmt: skip
    nursery.start_soon(_read, ws)
    await ws._open_handshake.wait()
    return ws


async def _read(ws: WebSocketConnection) -> None:
    """The reader task; ending before the handshake did is an error (0.12.2 would leave
    the opener waiting for its deadline, and the reason would read "timed out")."""
    await ws._reader_task()
    if not ws._open_handshake.is_set():
        raise trio.BrokenResourceError("closed by the server during the WebSocket handshake")
