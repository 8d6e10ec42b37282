"""Warm-up: kline buffers hold the last N closed REST candles before `open_gateway` yields."""

from __future__ import annotations

import httpx
import pytest
import trio
import trio.testing
from trio.testing import MockClock

from gateway import ConfigError, Kline, Trade, open_gateway
from gateway.config import GatewayConfig
from gateway.core.candles import kline_from_rest
from gateway.simulator import Simulator
from tests._loopback import drain, exchange


def _fields(k: Kline) -> tuple[object, ...]:
    return (k.open_time, k.close_time, k.open, k.high, k.low, k.close, k.volume, k.trade_count)


async def _history(sim: Simulator, minutes: int) -> None:
    """Trade through ``minutes`` virtual minutes so the exchange has closed 1m candles."""
    for _ in range(minutes):
        sim.control.generate(5)
        await trio.sleep(60)
        sim.control.tick()


async def _rest_closed(sim: Simulator, symbol: str, interval: str) -> list[Kline]:
    """The closed candles the exchange's REST klines serve now, oldest first."""
    async with httpx.AsyncClient(base_url=str(sim.rest_url)) as http:
        now = (await http.get("/api/v3/time")).json()["serverTime"]
        rows = (await http.get("/api/v3/klines", params={"symbol": symbol,
                                                         "interval": interval})).json()  # fmt: skip
    return [k for k in (kline_from_rest(symbol, interval, r, now) for r in rows) if k.is_closed]


async def test_warm_up_fills_each_kline_buffer_with_the_last_n_closed_rest_candles(
    autojump_clock: MockClock,
) -> None:
    async with exchange({"symbols": ("BTCUSDT", "ETHUSDT")}) as sim:
        await _history(sim, 12)
        expected = {s: (await _rest_closed(sim, s, "1m"))[-5:] for s in ("BTCUSDT", "ETHUSDT")}
        async with open_gateway(
            url=sim.ws_url, rest_url=sim.rest_url, symbols=("BTCUSDT", "ETHUSDT"),
            streams=("trade", "kline_1m", "kline_5m"), warmup_candles=5,
        ) as gw:  # fmt: skip
            for sym in ("BTCUSDT", "ETHUSDT"):
                assert "Kline" not in gw._state(sym).machine.counts  # no live kline came yet
                got = gw.candles(sym, "1m")
                assert len(got) == 5 and all(k.is_closed for k in got)
                assert [_fields(k) for k in got] == [_fields(k) for k in expected[sym]]
                assert len(gw.candles(sym, "5m")) == 2  # 12 minutes: two closed 5m candles
        klines = sim.control.rest_requests("klines")[2:]  # after the test's own two
        assert len(klines) == 4 and {r.status for r in klines} == {200}


async def test_a_rest_failure_during_warm_up_is_reported_and_the_gateway_still_opens(
    autojump_clock: MockClock,
) -> None:
    errors: list[BaseException] = []
    async with exchange({"symbols": ("BTCUSDT",)}) as sim:
        await _history(sim, 3)
        sim.control.fail_rest(503, count=100, path="klines")
        async with open_gateway(
            url=sim.ws_url, rest_url=sim.rest_url, symbols=("BTCUSDT",),
            streams=("trade", "kline_1m"), warmup_candles=5, rest_retries=1, on_error=errors.append,
        ) as gw:  # fmt: skip
            assert gw.candles("BTCUSDT", "1m") == []
            with gw.subscribe("BTCUSDT", Trade) as trades:
                sim.control.inject_trade("BTCUSDT", 99.0, 1.0)
                assert [t.price for t in await drain(trades, 1)] == [99.0]  # it streams
            await trio.testing.wait_all_tasks_blocked()  # the error callback has run
        assert len(errors) == 1 and "503" in str(errors[0])


async def test_symbols_added_later_are_warmed_up_too(autojump_clock: MockClock) -> None:
    async with exchange({"symbols": ("BTCUSDT", "ETHUSDT")}) as sim:
        await _history(sim, 4)
        async with open_gateway(
            url=sim.ws_url, rest_url=sim.rest_url, symbols=("BTCUSDT",),
            streams=("trade", "kline_1m"), warmup_candles=3,
        ) as gw:  # fmt: skip
            await _history(sim, 2)
            expected = (await _rest_closed(sim, "ETHUSDT", "1m"))[-3:]
            await gw.add_symbols(["ETHUSDT"])
            got = gw.candles("ETHUSDT", "1m")
            assert [_fields(k) for k in got] == [_fields(k) for k in expected]


def test_warmup_candles_is_validated() -> None:
    assert GatewayConfig().warmup_candles == 0
    for bad in (-1, 1000, 2.5, True):
        with pytest.raises(ConfigError, match="warmup_candles"):
            GatewayConfig(symbols=("BTCUSDT",), warmup_candles=bad)  # type: ignore[arg-type]


async def test_a_warm_up_that_hangs_is_bounded_and_the_gateway_opens(
    autojump_clock: MockClock,
) -> None:
    errors: list[BaseException] = []
    async with exchange({"symbols": ("BTCUSDT",)}) as sim:
        await _history(sim, 3)
        sim.control.hang_rest(count=100, path="klines")  # every attempt times out
        started = trio.current_time()
        async with open_gateway(
            url=sim.ws_url, rest_url=sim.rest_url, symbols=("BTCUSDT",), streams=("kline_1m",),
            warmup_candles=5, rest_timeout=2.0, rest_retries=10, on_error=errors.append,
        ) as gw:  # fmt: skip
            assert trio.current_time() - started <= 2 * 2.0 + 1.0  # not 10 retries of 2 s
            assert gw.candles("BTCUSDT", "1m") == []
            await trio.testing.wait_all_tasks_blocked()  # the error callback has run
            assert any("took longer than 4 s" in str(e) for e in errors)
