"""Plain HTTP on the WebSocket port: a small HTTP/1.1 server (h11) for the REST app.

A client told ``ws://HOST:PORT`` may take ``http://HOST:PORT`` as its REST base (issue 13),
so the WebSocket side reads each connection's request head first (`read_head`): an
``Upgrade: websocket`` goes on as a WebSocket, anything else is served here with the same
ASGI application as the REST port. Only what the REST side needs: GET-style requests
with small bodies, keep-alive, bounded per connection. The WebSocket path is untouched
(the head is sniffed once, at connect), so its send rate is not affected.
"""

from __future__ import annotations

import logging
import re
import urllib.parse
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import h11
import orjson
import trio

__all__ = ["is_websocket_upgrade", "read_head", "serve_http"]

logger = logging.getLogger(__name__)

AsgiApp = Callable[
    [MutableMapping[str, Any], Callable[[], Awaitable[Any]], Callable[[Any], Awaitable[None]]],
    Awaitable[None],
]

_MAX_HEAD = 16_384  #: bytes of request head (line + headers) at most
_MAX_BODY = 65_536  #: bytes of request body at most (the REST side takes none)
_MAX_REQUESTS = 10_000  #: requests per kept-alive connection, then it is closed
_IDLE = 10.0  #: seconds a kept-alive connection may wait for its next request
_UPGRADE = re.compile(rb"^upgrade:[ \t]*websocket[ \t]*\r?$", re.IGNORECASE | re.MULTILINE)


async def read_head(stream: trio.abc.ReceiveStream, patience: float) -> bytes:
    """The bytes received up to the end of the first request head (more if they came in
    the same chunk), or what came before EOF, ``_MAX_HEAD`` or ``patience`` seconds."""
    data = b""
    with trio.move_on_after(patience):
        while b"\r\n\r\n" not in data and len(data) < _MAX_HEAD:
            try:
                chunk = await stream.receive_some(_MAX_HEAD)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                return b""  # gone before its request: nothing to answer
            if not chunk:
                break
            data += bytes(chunk)
    return data


def is_websocket_upgrade(head: bytes) -> bool:
    """True if the request head asks for a WebSocket (or is not a readable HTTP head,
    which the WebSocket handshake then refuses as before)."""
    end = head.find(b"\r\n\r\n")
    block = head if end < 0 else head[:end]
    if not re.match(rb"^[A-Z]+ \S+ HTTP/1\.[01]\r\n", block):
        return True  # junk: let wsproto answer it (HTTP 400)
    return _UPGRADE.search(block) is not None


async def serve_http(
    stream: trio.abc.Stream, app: AsgiApp, head: bytes, *, scheme: str,
    server: tuple[str, int], client: tuple[str, int] | None,
) -> bytes | None:  # fmt: skip
    """Answer HTTP/1.1 requests on ``stream`` with ``app`` (``head``: bytes already read)
    until the client closes, stays idle ``_IDLE`` s, or ``_MAX_REQUESTS`` were served.

    A WebSocket upgrade on the kept-alive connection (aiohttp, so ccxt.pro, reuses the
    connection of its REST calls) ends the HTTP part: its head and what followed it are
    returned for the WebSocket handshake. None: the connection is done.
    """
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=_MAX_HEAD)
    conn.receive_data(head)
    for _ in range(_MAX_REQUESTS):
        try:
            request = await _next_request(stream, conn)
            if request is None:
                return None
            if _asks_upgrade(request):
                return _head_of(request) + conn.trailing_data[0]
            body = await _read_body(stream, conn)
        except h11.RemoteProtocolError as exc:
            logger.warning("refused HTTP request on the WebSocket port: %s", exc)
            await _send_raw_error(stream, exc.error_status_hint, str(exc))
            return None
        status, headers, payload = await _call(app, request, body, scheme, server, client)
        keep = [(k, v) for k, v in headers if k.lower() not in (b"connection",)]
        if request.method == b"HEAD":  # the head only (h11 refuses a body for HEAD)
            payload = b""
        for event in (h11.Response(status_code=status, headers=keep), h11.Data(data=payload),
                      h11.EndOfMessage()):  # fmt: skip
            data = conn.send(event)
            if data:
                await stream.send_all(data)
        if conn.our_state is not h11.DONE or conn.their_state is not h11.DONE:
            return None  # the client asked to close (or sent a body we did not take)
        conn.start_next_cycle()
    return None


