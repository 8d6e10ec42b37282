"""Every bad input a clear error, up front: URLs, keyword overrides, position sides.

TOML, dicts, `open_gateway`'s keywords and `GatewayConfig(...)` all meet the same checks;
each error is a `ConfigError` (or `PositionError`) naming the field and what is allowed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from gateway import (
    ConfigError,
    ConnectionFailed,
    GatewayError,
    PositionError,
    Side,
    WebSocketLayer,
    open_gateway,
)
from gateway.config import (
    GatewayConfig,
    PositionConfig,
    ReconnectConfig,
    config_from_dict,
    evolve_config,
)
from gateway.simulator import Simulator, open_simulator
from tests._loopback import dead_port

BAD_WS_URLS = [
    ("http://127.0.0.1:9000", r"http:// is not allowed; write ws://"),
    ("https://stream.example:9443", r"https:// is not allowed; for TLS write wss://"),
    ("ftp://h", r"ftp:// is not allowed"),
    ("127.0.0.1:9000", r"no scheme"),
    ("not a url", r"whitespace"),
    ("ws://", r"no host"),
    ("ws://:9000", r"no host"),
    ("ws://h:0", r"the port must be a number 1..65535"),
    ("ws://h:http", r"the port must be a number 1..65535"),
    ("wss://h/stream?streams=btcusdt@trade", r"an '@' after the host"),
    ("wss://h?timeUnit=MICROSECOND", r"a query or fragment"),
]
BAD_REST_URLS = [
    ("ws://127.0.0.1:9000", r"ws:// is not allowed; write http://"),
    ("wss://h", r"wss:// is not allowed; for TLS write https://"),
    ("127.0.0.1:8080", r"no scheme"),
    ("https://", r"no host"),
]


@asynccontextmanager
async def exchange() -> AsyncIterator[Simulator]:
    options = {"symbols": ("BTCUSDT", "ETHUSDT"), "clock": "virtual", "pacing": "manual"}
    async with open_simulator(**options) as sim:
        yield sim


def no_sockets(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Make opening a TCP stream fail the test; returns the list of attempts."""
    attempts: list[Any] = []

    async def refuse(*args: Any, **kwargs: Any) -> Any:
        attempts.append(args)
        raise AssertionError(f"a socket was opened: {args!r}")

    monkeypatch.setattr(trio, "open_tcp_stream", refuse)
    return attempts


# --- (4) URLs --------------------------------------------------------------------------


@pytest.mark.parametrize(("url", "problem"), BAD_WS_URLS)
def test_a_bad_stream_url_is_refused_everywhere_naming_the_field(url: str, problem: str) -> None:
    allowed = r"url must be a ws:// or wss:// URL with a host, e.g. wss://stream.binance.com:9443"
    for build in (
        lambda: config_from_dict({"symbols": ["BTCUSDT"], "url": url}),
        lambda: GatewayConfig(symbols=("BTCUSDT",), url=url),
        lambda: evolve_config(GatewayConfig(), url=url),
    ):
        with pytest.raises(ConfigError, match=allowed) as info:
            build()
        assert problem in str(info.value) or pytest.fail(str(info.value))


@pytest.mark.parametrize(("url", "problem"), BAD_REST_URLS)
def test_a_bad_rest_url_is_refused_naming_the_field(url: str, problem: str) -> None:
    with pytest.raises(ConfigError, match=r"rest_url must be an http:// or https:// URL") as info:
        config_from_dict({"symbols": ["BTCUSDT"], "rest_url": url})
    assert problem in str(info.value) and "or empty for no REST" in str(info.value)


def test_good_urls_pass_and_an_empty_rest_url_means_no_rest() -> None:
    for url in ("ws://127.0.0.1:9000", "wss://stream.binance.com:9443", "wss://[::1]:9443/p"):
        assert GatewayConfig(url=url).url == url
    assert GatewayConfig(url="wss://u:p%2Fw@h").url == "wss://u:p%2Fw@h"  # encoded: fine
    assert GatewayConfig(rest_url="").rest_url == ""
    assert GatewayConfig(rest_url="http://127.0.0.1:8080/prefix").rest_url.endswith("/prefix")


