"""The REST endpoint follows the stream endpoint: Binance stream hosts map to their REST
hosts, any other host to itself; an explicit ``rest_url`` wins; nothing goes elsewhere."""

from __future__ import annotations

import logging
import socket
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from gateway import open_gateway
from gateway.config import GatewayConfig, config_from_dict, evolve_config, rest_url_for
from gateway.core.orderbook import SyncState
from gateway.errors import ConfigError
from tests._loopback import dead_port, exchange


@pytest.mark.parametrize(
    ("ws_url", "rest_url"),
    [
        ("wss://stream.binance.com:9443", "https://api.binance.com"),
        ("wss://stream.binance.com:443", "https://api.binance.com"),
        ("wss://stream.binance.com", "https://api.binance.com"),
        ("wss://STREAM.Binance.com:9443/", "https://api.binance.com"),
        ("wss://data-stream.binance.vision", "https://data-api.binance.vision"),
        ("wss://data-stream.binance.vision:443", "https://data-api.binance.vision"),
        ("wss://stream.testnet.binance.vision", "https://testnet.binance.vision"),
        ("wss://stream.testnet.binance.vision:9443", "https://testnet.binance.vision"),
        ("wss://stream.binance.us:9443", "https://api.binance.us"),
        ("ws://127.0.0.1:8765", "http://127.0.0.1:8765"),
        ("wss://127.0.0.1:8765", "https://127.0.0.1:8765"),
        ("ws://[::1]:8765/some/path", "http://[::1]:8765"),
        ("wss://user:pw@proxy.example:8443", "https://user:pw@proxy.example:8443"),
        ("wss://stream.binance.com:1234", "https://stream.binance.com:1234"),
    ],
)
def test_rest_url_for_maps_known_stream_hosts_and_keeps_any_other(
    ws_url: str, rest_url: str
) -> None:
    assert rest_url_for(ws_url) == rest_url


def test_testnet_in_the_library_means_the_test_networks_hosts() -> None:
    """``GatewayConfig(testnet=True)`` (or ``open_gateway(testnet=True)``) streams from and
    asks the test network, as ``--testnet`` does; an explicit ``url`` still wins."""
    from gateway.api import Gateway

    config = GatewayConfig(testnet=True)
    assert config.resolved_url() == "wss://stream.testnet.binance.vision"
    assert config.resolved_rest_url() == "https://testnet.binance.vision"
    gw = Gateway(config, None)
    assert (gw.config.url, gw.config.rest_url) == (
        "wss://stream.testnet.binance.vision", "https://testnet.binance.vision")
    mine = GatewayConfig(testnet=True, url="ws://127.0.0.1:9")
    assert (mine.resolved_url(), mine.resolved_rest_url()) == (
        "ws://127.0.0.1:9", "http://127.0.0.1:9")
    assert GatewayConfig().resolved_url() == "wss://stream.binance.com:9443"


def test_rest_url_defaults_to_auto_and_an_explicit_one_wins() -> None:
    assert GatewayConfig().rest_url == "auto"
    assert GatewayConfig().resolved_rest_url() == "https://api.binance.com"
    local = GatewayConfig(url="ws://127.0.0.1:9")
    assert local.resolved_rest_url() == "http://127.0.0.1:9"
    # evolving the url re-derives REST (the CLI's path: defaults, then --url)
    assert evolve_config(GatewayConfig(), url="ws://127.0.0.1:9").resolved_rest_url() == (
        "http://127.0.0.1:9"
    )
    explicit = GatewayConfig(url="ws://127.0.0.1:9", rest_url="http://127.0.0.1:10")
    assert explicit.resolved_rest_url() == "http://127.0.0.1:10"
    assert GatewayConfig(url="ws://127.0.0.1:9", rest_url="").resolved_rest_url() == ""
    toml_like = config_from_dict({"url": "ws://127.0.0.1:9", "rest_url": "auto"})
    assert toml_like.resolved_rest_url() == "http://127.0.0.1:9"
    with pytest.raises(ConfigError, match=r"rest_url.*'auto' to follow the stream url"):
        GatewayConfig(rest_url="ws://127.0.0.1:9")


