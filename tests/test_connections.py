"""The connections supervisor (`gateway.runtime.connections`): a bug in a connection's
own code restarts that connection alone, with its streams, while everything else goes on;
losing the exchange is the connection's own business (reconnects), never a restart."""

from __future__ import annotations

from typing import Any

import pytest
import trio
from trio.testing import MockClock

from gateway import Trade
from gateway.runtime.router import Router
from tests._loopback import SYMBOLS, drain, exchange_and_gateway


async def test_a_bug_in_a_live_connection_restarts_it_alone_and_no_trade_is_lost(
    autojump_clock: MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    route = Router.route
    bugs: list[int] = []

    def route_with_one_bug(self: Router, frame: str | bytes, receive_ns: int) -> Any:
        if not bugs and self.frames == 40:  # once, mid-stream
            bugs.append(self.frames)
            self.frames += 1
            raise KeyError("routing table corrupted")
        return route(self, frame, receive_ns)

    monkeypatch.setattr(Router, "route", route_with_one_bug)
    async with exchange_and_gateway(streams=("trade",)) as (sim, gw):
        subs = {s: gw.subscribe(s, Trade, buffer=10_000) for s in SYMBOLS}
        firsts = {s: sim.market.symbol(s).next_trade_id for s in SYMBOLS}
        for _ in range(10):
            sim.control.generate(trades=10)
            await trio.sleep(0.5)
        made = {s: sim.market.symbol(s).next_trade_id - firsts[s] for s in SYMBOLS}
        got = {s: await drain(sub, made[s]) for s, sub in subs.items()}
        (conn,) = gw.stats().connections
        symbols = gw.stats().symbols
    assert bugs == [40]
    assert conn.restarts == 1 and conn.state == "live" and conn.streams == len(SYMBOLS)
    assert conn.connects == 2  # a fresh session after the restart, same streams
    for s in SYMBOLS:  # the frame the bug ate is a gap, backfilled: every id, once, in order
        assert [t.trade_id for t in got[s]] == list(range(firsts[s], firsts[s] + made[s]))
        assert symbols[s].restarts == 0  # the symbols never noticed


async def test_losing_the_exchange_is_a_reconnect_not_a_restart(
    autojump_clock: MockClock,
) -> None:
    async with exchange_and_gateway(streams=("trade",)) as (sim, gw):
        with gw.subscribe("BTCUSDT", Trade, buffer=1000) as sub:
            # One trade seen first: ids are judged from there (before it, nothing is missed).
            first = sim.control.inject_trade("BTCUSDT", 100.0, 1.0)
            await drain(sub, 1)
            first += 1
            for _ in range(3):
                sim.control.close_connections(1011, "bye", abrupt=False)
                for _ in range(8):  # the market trades on (market time, 2 s)
                    sim.control.generate(trades=1, symbol="BTCUSDT")
                    await trio.sleep(0.25)
            for _ in range(20):  # and on: a live trade after the last reconnect shows the
                sim.control.generate(trades=1, symbol="BTCUSDT")  # gap before it
                await trio.sleep(0.25)
            made = sim.market.symbol("BTCUSDT").next_trade_id - first
            got = await drain(sub, made)  # live, or backfilled once the connection is back
        (conn,) = gw.stats().connections
    assert [t.trade_id for t in got] == list(range(first, first + made))
    assert conn.reconnects == 3 and conn.restarts == 0