def _asks_upgrade(request: h11.Request) -> bool:
    return any(k == b"upgrade" and v.strip().lower() == b"websocket" for k, v in request.headers)


def _head_of(request: h11.Request) -> bytes:
    """The request head again, as bytes (for the WebSocket handshake that reads it)."""
    lines = [b"%s %s HTTP/%s" % (request.method, request.target, request.http_version)]
    lines += [k + b": " + v for k, v in request.headers]
    return b"\r\n".join(lines) + b"\r\n\r\n"


async def _next_request(stream: trio.abc.ReceiveStream, conn: h11.Connection) -> h11.Request | None:
    """The next request's head; None when the client closes or stays idle."""
    with trio.move_on_after(_IDLE):
        while True:
            event = conn.next_event()
            if isinstance(event, h11.Request):
                return event
            if event is h11.NEED_DATA:
                conn.receive_data(bytes(await stream.receive_some(_MAX_HEAD)))
                continue
            return None  # ConnectionClosed, or PAUSED after a close request
    return None


async def _read_body(stream: trio.abc.ReceiveStream, conn: h11.Connection) -> bytes:
    """The request's body (at most ``_MAX_BODY`` bytes)."""
    body = b""
    with trio.fail_after(_IDLE):
        while True:
            event = conn.next_event()
            if isinstance(event, h11.Data):
                body += event.data
                if len(body) > _MAX_BODY:
                    raise h11.RemoteProtocolError("request body too large", 413)
            elif isinstance(event, h11.EndOfMessage):
                return body
            elif event is h11.NEED_DATA:
                conn.receive_data(bytes(await stream.receive_some(_MAX_HEAD)))
            else:
                raise h11.RemoteProtocolError("connection closed inside a request", 400)


async def _call(
    app: AsgiApp, request: h11.Request, body: bytes, scheme: str,
    server: tuple[str, int], client: tuple[str, int] | None,
) -> tuple[int, list[tuple[bytes, bytes]], bytes]:  # fmt: skip
    """Run ``app`` for one request; returns its status, headers and body."""
    raw_path, _, query = request.target.partition(b"?")
    scope: dict[str, Any] = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": request.http_version.decode(), "method": request.method.decode(),
        "scheme": scheme, "path": urllib.parse.unquote(raw_path.decode("latin-1")),
        "raw_path": raw_path, "query_string": query, "root_path": "",
        "headers": [(k.lower(), v) for k, v in request.headers], "server": server,
        "client": client,
    }  # fmt: skip
    sent_body = False
    start: dict[str, Any] = {}
    chunks: list[bytes] = []

    async def receive() -> dict[str, Any]:
        nonlocal sent_body
        if not sent_body:
            sent_body = True
            return {"type": "http.request", "body": body, "more_body": False}
        return {"type": "http.disconnect"}  # asked again only once the answer is out

    async def send(message: Any) -> None:
        if message["type"] == "http.response.start":
            start.update(message)
        elif message["type"] == "http.response.body":
            chunks.append(bytes(message.get("body", b"")))

    await app(scope, receive, send)
    headers = [(bytes(k), bytes(v)) for k, v in start.get("headers", [])]
    return int(start.get("status", 500)), headers, b"".join(chunks)


async def _send_raw_error(stream: trio.abc.SendStream, status: int, reason: str) -> None:
    """A JSON error answer written by hand (h11 cannot answer a request it could not read)."""
    body = orjson.dumps({"code": -1000, "msg": f"Bad request: {reason}"})
    head = (f"HTTP/1.1 {status} Bad Request\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()  # fmt: skip
    try:
        await stream.send_all(head + body)
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        return
