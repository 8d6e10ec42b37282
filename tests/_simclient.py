"""Test clients for the simulator: a trio-websocket client that owns its socket, and a raw
wsproto client that can misbehave (never answer pings, send garbage, flood)."""

from __future__ import annotations

import functools
import urllib.parse
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any, TypeVar

import trio
import wsproto
from trio_websocket import WebSocketConnection, wrap_client_stream
from wsproto.events import AcceptConnection, Event, RejectConnection, Request

_F = TypeVar("_F", bound=Callable[..., Awaitable[Any]])


def _split(url: str) -> tuple[str, int, str]:
    parts = urllib.parse.urlsplit(url)
    resource = parts.path + (f"?{parts.query}" if parts.query else "")
    assert parts.hostname is not None and parts.port is not None
    return parts.hostname, parts.port, resource or "/"


@asynccontextmanager
async def ws_client(url: str, **options: int) -> AsyncIterator[WebSocketConnection]:
    """A trio-websocket client whose TCP stream is closed however the connection ends."""
    host, port, resource = _split(url)
    stream = await trio.open_tcp_stream(host, port)
    try:
        async with trio.open_nursery() as nursery:
            conn = await wrap_client_stream(nursery, stream, host, resource, **options)
            try:
                yield conn
            finally:
                with trio.move_on_after(2):
                    await conn.aclose()
                nursery.cancel_scope.cancel()
    except BaseExceptionGroup as group:
        if len(group.exceptions) == 1:
            raise group.exceptions[0] from None
        raise
    finally:
        await trio.aclose_forcefully(stream)


class RawClient:
    """A bare wsproto client: it does only what the test tells it to."""

    def __init__(self, stream: trio.SocketStream) -> None:
        self.stream = stream
        self.ws = wsproto.WSConnection(wsproto.ConnectionType.CLIENT)
        self.pending: list[Event] = []

    async def send(self, event: Event) -> None:
        await self.stream.send_all(self.ws.send(event))

    async def next_events(self) -> list[Event]:
        """Events from the next chunk of bytes; an empty list means the server hung up."""
        if self.pending:
            events, self.pending = self.pending, []
            return events
        while True:
            events = list(self.ws.events())
            if events:
                return events
            data = await self.stream.receive_some(65536)
            if not data:
                return []
            self.ws.receive_data(data)


@asynccontextmanager
async def raw_client(url: str) -> AsyncIterator[RawClient]:
    """Open a handshake with a raw client; raises AssertionError if rejected."""
    host, port, resource = _split(url)
    async with await trio.open_tcp_stream(host, port) as stream:
        client = RawClient(stream)
        await client.send(Request(host=host, target=resource))
        events = await client.next_events()
        assert events and isinstance(events[0], AcceptConnection), events
        assert not isinstance(events[0], RejectConnection)
        client.pending = events[1:]
        yield client


def bounded(seconds: float = 30.0) -> Callable[[_F], _F]:
    """Fail an async test that takes longer than ``seconds`` (virtual seconds under
    ``autojump_clock``), so no test can loop forever."""

    def decorate(fn: _F) -> _F:
        @functools.wraps(fn)
        async def wrapper(*args: Any, **kwargs: Any) -> Any:
            with trio.fail_after(seconds):
                return await fn(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate
