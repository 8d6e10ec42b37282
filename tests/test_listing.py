"""Symbols are spelt canonically and checked against the exchange's ``exchangeInfo``:
unknown ones are a `ConfigError`, a status other than TRADING a warning, a listing that
cannot be had a warning (bounded by ``rest_timeout``); empty stream lists are refused."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from functools import partial

import orjson
import pytest
import trio
from trio.testing import MockClock

from gateway import Trade, open_gateway
from gateway.config import GatewayConfig, PositionConfig
from gateway.errors import ConfigError
from tests._loopback import dead_port, drain, exchange, exchange_and_gateway, read_request_head


def test_common_spellings_become_the_canonical_symbol() -> None:
    config = GatewayConfig(symbols=("btcusdt", "BTC/USDT", "ETH-USDT", "bnb_usdt", " solusdt "))
    assert config.symbols == ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT")
    assert config.stream_names() == [f"{s}@trade" for s in ("btcusdt", "ethusdt", "bnbusdt",
                                                            "solusdt")]  # fmt: skip
    assert PositionConfig(symbol="eth/usdt", side="LONG", entry_price=1.0,  # type: ignore[arg-type]
                          stop_pct=0.1).symbol == "ETHUSDT"  # fmt: skip


def test_an_empty_stream_list_is_a_config_error_naming_streams() -> None:
    with pytest.raises(ConfigError, match=r"streams must name at least one .*BTCUSDT.*\(\)"):
        GatewayConfig(symbols=("BTCUSDT",), streams=())
    with pytest.raises(ConfigError, match=r"symbols\[0\].*'BTC USDT'"):
        GatewayConfig(symbols=("BTC USDT",))


async def test_empty_streams_are_refused_by_open_gateway_and_add_symbols(
    autojump_clock: MockClock,
) -> None:
    with pytest.raises(ConfigError, match="streams"):
        async with open_gateway(url=f"ws://127.0.0.1:{dead_port()}", symbols="BTCUSDT",
                                streams=""):  # fmt: skip
            pass
    async with exchange_and_gateway(symbols=("BTCUSDT",)) as (_, gw):
        with pytest.raises(ConfigError, match="add_symbols: streams"):
            await gw.add_symbols(["ETHUSDT"], streams=[])


async def test_spellings_open_and_stream_the_canonical_symbol(autojump_clock: MockClock) -> None:
    async with exchange_and_gateway(symbols=("btc/usdt", "ETH-USDT", "bnb_usdt")) as (sim, gw):
        assert gw.config.symbols == ("BTCUSDT", "ETHUSDT", "BNBUSDT")
        with gw.subscribe("btc-usdt", Trade) as sub:
            first = sim.market.symbol("BTCUSDT").next_trade_id
            sim.control.generate(30, symbol="BTCUSDT")
            trades = await drain(sub, sim.market.symbol("BTCUSDT").next_trade_id - first)
        assert {t.symbol for t in trades} == {"BTCUSDT"}
        assert gw._state("Btc_Usdt").symbol == "BTCUSDT"


async def test_unknown_symbols_are_a_config_error_naming_them_with_close_matches(
    autojump_clock: MockClock,
) -> None:
    async with exchange() as sim:
        with pytest.raises(ConfigError) as info:
            async with open_gateway(url=sim.ws_url, rest_url=sim.rest_url,
                                    symbols="BTCUSDT,FOOBARUSDT,BTC-USD"):  # fmt: skip
                pytest.fail("an unknown symbol went live")
        text = str(info.value)
        assert text.startswith("symbols: not listed on http://127.0.0.1:")
        assert "'FOOBARUSDT'" in text and "'BTCUSD' (close matches: BTCUSDT" in text
        assert "'BTCUSDT'" not in text


async def test_symbols_added_at_runtime_are_checked_and_spelt_canonically(
    autojump_clock: MockClock,
) -> None:
    async with exchange_and_gateway(symbols=("BTCUSDT",)) as (sim, gw):
        with pytest.raises(ConfigError, match=r"add_symbols: not listed .*'FOOBARUSDT'"):
            await gw.add_symbols(["FOOBARUSDT"])
        assert "FOOBARUSDT" not in gw.last_prices()
        with pytest.raises(ConfigError, match="'DOGEUSDT'"):
            await gw.add_streams(["dogeusdt@trade"])
        await gw.add_symbols(["eth/usdt"])
        assert set(gw.last_prices()) == {"BTCUSDT", "ETHUSDT"}
        with gw.subscribe("ETHUSDT", Trade) as sub:
            sim.control.generate(10, symbol="ETHUSDT")
            assert (await drain(sub, 1))[0].symbol == "ETHUSDT"


@asynccontextmanager
async def listing_server(statuses: dict[str, str]) -> AsyncIterator[str]:
    """A loopback REST stand-in whose ``exchangeInfo`` lists ``statuses``."""
    body = orjson.dumps({"symbols": [{"symbol": s, "status": st} for s, st in statuses.items()]})

    async def handle(stream: trio.SocketStream) -> None:
        await read_request_head(stream)
        head = (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n")  # fmt: skip
        await stream.send_all(head.encode() + body)
        await stream.aclose()

    async with trio.open_nursery() as nursery:
        listeners = await nursery.start(partial(trio.serve_tcp, handle, 0, host="127.0.0.1"))
        yield f"http://127.0.0.1:{listeners[0].socket.getsockname()[1]}"
        nursery.cancel_scope.cancel()


async def test_a_symbol_not_trading_is_a_warning_and_the_gateway_goes_on(
    autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with exchange() as sim, listing_server(
        {"BTCUSDT": "TRADING", "ETHUSDT": "HALT"}
    ) as rest_url, open_gateway(url=sim.ws_url, rest_url=rest_url,
                                symbols="BTCUSDT,ETHUSDT") as gw:  # fmt: skip
        assert set(gw.last_prices()) == {"BTCUSDT", "ETHUSDT"}
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any(m.startswith("ETHUSDT: status HALT on http://127.0.0.1:") for m in warnings)
    assert not any(m.startswith("BTCUSDT: status") for m in warnings)


@pytest.mark.parametrize("rest", ["dead", "hang", "none", "down"])
async def test_a_listing_that_cannot_be_had_warns_and_the_gateway_goes_live_in_bounded_time(
    rest: str, autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    async with exchange() as sim:
        rest_url = {"dead": f"http://127.0.0.1:{dead_port()}", "none": ""}.get(
            rest, str(sim.rest_url)
        )
        if rest == "hang":
            sim.control.hang_rest(path="exchangeInfo")
        if rest == "down":
            sim.control.rest_down(60)
        start = trio.current_time()
        async with open_gateway(url=sim.ws_url, rest_url=rest_url, symbols="BTCUSDT",
                                rest_timeout=3) as gw:  # fmt: skip
            assert trio.current_time() - start <= 3 + 1
            assert list(gw.last_prices()) == ["BTCUSDT"]
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    checked = [m for m in warnings if m.startswith("symbols not checked against the exchange")]
    assert len(checked) == 1, warnings
    if rest != "none":
        assert rest_url in checked[0]


async def test_check_symbols_false_skips_the_listing_and_many_unknown_are_summed_up(
    autojump_clock: MockClock,
) -> None:
    many = tuple(f"S{i:03d}USDT" for i in range(30))
    async with exchange() as sim:
        with pytest.raises(ConfigError) as info:
            async with open_gateway(url=sim.ws_url, rest_url=sim.rest_url, symbols=many):
                pytest.fail("unknown symbols went live")
        assert "'S009USDT'" in str(info.value) and "and 20 more" in str(info.value)
        assert "S010USDT" not in str(info.value)
        before = len(sim.control.rest_requests("exchangeInfo"))
        async with open_gateway(url=sim.ws_url, rest_url=sim.rest_url, symbols="FOOBARUSDT",
                                check_symbols=False) as gw:  # fmt: skip
            await gw.add_symbols(["BAZUSDT"])
            assert set(gw.last_prices()) == {"FOOBARUSDT", "BAZUSDT"}
        assert len(sim.control.rest_requests("exchangeInfo")) == before


async def test_the_check_trusts_ca_file_like_the_streams_do(autojump_clock: MockClock) -> None:
    async with exchange({"tls": True}) as sim:
        assert sim.ws_url.startswith("wss://") and sim.ca_file
        with pytest.raises(ConfigError, match=r"not listed on https://127\.0\.0\.1:.*'FOOBARUSDT'"):
            async with open_gateway(url=sim.ws_url, ca_file=sim.ca_file,
                                    symbols="BTCUSDT,FOOBARUSDT"):  # fmt: skip
                pytest.fail("an unknown symbol went live")