@pytest.mark.parametrize(
    "url",
    [
        "https://user:S3cretPw@h",  # wrong scheme
        "ws://user:S3cretPw@",  # no host
        "ws://user:S3cret/Pw@h",  # an unencoded "/": the password leaks into the path
        "ws://user:1234/S3cretPw@h",  # ... and an all-digit start parses as a port
        "user:S3cretPw@h:9000",  # no scheme
        "ws://user:S3cretPw@h:port",
    ],
)
def test_a_refused_url_is_shown_without_its_password(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        GatewayConfig(url=url)
    message = str(info.value)
    assert "S3cret" not in message and "Pw" not in message and "***" in message


@pytest.mark.parametrize(("url", "problem"), [*BAD_WS_URLS[:6]])
async def test_open_gateway_refuses_a_bad_url_before_opening_any_socket(
    url: str, problem: str, monkeypatch: pytest.MonkeyPatch, autojump_clock: MockClock
) -> None:
    attempts = no_sockets(monkeypatch)
    with pytest.raises(ConfigError, match=r"^url must be a ws:// or wss:// URL") as info:
        async with open_gateway(symbols=["BTCUSDT"], url=url):
            pytest.fail("the gateway must not open")  # pragma: no cover
    assert problem in str(info.value)
    assert attempts == []


async def test_https_to_a_live_exchange_is_refused_not_spoken_as_plaintext(
    autojump_clock: MockClock,
) -> None:
    async with exchange() as sim:
        tls_url = sim.ws_url.replace("ws://", "https://")
        with pytest.raises(ConfigError, match=r"for TLS write wss://"):
            async with open_gateway(symbols="BTCUSDT", url=tls_url):
                pytest.fail("the gateway must not open")  # pragma: no cover
        assert sim.control.stats().connections_total == 0


# --- (5) keyword overrides -------------------------------------------------------------


def subscribed(sim: Simulator) -> list[str]:
    return sorted(n for names in sim.control.stats().subscriptions.values() for n in names)


@pytest.mark.parametrize(
    ("symbols", "expected"),
    [
        ("BTCUSDT", ("BTCUSDT",)),
        ("BTCUSDT, ETHUSDT", ("BTCUSDT", "ETHUSDT")),
        (["BTCUSDT"], ("BTCUSDT",)),
        (("ETHUSDT",), ("ETHUSDT",)),
    ],
)
async def test_symbols_as_a_keyword_mean_what_they_mean_in_toml(
    symbols: Any, expected: tuple[str, ...], autojump_clock: MockClock
) -> None:
    assert config_from_dict({"symbols": symbols}).symbols == expected  # the TOML path
    async with exchange() as sim, open_gateway(symbols=symbols, url=sim.ws_url, rest_url="") as gw:
        assert gw.config.symbols == expected
        assert tuple(gw.last_prices()) == expected
        assert subscribed(sim) == sorted(f"{s.lower()}@trade" for s in expected)


async def test_reconnect_as_a_dict_is_converted_and_used(autojump_clock: MockClock) -> None:
    port = dead_port()
    reconnect = {"max_attempts": 3, "initial": 0.1, "cap": 1.0}
    with pytest.raises(ConnectionFailed, match="gave up after 3 attempts"):
        async with open_gateway(symbols="BTCUSDT", url=f"ws://127.0.0.1:{port}",
                                rest_url="", reconnect=reconnect):  # fmt: skip
            pytest.fail("the gateway must not open against a dead port")  # pragma: no cover


async def test_classes_as_keyword_values_still_work(autojump_clock: MockClock) -> None:
    position = PositionConfig("BTCUSDT", Side.SHORT, 100.0, stop_price=104.0, id="p1")
    async with (
        exchange() as sim,
        open_gateway(
            symbols=["BTCUSDT"], url=sim.ws_url, rest_url="",
            reconnect=ReconnectConfig(max_attempts=2), positions=[position],
        ) as gw,
    ):  # fmt: skip
        assert gw.config.reconnect == ReconnectConfig(max_attempts=2)
        [status] = gw.positions()
        assert (status.position.id, status.position.side.name) == ("p1", "SHORT")


def test_overrides_keep_the_base_config_and_its_classes() -> None:
    base = GatewayConfig(
        symbols=("BTCUSDT",), reconnect=ReconnectConfig(initial=0.2),
        positions=(PositionConfig("BTCUSDT", Side.LONG, 1.0, stop_pct=0.1),),
    )  # fmt: skip
    cfg = evolve_config(base, streams="trade,kline_1m", reconnect={"max_attempts": 4})
    assert cfg.streams == ("trade", "kline_1m") and cfg.symbols == ("BTCUSDT",)
    assert cfg.reconnect == ReconnectConfig(max_attempts=4)  # a table replaces the whole table
    assert cfg.positions == base.positions


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"symbol": "BTCUSDT"}, r"unknown key symbol; allowed: symbols, streams"),
        ({"reconnect": {"max_attempts": 0}}, r"reconnect: max_attempts must be an integer >= 1"),
        ({"reconnect": {"retries": 3}}, r"unknown key reconnect.retries; allowed: initial"),
        ({"reconnect": None}, r"reconnect: expected a table \(dict\) with keys initial, factor"),
        ({"reconnect": {"max_attempts": "3"}}, r"reconnect.max_attempts: expected an integer"),
        ({"candle_buffer": "x"}, r"candle_buffer: expected an integer, got 'x'"),
        ({"symbols": 5}, r"symbols: expected a list of strings, got 5"),
        ({"symbols": ["BTCUSDT", 5]}, r"symbols: expected a string, got 5"),
        ({"positions": [{"symbol": "BTCUSDT", "side": "UP", "entry_price": 1, "stop_pct": 0.1}]},
         r"positions\[0\].side: side must be LONG or SHORT, got 'UP'"),
        ({"time_unit": "ns"}, r"^time_unit must be MILLISECOND or MICROSECOND, got 'ns'"),
    ],
)  # fmt: skip
async def test_bad_keyword_overrides_raise_config_error_naming_the_field(
    overrides: dict[str, Any], message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts = no_sockets(monkeypatch)
    with pytest.raises(ConfigError, match=message):
        async with open_gateway(**{"symbols": ["BTCUSDT"], **overrides}):
            pytest.fail("the gateway must not open")  # pragma: no cover
    assert attempts == []


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"symbols": "BTCUSDT"}, r"symbols must be a list of names, e.g. \('BTCUSDT',\)"),
        ({"streams": ["trade", 1]}, r"streams\[1\] must be a string, got 1"),
        ({"reconnect": {"max_attempts": 3}}, r"reconnect must be a ReconnectConfig"),
        ({"positions": [{"symbol": "BTCUSDT"}]}, r"positions\[0\] must be a PositionConfig"),
        ({"time_unit": 5}, r"time_unit must be MILLISECOND or MICROSECOND, got 5"),
    ],
)
def test_a_config_built_directly_refuses_what_only_conversion_would_fix(
    fields: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        GatewayConfig(**fields)


def test_the_compat_layer_refuses_a_bad_url_when_built() -> None:
    with pytest.raises(ConfigError, match=r"^url must be a ws:// or wss:// URL.*for TLS write wss"):
        WebSocketLayer(url="https://stream.binance.com:9443")


def test_a_config_that_is_not_a_table_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"must be a table \(dict\) of settings"):
        config_from_dict(["BTCUSDT"])  # type: ignore[arg-type]


# --- (7) positions -----------------------------------------------------------------------


async def test_open_position_refuses_a_side_other_than_long_or_short(
    autojump_clock: MockClock,
) -> None:
    async with (
        exchange() as sim,
        open_gateway(symbols="BTCUSDT", url=sim.ws_url, rest_url="") as gw,
    ):
        with pytest.raises(PositionError, match=r"^side must be LONG or SHORT, got 'SIDEWAYS'$"):
            gw.open_position("BTCUSDT", "SIDEWAYS", 100.0, stop_pct=0.02)
        with pytest.raises(PositionError, match=r"got 3"):
            gw.open_position("BTCUSDT", 3, 100.0, stop_pct=0.02)  # type: ignore[arg-type]
        assert gw.positions() == []  # nothing armed by the refused calls
        pid = gw.open_position("BTCUSDT", "short", 100.0, stop_pct=0.02)  # any case
        assert [p.position.id for p in gw.positions()] == [pid] == ["BTCUSDT-1"]
        with pytest.raises(GatewayError, match=r"symbol 'XRPUSDT' is not in this gateway; "
                                               r"it has: BTCUSDT$"):  # fmt: skip
            gw.open_position("XRPUSDT", "LONG", 100.0, stop_pct=0.02)
