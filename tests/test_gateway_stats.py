"""The specification of gateway/runtime/gateway_stats.py: `Gateway.stats` assembled,
every part's own snapshot (symbols with their actors' reports, connections, router,
refused streams, REST, holds, callbacks, services) read into one frozen `GatewayStats`.
The stats types themselves are specified in test_stats.py.
"""

from __future__ import annotations

import json

import attrs
import pytest
from trio.testing import MockClock

from gateway import (
    ConnectionStats,
    GatewayStats,
    HoldStats,
    Percentiles,
    RestStats,
    RouterStats,
    SymbolStats,
    Trade,
    open_gateway,
)
from tests._loopback import drain, exchange, exchange_and_gateway
from tests._simclient import bounded


@bounded(60)
async def test_stats_are_typed_frozen_values_with_a_json_form(autojump_clock: MockClock) -> None:
    async with exchange_and_gateway(streams=("trade",)) as (sim, gw):
        empty = gw.stats().symbols["BTCUSDT"]
        assert empty.latency_us.receive_to_handled is None  # no sample yet
        assert empty.latency_us.to_dict()["receive_to_handled"] == {}
        with gw.subscribe("BTCUSDT", Trade, buffer=10) as trades:
            for price in (100.0, 101.0, 102.0):
                sim.control.inject_trade("BTCUSDT", price, 1.0)
            await drain(trades, 3)
        stats = gw.stats()
    assert type(stats) is GatewayStats
    btc = stats.symbols["BTCUSDT"]
    assert isinstance(btc, SymbolStats) and btc.symbol == "BTCUSDT"
    assert btc.events["Trade"] == 3 and btc.last_price == 102.0 and btc.status == "running"
    handled = btc.latency_us.receive_to_handled
    assert isinstance(handled, Percentiles) and handled.count == 3
    assert 0 <= handled.p50 <= handled.p99 <= handled.p99_9 <= handled.max
    [conn] = stats.connections
    assert isinstance(conn, ConnectionStats) and conn.id == "conn-1" and conn.streams == 3
    assert isinstance(stats.router, RouterStats) and stats.router.frames >= 3
    assert isinstance(stats.rest, RestStats) and isinstance(stats.holds, HoldStats)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        btc.handled = 0  # type: ignore[misc]
    # the JSON form: plain dicts, the latency keys the summaries always had
    plain = json.loads(json.dumps(stats.to_dict()))
    assert set(plain) == {"symbols", "connections", "router", "refused", "rest", "holds",
                          "callbacks", "services"}  # fmt: skip
    assert {name: s.restarts for name, s in stats.services.items()} == {
        "callbacks": 0, "hooks": 0, "backfill": 0, "fallback": 0}  # fmt: skip
    row = plain["symbols"]["BTCUSDT"]
    assert row["events"] == {"Trade": 3} and row["handled"] == btc.handled
    assert set(row["latency_us"]["receive_to_handled"]) == {"p50", "p90", "p99", "p99.9",
                                                            "max", "count"}  # fmt: skip
    assert plain["connections"][0]["id"] == "conn-1" and plain["rest"]["requests"] >= 0



@bounded(60)
async def test_a_symbols_row_carries_its_actors_restarts_and_status_from_its_supervisor(
    autojump_clock: MockClock,
) -> None:
    async with exchange_and_gateway({"symbols": ("BTCUSDT",)}, streams=("trade",)) as (sim, gw):
        assert gw.kill_symbol("BTCUSDT", "drill")
        with gw.subscribe("BTCUSDT", Trade, buffer=10) as trades:
            sim.control.inject_trade("BTCUSDT", 100.0, 1.0)
            await drain(trades, 1)  # handled: the actor runs again
        row = gw.stats().symbols["BTCUSDT"]
        report = gw.actor_report("BTCUSDT")
    assert (row.restarts, row.status, row.dead_letters) == (1, "running", 0)
    assert report is not None and report.restarts == row.restarts
    assert row.events["Trade"] == 1  # the counters are the symbol's own


@bounded(60)
async def test_without_a_rest_endpoint_there_is_no_rest_row_and_no_rest_service(
    autojump_clock: MockClock,
) -> None:
    async with (
        exchange({"symbols": ("BTCUSDT",)}) as sim,
        open_gateway(url=sim.ws_url, rest_url="", symbols=("BTCUSDT",), streams=("trade",)) as gw,
    ):
        stats = gw.stats()
    assert stats.rest is None
    assert set(stats.services) == {"callbacks", "hooks"}  # no backfiller, no price fallback
    assert stats.to_dict()["rest"] is None
