"""`Gateway.stats` is a frozen, typed value (`gateway.stats`), and its ``to_dict()`` is the
JSON form the run summary and the benchmarks write."""

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
)
from tests._loopback import drain, exchange_and_gateway
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


def test_a_run_that_never_started_has_stats_too() -> None:
    """What the CLI reports for a run that never went live: the same types, empty."""
    stats = GatewayStats(symbols={}, connections=(ConnectionStats(id="conn-1", state="idle",
                                                                  streams=2),),
                         router=RouterStats())  # fmt: skip
    assert stats.to_dict()["connections"][0] == {
        "id": "conn-1", "state": "idle", "streams": 2, "connects": 0, "reconnects": 0,
        "rotations": 0, "frames": 0, "control_frames": 0, "control_pace": "",
        "rate_penalties": 0, "zombie_replacements": 0, "stream_resubscribes": 0,
        "stream_checks": 0, "refused": {}, "refusal_retries": 0, "last_error": None,
        "restarts": 0,
    }  # fmt: skip
    assert stats.rest is None and stats.holds == HoldStats()
