"""The specification of gateway/runtime/rotation.py: which connection carries which
stream. A new connection per group of streams, new streams placed where a connection has
room, a symbol's streams (refused ones too) dropped, and a connection that must go (its
age, the exchange's ``serverShutdown``) rotated make-before-break: the new one inherits
the old one's pace and refusals, and if it cannot connect the old one is kept.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from trio.testing import MockClock

from gateway import ConnectionLost, ReconnectConfig, SubscriptionError, Ticker, Trade
from gateway.stats import RefusedStream
from tests._loopback import SYMBOLS, drain, exchange_and_gateway
from tests._sessions import exchange, gateway, streams_again

# --- placing streams -------------------------------------------------------------------


async def test_sharding_opens_a_second_connection_and_every_stream_flows(
    autojump_clock: MockClock,
) -> None:
    async with exchange_and_gateway(
        {"max_streams_per_connection": 4}, streams=("trade", "ticker"),
        max_streams_per_connection=4,
    ) as (sim, gw):  # fmt: skip
        assert len(gw._connections) == 2
        assert sorted(len(c.streams) for c in gw._connections) == [2, 4]
        subs = {s: gw.subscribe(s, Trade) for s in SYMBOLS}
        for s in SYMBOLS:
            sim.control.inject_trade(s, 100.0, 1.0)
        for s, sub in subs.items():
            assert (await drain(sub, 1))[0].symbol == s
        with gw.subscribe(kinds=[Ticker]) as tickers:
            await trio.sleep(2.5)  # market time: tickers are due once a second
            sim.control.tick()
            seen: set[str] = set()
            with trio.fail_after(30):
                while seen != set(SYMBOLS):  # ends when every symbol's ticker came
                    seen.add((await tickers.receive()).symbol)
        assert seen == set(SYMBOLS)  # through both connections


async def test_streams_added_live_fill_a_connection_with_room_first_then_open_a_new_one(
    autojump_clock: MockClock,
) -> None:
    errors: list[BaseException] = []
    async with exchange() as sim, gateway(
        sim, errors, streams=("trade",), max_streams_per_connection=4
    ) as gw:
        assert [len(c.streams) for c in gw._connections] == [3]
        await gw.add_symbols(["SOLUSDT", "XRPUSDT"])
        placed = [sorted(c.streams) for c in gw._connections]
        for symbol in ("SOLUSDT", "XRPUSDT"):
            await streams_again(sim, gw, symbol)
        await gw.remove_symbols(["SOLUSDT", "XRPUSDT"])
        left = [sorted(c.streams) for c in gw._connections]
        subscribed = sorted(n for names in sim.control.stats().subscriptions.values()
                            for n in names)  # fmt: skip
    assert placed == [["bnbusdt@trade", "btcusdt@trade", "ethusdt@trade", "solusdt@trade"],
                      ["xrpusdt@trade"]]  # fmt: skip
    assert left == [["bnbusdt@trade", "btcusdt@trade", "ethusdt@trade"], []]
    assert subscribed == ["bnbusdt@trade", "btcusdt@trade", "ethusdt@trade"]
    assert errors == []


# --- make-before-break rotation ------------------------------------------------------


@pytest.mark.parametrize(
    ("sim_options", "gateway_options"),
    [
        ({}, {"max_connection_age": 4.0, "silence_timeout": 2.0}),  # our own 24 h rule
        ({"connection_lifetime": 5.0, "shutdown_notice": True, "shutdown_lead": 1.0}, {}),
    ],
    ids=["max-age", "server-shutdown"],
)
async def test_rotation_is_make_before_break_and_loses_no_trade(
    autojump_clock: MockClock, sim_options: dict[str, Any], gateway_options: dict[str, Any]
) -> None:
    options = {"symbols": ("BTCUSDT",), "pacing": "rate", "rate": 50.0, **sim_options}
    async with exchange_and_gateway(options, **gateway_options) as (sim, gw):
        with gw.subscribe("BTCUSDT", Trade, buffer=100_000) as sub:
            await trio.sleep(0.5)
            first = (await drain(sub, 1))[0].trade_id
            await trio.sleep(14)
            trades = sub.drain_nowait(100_000)
        ids = [first] + [t.trade_id for t in trades]
        assert ids == list(range(first, first + len(ids)))  # in order, none lost, no repeat
        assert len(ids) > 500
        (conn,) = gw._connections
        assert conn.rotations >= 2 and conn.reconnects == 0
        stats = sim.control.stats()
        assert stats.connections_total >= 3 and stats.connections_open == 1
        assert 1006 not in stats.closes_by_code  # every old connection closed cleanly
        symbol = gw.stats().symbols["BTCUSDT"]
        assert symbol.gaps == 0


async def test_a_rotation_that_cannot_connect_keeps_the_old_connection(
    autojump_clock: MockClock,
) -> None:
    errors: list[BaseException] = []
    policy = ReconnectConfig(initial=0.1, max_attempts=2)
    async with exchange() as sim, gateway(
        sim, errors, max_connection_age=30.0, reconnect=policy
    ) as gw:
        old = gw._connections[0]
        sim.control.refuse_connections(3600)
        with trio.fail_after(120):
            await sim.control.wait_for(lambda st: st.connections_rejected >= 2)
            await trio.testing.wait_all_tasks_blocked()
        assert gw._connections == [old] and not old.rotating and old.state == "live"
        await streams_again(sim, gw)
    assert len(errors) == 2 and all(isinstance(e, ConnectionLost) for e in errors)


async def test_leaving_while_a_rotation_is_still_connecting_raises_nothing(
    autojump_clock: MockClock,
) -> None:
    errors: list[BaseException] = []
    async with exchange() as sim:
        async with gateway(sim, errors, max_connection_age=30.0) as gw:
            sim.control.refuse_connections(3600)  # the rotation's new connection waits
            with trio.fail_after(120):
                await sim.control.wait_for(lambda st: st.connections_rejected >= 1)
            assert len(gw._connections) == 2 and gw._connections[1].state != "live"
        assert gw._connections and all(c.state == "stopped" for c in gw._connections)


async def test_a_rotated_connection_keeps_its_slowed_pace_and_its_refused_streams(
    autojump_clock: MockClock,
) -> None:
    errors: list[BaseException] = []
    async with exchange() as sim:
        sim.control.close_on_subscribe(1008, "Too many requests")  # the pace halves
        sim.control.refuse_streams(["ethusdt@trade"])
        async with gateway(sim, errors, streams=("trade",), max_connection_age=30.0) as gw:
            old = gw._connections[0]
            assert old.snapshot().control_pace == "2/1s" and "ethusdt@trade" in old.refused
            with trio.fail_after(120):  # the age rotation: a third connection, the old closed
                await sim.control.wait_for(
                    lambda st: st.connections_total >= 3 and st.connections_open == 1
                )
                await trio.testing.wait_all_tasks_blocked()
            (new,) = gw._connections
            snap = new.snapshot()
            refused = gw.stats().refused
            await streams_again(sim, gw)
    assert new is not old and new.conn_id == old.conn_id == "conn-1"
    assert (snap.rotations, snap.reconnects, snap.rate_penalties) == (1, 1, 1)
    assert snap.control_pace == "2/1s"  # not the 4 a second of a fresh connection
    assert set(snap.refused) == {"ethusdt@trade"} and "ethusdt@trade" not in new.streams
    assert refused == {"ethusdt@trade": RefusedStream(
        code=2, message="Invalid request: invalid stream", connection="conn-1")}  # fmt: skip
    assert [type(e) for e in errors] == [ConnectionLost, SubscriptionError]  # refused: told once