def _loopback_only(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every host name resolved; refuse any but loopback (nothing leaves)."""
    asked: list[str] = []
    real_trio, real_socket = trio.socket.getaddrinfo, socket.getaddrinfo

    def check(host: Any) -> None:
        name = host.decode() if isinstance(host, bytes) else str(host)
        asked.append(name)
        if name not in ("127.0.0.1", "localhost", "::1"):
            raise OSError(f"test: no resolving {name}")

    async def trio_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        check(host)
        return await real_trio(host, *args, **kwargs)

    def socket_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
        check(host)
        return real_socket(host, *args, **kwargs)

    monkeypatch.setattr(trio.socket, "getaddrinfo", trio_getaddrinfo)
    monkeypatch.setattr(socket, "getaddrinfo", socket_getaddrinfo)
    return asked


async def test_a_loopback_stream_url_sends_rest_to_the_same_port_and_nowhere_else(
    autojump_clock: MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    asked = _loopback_only(monkeypatch)
    async with exchange({"symbols": ("BTCUSDT",)}) as sim:
        port = sim.ws_url.rsplit(":", 1)[1]
        assert sim.rest_url != f"http://127.0.0.1:{port}"  # its own REST port: not used
        async with open_gateway(
            url=sim.ws_url, symbols="BTCUSDT", streams="trade,depth@100ms"
        ) as gw:
            assert gw.config.rest_url == f"http://127.0.0.1:{port}"
            assert gw._backfiller is not None
            assert gw._backfiller.rest_url == f"http://127.0.0.1:{port}"
            for _ in range(40):  # diffs, then a depth snapshot from the WebSocket port
                book = gw.order_book("BTCUSDT")
                if book is not None and book.state is SyncState.SYNCED:
                    break
                sim.control.generate(5)
                await trio.sleep(0.5)
            assert book is not None
            assert book.state is SyncState.SYNCED
        # the symbol check and the snapshot were served by the exchange on its stream port
        assert sim.control.rest_requests("exchangeInfo") and sim.control.rest_requests("depth")
    assert not [h for h in asked if "binance" in h]


async def test_unknown_symbols_are_refused_through_the_derived_rest_endpoint(
    autojump_clock: MockClock,
) -> None:
    async with exchange({"symbols": ("BTCUSDT",)}) as sim:
        with pytest.raises(
            ConfigError, match=r"not listed on http://127\.0\.0\.1:\d+ .*'FOOBARUSDT'"
        ):
            async with open_gateway(url=sim.ws_url, symbols="BTCUSDT,FOOBARUSDT"):
                pytest.fail("an unknown symbol went live")


@pytest.mark.parametrize("rest", ["dead port", "HTTP 503"])
async def test_every_rest_failure_warning_names_the_host(
    rest: str, autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with exchange({"symbols": ("BTCUSDT",)}) as sim:
        rest_url = f"http://127.0.0.1:{dead_port()}" if rest == "dead port" else str(sim.rest_url)
        if rest == "HTTP 503":
            sim.control.rest_down()
        async with open_gateway(
            url=sim.ws_url, rest_url=rest_url, symbols="BTCUSDT", streams="trade,depth@100ms",
            rest_retries=1,
        ):  # fmt: skip
            for _ in range(20):
                sim.control.generate(5)
                await trio.sleep(0.5)
    failed = [r.getMessage() for r in caplog.records
              if r.name.startswith("gateway") and r.levelno >= logging.WARNING
              and any(w in r.getMessage() for w in ("retry", "failed", "not checked"))]  # fmt: skip
    assert any("exchangeInfo" in m for m in failed), failed
    assert any("depth" in m for m in failed), failed
    for message in failed:
        assert rest_url in message, message
