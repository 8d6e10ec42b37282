"""The specification of gateway/runtime/dial.py: a connection's base URL checked once
and taken apart (its credentials into the handshake's ``Authorization`` header, never the
URL or anything shown), where a session dials, and its socket opened (TCP, TLS for
``wss://``, the WebSocket handshake) and closed within bounds.

URL handling by plain calls; sockets against the embedded exchange on loopback.
"""

from __future__ import annotations

import base64
import functools
import ssl

import orjson
import pytest
import trio
from trio.testing import MockClock

from gateway import ConfigError, ConnectionFailed, ReconnectConfig, open_gateway
from gateway.runtime.dial import close_socket, open_socket, split_base_url, url_parts
from tests._loopback import dead_port, exchange, read_request_head

_LIST = '{"method":"LIST_SUBSCRIPTIONS","id":1}'


# --- the base URL, taken apart ---------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "bare", "shown"),
    [
        ("ws://127.0.0.1:9000", "ws://127.0.0.1:9000", "ws://127.0.0.1:9000"),
        ("wss://stream.binance.com:9443/", "wss://stream.binance.com:9443",
         "wss://stream.binance.com:9443"),
        ("wss://trader:S3cret@proxy.example:8443/base/", "wss://proxy.example:8443/base",
         "wss://trader:***@proxy.example:8443/base"),
    ],
)  # fmt: skip
def test_a_base_url_is_split_into_what_is_dialled_and_what_may_be_shown(
    url: str, bare: str, shown: str
) -> None:
    dialled, display, _headers = split_base_url(url)
    assert (dialled, display) == (bare, shown)


@pytest.mark.parametrize(
    ("url", "userinfo"),
    [
        ("wss://trader:S3cret@proxy.example:8443", b"trader:S3cret"),
        ("wss://trader@proxy.example:8443", b"trader:"),  # a user name alone
        ("ws://tr%40der:S3c%3Aret@127.0.0.1:9000", b"tr@der:S3c:ret"),  # decoded
    ],
)
def test_credentials_become_a_basic_authorization_header_and_leave_the_url(
    url: str, userinfo: bytes
) -> None:
    bare, shown, headers = split_base_url(url)
    assert headers == [(b"Authorization", b"Basic " + base64.b64encode(userinfo))]
    assert "@" not in bare
    assert "S3c" not in bare + shown and "***@" in shown


def test_a_url_without_credentials_sends_no_extra_header() -> None:
    assert split_base_url("wss://stream.binance.com:9443")[2] is None


@pytest.mark.parametrize(
    "url",
    ["https://h:9443", "http://user:S3cret@h", "ws://", "wss://user:S3cret@", "not a url",
     "127.0.0.1:9000", "ws://h ost:9000", ""],
)  # fmt: skip
def test_anything_but_a_ws_or_wss_url_with_a_host_is_a_config_error_that_hides_secrets(
    url: str,
) -> None:
    with pytest.raises(ConfigError, match="url must be a ws:// or wss:// URL with a host") as info:
        split_base_url(url)
    assert "S3cret" not in str(info.value)


@pytest.mark.parametrize(
    ("url", "time_unit", "parts"),
    [
        ("ws://127.0.0.1:9000", "MILLISECOND", ("ws", "127.0.0.1", 9000, "/stream")),
        ("ws://example.com", "MILLISECOND", ("ws", "example.com", 80, "/stream")),
        ("wss://stream.binance.com", "MICROSECOND",
         ("wss", "stream.binance.com", 443, "/stream?timeUnit=MICROSECOND")),
        ("wss://proxy.example:8443/base/", "MILLISECOND",
         ("wss", "proxy.example", 8443, "/base/stream")),
        ("ws://[::1]:8765/", "MILLISECOND", ("ws", "::1", 8765, "/stream")),
    ],
)  # fmt: skip
def test_a_session_dials_the_combined_stream_endpoint_under_the_base_url(
    url: str, time_unit: str, parts: tuple[str, str, int, str]
) -> None:
    bare, _shown, _headers = split_base_url(url)
    assert url_parts(bare, time_unit) == parts


# --- the socket ----------------------------------------------------------------------------


