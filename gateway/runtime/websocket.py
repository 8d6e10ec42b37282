"""Client WebSockets on our terms: trio-websocket's connection with its close race fixed.

`open_websocket` is `trio_websocket.wrap_client_stream` with three differences, all
pinned to trio-websocket 0.12 (its private ``_reader_task``, ``_open_handshake``,
``_wsproto`` and message channels): the connection skips a ping that arrives during our
close handshake (upstream issue #184); a server that hangs up mid-handshake is an error
at once instead of a wait for the connect deadline; and whole messages are handed from
the reader to the receiver without a scheduler pass each (`_GuardedConnection`).
"""

from __future__ import annotations

import trio
from trio_websocket import ConnectionClosed, WebSocketConnection
from wsproto import ConnectionType, WSConnection
from wsproto.connection import ConnectionState
from wsproto.events import BytesMessage, Ping, TextMessage

__all__ = ["open_websocket"]


class _GuardedConnection(WebSocketConnection):
    """trio-websocket's connection without its close race (python-trio/trio-websocket#184),
    and with a cheaper hand-off of each message from its reader task.

    0.12.2 answers a ping that arrives after our close frame; wsproto refuses to send
    that pong (`LocalProtocolError` in LOCAL_CLOSING), from the reader task. RFC 6455
    lets a closing endpoint skip it, as the unreleased fix (PR #198) does. Drop
    `_handle_ping_event` once a release carries that fix.
    """

    async def _handle_ping_event(self, event: Ping) -> None:
        if self._wsproto.state is ConnectionState.OPEN:
            await super()._handle_ping_event(event)

    async def _handle_message_event(self, event: BytesMessage | TextMessage) -> None:
        """A whole, unfragmented message joins the queue without a checkpoint.

        0.12.2 awaits ``send`` for every message, one scheduler pass per frame on the
        reader's side. The reader still yields once per network read (``receive_some``)
        and whenever the queue is full (the fallback below awaits the same ``send``), so
        the queue stays bounded and the order is the arrival order. Fragments, oversize
        messages and a closed queue keep the library's handling.
        """
        data = event.data
        if event.message_finished and not self._message_parts and (
            len(data) <= self._max_message_size
        ):
            try:  # wsproto's bytes payloads may be bytearrays; 0.12.2 joins them to bytes
                self._send_channel.send_nowait(bytes(data) if isinstance(data, bytearray) else data)
                return
            except trio.WouldBlock:
                pass
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                return  # the receiver closed its end: as 0.12.2, nothing to do
        await super()._handle_message_event(event)

    def get_message_nowait(self) -> str | bytes:
        """The next message already queued, without a checkpoint (`get_message` without
        the wait): `trio.WouldBlock` when none is, `ConnectionClosed` as `get_message`."""
        try:
            return self._recv_channel.receive_nowait()
        except (trio.ClosedResourceError, trio.EndOfChannel):
            raise ConnectionClosed(self._close_reason) from None


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
