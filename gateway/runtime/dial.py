"""Dialling the exchange for a connection: its URL taken apart, its socket opened.

`split_base_url` checks a ``ws://`` or ``wss://`` base URL once (never guessing a host
or speaking plaintext for ``https://``) and moves its credentials into the handshake's
``Authorization`` header; `url_parts` says where a session dials (``/stream``, with
``timeUnit=MICROSECOND`` if asked); `open_socket` opens TCP, then TLS (verified, see
`gateway.runtime.tls`) for ``wss://``, then the WebSocket handshake, closing what it
opened when a step fails.
"""

from __future__ import annotations

import base64
import math
import urllib.parse
from typing import Any

import trio
from trio_websocket import WebSocketConnection

from gateway.core.redact import redact_url, split_credentials
from gateway.errors import ConfigError
from gateway.runtime.tls import client_ssl_context
from gateway.runtime.websocket import open_websocket
from gateway.validators import url_problem

__all__ = ["Headers", "close_socket", "open_socket", "split_base_url", "url_parts"]

#: Extra headers of the WebSocket handshake (None: none).
Headers = list[tuple[bytes, bytes]] | None


def split_base_url(base_url: str) -> tuple[str, str, Headers]:
    """(the URL without credentials, the URL as it may be shown, the handshake's headers)
    of a connection's ``base_url``; `ConfigError` unless it is a ws:// or wss:// URL."""
    problem = url_problem(base_url, ("ws", "wss"))
    if problem is not None:  # never guess a host or speak plaintext for https://
        raise ConfigError(f"url must be a ws:// or wss:// URL with a host; got "
                          f"{redact_url(base_url)!r} ({problem})")  # fmt: skip
    display_url = redact_url(base_url.rstrip("/"))
    bare, user, password = split_credentials(base_url)
    # Credentials in the URL go in the handshake's Authorization header, not the URL.
    headers: Headers = None
    if user is not None:
        token = base64.b64encode(f"{user}:{password or ''}".encode()).decode()
        headers = [(b"Authorization", f"Basic {token}".encode())]
    return bare.rstrip("/"), display_url, headers


def url_parts(base_url: str, time_unit: str) -> tuple[str, str, int, str]:
    """(scheme, host, port, resource) a session of ``base_url`` dials, as checked by
    `split_base_url`; ``time_unit`` is upper case."""
    parts = urllib.parse.urlsplit(base_url)
    secure = parts.scheme == "wss"
    port = parts.port or (443 if secure else 80)
    resource = (parts.path.rstrip("/") or "") + "/stream"
    if time_unit == "MICROSECOND":
        resource += "?timeUnit=MICROSECOND"
    assert parts.hostname  # checked when the connection was made
    return parts.scheme, parts.hostname, port, resource


async def open_socket(
    nursery: trio.Nursery, scheme: str, host: str, port: int, resource: str, ca_file: str,
    headers: Headers,
) -> tuple[WebSocketConnection, Any]:  # fmt: skip
    """Open TCP, TLS for ``wss://`` and the WebSocket (its reader runs in ``nursery``);
    returns it with the stream under it (`close_socket`); the caller bounds the time."""
    tcp = await trio.open_tcp_stream(host, port)
    stream: Any = tcp
    if scheme == "wss":
        ctx = client_ssl_context(ca_file)
        stream = trio.SSLStream(tcp, ctx, server_hostname=host, https_compatible=True)
        # Here, not in the WebSocket reader (which would hide why it failed): a
        # certificate refused is then reported as such (ca_file, see config).
        try:
            await stream.do_handshake()
        except BaseException:
            await trio.aclose_forcefully(stream)
            raise
    try:
        ws = await open_websocket(nursery, stream, host, resource, headers)
    except BaseException:
        await trio.aclose_forcefully(stream)
        raise
    return ws, stream


async def close_socket(ws: WebSocketConnection, stream: Any) -> None:
    """Close ``ws`` (its close handshake bounded by a second) and the stream under it,
    shielded: the session that opened them is ending, maybe by cancellation."""
    # Being cancelled, the reader task is gone and no close reply would be
    # read: close the stream at once rather than wait for the handshake.
    cancelled = trio.current_effective_deadline() == -math.inf
    with trio.CancelScope(shield=True):
        if not cancelled:
            with trio.move_on_after(1):
                await ws.aclose()
        await trio.aclose_forcefully(stream)