async def test_open_socket_speaks_websocket_to_the_exchange_and_close_socket_closes_it(
    autojump_clock: MockClock,
) -> None:
    async with exchange({"symbols": ("BTCUSDT",)}) as sim:
        scheme, host, port, resource = url_parts(sim.ws_url, "MILLISECOND")
        async with trio.open_nursery() as nursery:
            ws, stream = await open_socket(nursery, scheme, host, port, resource, "", None)
            await ws.send_message('{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":1}')
            reply = orjson.loads(await ws.get_message())
            tid = sim.control.inject_trade("BTCUSDT", 100.0, 1.0)
            frame = orjson.loads(await ws.get_message())
            await close_socket(ws, stream)
            nursery.cancel_scope.cancel()
        with trio.fail_after(10):
            await sim.control.wait_for(lambda st: st.connections_open == 0)
    assert reply == {"result": None, "id": 1}
    assert frame["stream"] == "btcusdt@trade" and frame["data"]["t"] == tid
    assert ws.closed is not None and ws.closed.code == 1000  # a clean close handshake


async def test_closing_a_socket_to_a_deaf_peer_takes_a_second_and_no_wait_when_cancelled(
    autojump_clock: MockClock,
) -> None:
    async with exchange({"symbols": ("BTCUSDT",)}) as sim:
        scheme, host, port, resource = url_parts(sim.ws_url, "MILLISECOND")
        took: list[float] = []
        async with trio.open_nursery() as nursery:
            for cancelled in (False, True):
                ws, stream = await open_socket(nursery, scheme, host, port, resource, "", None)
                assert sim.control.deafen() >= 1  # no close reply will ever come
                with trio.CancelScope() as scope:
                    if cancelled:
                        scope.cancel()  # the session that opened it is being cancelled
                    start = trio.current_time()
                    await close_socket(ws, stream)  # shielded: it closes all the same
                    took.append(trio.current_time() - start)
            nursery.cancel_scope.cancel()
    assert took == pytest.approx([1.0, 0.0])


async def test_a_dead_port_fails_with_its_os_error(autojump_clock: MockClock) -> None:
    async with trio.open_nursery() as nursery:
        with pytest.raises(OSError):
            await open_socket(nursery, "ws", "127.0.0.1", dead_port(), "/stream", "", None)


async def test_a_wss_socket_trusts_ca_file_and_fails_in_the_tls_handshake_without_it(
    autojump_clock: MockClock,
) -> None:
    async with exchange({"symbols": ("BTCUSDT",), "tls": True}) as sim:
        assert sim.ca_file is not None
        scheme, host, port, resource = url_parts(sim.ws_url, "MILLISECOND")
        async with trio.open_nursery() as nursery:
            with pytest.raises(trio.BrokenResourceError) as refused:
                await open_socket(nursery, scheme, host, port, resource, "", None)
            ws, stream = await open_socket(nursery, scheme, host, port, resource, sim.ca_file,
                                           None)  # fmt: skip
            await ws.send_message(_LIST)
            reply = orjson.loads(await ws.get_message())
            await close_socket(ws, stream)
            nursery.cancel_scope.cancel()
    assert scheme == "wss"
    assert isinstance(refused.value.__cause__, ssl.SSLCertVerificationError)
    assert reply == {"result": [], "id": 1}


async def test_credentials_in_the_url_go_in_the_handshake_header_not_the_request_line(
    autojump_clock: MockClock,
) -> None:
    requests: list[bytes] = []

    async def handshake_reader(stream: trio.SocketStream) -> None:
        requests.append(await read_request_head(stream))
        await stream.aclose()  # refuse: the gateway retries, then gives up

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(
            functools.partial(trio.serve_tcp, handshake_reader, 0, host="127.0.0.1")
        )
        port = listeners[0].socket.getsockname()[1]
        with pytest.raises(ConnectionFailed) as failed:
            async with open_gateway(
                url=f"ws://trader:S3cret@127.0.0.1:{port}", symbols=("BTCUSDT",),
                reconnect=ReconnectConfig(initial=0.1, max_attempts=2),
                rest_url="",  # only the stream handshakes reach this listener
            ):  # fmt: skip
                pass  # pragma: no cover
        nursery.cancel_scope.cancel()
    assert len(requests) == 2 and "S3cret" not in str(failed.value)
    assert "closed by the server during the WebSocket handshake" in str(failed.value)
    head = requests[0].decode()
    assert head.startswith("GET /stream HTTP/1.1\r\n") and "S3cret" not in head
    token = base64.b64encode(b"trader:S3cret").decode()
    assert f"\r\nAuthorization: Basic {token}\r\n" in head
