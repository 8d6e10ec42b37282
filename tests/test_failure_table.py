"""One test per row of the failure table in docs/architecture.md ("What happens on each
kind of failure"), each against the embedded exchange on loopback, under MockClock.

A symbol's handler is made to crash right after a stop-loss fired, before the close is
requested (`tests._faults.crash_after_triggers`): each stop that
fires is one crash, so a ladder of stops is a symbol that keeps crashing.
"""

from __future__ import annotations

import itertools
import logging
from typing import Any

import pytest
import trio
import trio.testing
from trio.testing import MockClock

from actors import ChildStatus, RestartIntensityExceeded
from gateway import (
    ConnectionFailed,
    ConnectionLost,
    Gateway,
    GatewayError,
    GatewayErrorEvent,
    PositionError,
    ReconnectConfig,
    StopState,
    StopTriggered,
    SymbolFailed,
    SymbolQuarantined,
    Trade,
    open_gateway,
)
from gateway.runtime.symbol import Crash
from tests._faults import crash_after_triggers
from tests._loopback import drain, exchange, exchange_and_gateway

TWO = {"symbols": ("BTCUSDT", "ETHUSDT")}
ONE = {"symbols": ("BTCUSDT",)}


def crash_on_each_stop(
    gw: Gateway, symbol: str, stops: int, *, crashes: int = 10**6
) -> list[float]:
    """Arm ``stops`` long stops on ``symbol`` whose firing makes its handler raise (the
    first ``crashes`` times); return trade prices that each fire exactly one of them."""
    crash_after_triggers(gw._state(symbol), crashes)
    for i in range(stops):
        gw.open_position(symbol, "LONG", 100.0, stop_price=99.0 - i)
    return [98.5 - i for i in range(stops)]


async def btc_flow(sim: Any, rounds: int = 5) -> None:
    """Let the market make BTCUSDT trades for a while (market time, not synchronisation)."""
    for _ in range(rounds):
        sim.control.generate(trades=10, symbol="BTCUSDT")
        await trio.sleep(0.1)


def btc_trades_complete(trades: list[Trade], first: int, sim: Any) -> bool:
    """Every BTCUSDT trade the exchange made since ``first`` arrived, in order, once."""
    made = sim.market.symbol("BTCUSDT").next_trade_id - first
    return [t.trade_id for t in trades] == list(range(first, first + made))


# --- malformed frame -----------------------------------------------------------------


async def test_a_malformed_frame_is_counted_logged_once_and_skipped(
    autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.runtime.router")
    async with exchange_and_gateway(ONE) as (sim, gw):
        with gw.subscribe("BTCUSDT", Trade) as sub:
            sim.control.send_malformed()
            sim.control.send_malformed()
            sim.control.inject_trade("BTCUSDT", 100.0, 1.0)
            assert [t.price for t in await drain(sub, 1)] == [100.0]  # the next frame flows
        stats = gw.stats()
    assert stats.router.malformed == 2
    assert sum("malformed" in r.getMessage() for r in caplog.records) == 1
    assert stats.connections[0].reconnects == 0
    assert stats.symbols["BTCUSDT"].crashes == stats.symbols["BTCUSDT"].restarts == 0


# --- unknown event kind --------------------------------------------------------------


async def test_an_unknown_event_kind_is_counted_per_kind_logged_once_per_kind_and_skipped(
    autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.runtime.router")
    other = '{"stream":"btcusdt@otherStream","data":{"e":"otherEvent","E":1,"s":"BTCUSDT"}}'
    async with exchange_and_gateway(ONE) as (sim, gw):
        with gw.subscribe("BTCUSDT") as sub:  # every kind: nothing unknown reaches it
            sim.control.send_unknown_event("BTCUSDT")
            sim.control.send_unknown_event("BTCUSDT")
            sim.control.send_raw(other)
            sim.control.inject_trade("BTCUSDT", 100.0, 1.0)
            assert [type(e) for e in await drain(sub, 1)] == [Trade]
        stats = gw.stats()
        kinds = dict(gw._router.unknown_kinds)
    assert stats.router.unknown == 3
    assert kinds == {"futureEvent": 2, "otherEvent": 1}
    logged = [r.getMessage() for r in caplog.records if "unknown event kind" in r.getMessage()]
    assert len(logged) == 2  # once per kind
    assert stats.symbols["BTCUSDT"].crashes == stats.connections[0].reconnects == 0


# --- a symbol's handler raises -------------------------------------------------------


async def test_a_symbol_whose_handler_raises_restarts_alone_with_its_state_and_a_dead_letter(
    autojump_clock: MockClock,
) -> None:
    fired: list[StopTriggered] = []
    async with exchange_and_gateway(TWO) as (sim, gw):
        gw.on_stop_loss(fired.append)
        (crossing,) = crash_on_each_stop(gw, "ETHUSDT", 1, crashes=1)
        first_btc = sim.market.symbol("BTCUSDT").next_trade_id
        with (
            gw.subscribe("BTCUSDT", Trade, buffer=10_000) as btc,
            gw.subscribe("ETHUSDT", Trade) as eth,
        ):
            sim.control.inject_trade("ETHUSDT", 99.5, 1.0)
            crash_id = sim.control.inject_trade("ETHUSDT", crossing, 1.0)  # the handler raises
            await btc_flow(sim)  # BTCUSDT trades while ETHUSDT restarts
            sim.control.inject_trade("ETHUSDT", 97.0, 1.0)
            assert [t.price for t in await drain(eth, 2)] == [99.5, 97.0]  # after the restart
            await btc_flow(sim)
            sim.control.inject_trade("BTCUSDT", 100.0, 1.0)  # a marker: frames keep order
            made = sim.market.symbol("BTCUSDT").next_trade_id - first_btc
            btc_trades = await drain(btc, made)
        await trio.testing.wait_all_tasks_blocked()  # the close request went through
        report = gw.actor_report("ETHUSDT")
        stats = gw.stats().symbols
        eth_state = gw._state("ETHUSDT")
        (position,) = gw.positions("ETHUSDT")
    assert report is not None and report.restarts == 1 and report.status is ChildStatus.RUNNING
    (letter,) = report.dead_letters  # the event it was handling, never redelivered
    assert isinstance(letter.message, Crash) and letter.message.event.trade_id == crash_id
    # Its state survived the restart: the stop fired once and was closed after it.
    assert [f.trigger_price for f in fired] == [crossing]
    assert position.state is StopState.CLOSED
    assert eth_state.machine.last_price == 97.0 and stats["ETHUSDT"].status == "running"
    # The other symbol never noticed.
    assert btc_trades_complete(btc_trades, first_btc, sim)
    assert (stats["BTCUSDT"].restarts, stats["BTCUSDT"].crashes) == (0, 0)


# --- a symbol keeps crashing: on_symbol_failure = "quarantine" (the default) ------------


async def test_a_symbol_that_keeps_crashing_is_quarantined_alone_and_the_others_stream_on(
    autojump_clock: MockClock,
) -> None:
    told: list[SymbolQuarantined] = []
    errors: list[BaseException] = []
    async with exchange_and_gateway(TWO, max_restarts=2) as (sim, gw):
        assert gw.config.on_symbol_failure == "quarantine"
        gw.on(SymbolQuarantined, told.append)
        gw.on_error(errors.append)
        prices = crash_on_each_stop(gw, "ETHUSDT", 3)  # 3 crashes: past max_restarts=2
        first_btc = sim.market.symbol("BTCUSDT").next_trade_id
        with (
            gw.subscribe("ETHUSDT", [SymbolQuarantined, GatewayErrorEvent]) as eth,
            gw.subscribe("BTCUSDT", Trade, buffer=10_000) as btc,
        ):
            for price in prices:
                sim.control.inject_trade("ETHUSDT", price, 1.0)
            await btc_flow(sim)
            event, reported = await drain(eth, 2)
            for _ in range(5):  # after the quarantine: counted as dropped, streams kept
                sim.control.inject_trade("ETHUSDT", 100.0, 1.0)
            await btc_flow(sim)
            sim.control.inject_trade("BTCUSDT", 100.0, 1.0)  # a marker: frames keep order
            made = sim.market.symbol("BTCUSDT").next_trade_id - first_btc
            btc_trades = await drain(btc, made)
        await trio.testing.wait_all_tasks_blocked()  # callbacks ran
        stats = gw.stats().symbols
        report = gw.actor_report("ETHUSDT")
        subscribed = await gw._connections[0].list_subscriptions()
        positions = {p.position.id: p.state for p in gw.positions("ETHUSDT")}
        with pytest.raises(PositionError, match="ETHUSDT is quarantined"):
            gw.open_position("ETHUSDT", "LONG", 100.0, stop_pct=0.01)  # never to be checked

        # Starting it afresh: remove it, add it again.
        await gw.remove_symbols(["ETHUSDT"])
        await gw.add_symbols(["ETHUSDT"])
        with gw.subscribe("ETHUSDT", Trade) as eth_again:
            sim.control.inject_trade("ETHUSDT", 101.0, 1.0)
            assert [t.price for t in await drain(eth_again, 1)] == [101.0]
        again = gw.stats().symbols["ETHUSDT"]
        assert (again.status, again.quarantined, again.restarts) == ("running", False, 0)

    assert isinstance(event, SymbolQuarantined) and told == [event]
    assert (event.symbol, event.restarts) == ("ETHUSDT", 2)
    error = event.error
    assert isinstance(error, RestartIntensityExceeded)
    assert (error.child, len(error.history)) == ("symbol:ETHUSDT", 3)
    assert isinstance(error.__cause__, RuntimeError)
    assert isinstance(reported, GatewayErrorEvent)
    assert (reported.source, reported.symbol, reported.error) == ("symbol", "ETHUSDT", error)
    assert errors == [error]  # the error callbacks were told, once
    eth_stats = stats["ETHUSDT"]
    assert (eth_stats.status, eth_stats.quarantined) == ("failed", True)
    assert (eth_stats.restarts, eth_stats.dead_letters) == (2, 3)
    assert eth_stats.dropped == 5
    assert report is not None and report.status is ChildStatus.FAILED
    assert "ethusdt@trade" in subscribed
    assert set(positions.values()) == {StopState.CLOSED}  # each fired once, then closed
    assert btc_trades_complete(btc_trades, first_btc, sim)
    btc_stats = stats["BTCUSDT"]
    assert (btc_stats.status, btc_stats.quarantined, btc_stats.restarts) == (
        "running", False, 0,
    )  # fmt: skip


# --- a symbol keeps crashing: on_symbol_failure = "raise" -------------------------------


async def test_a_symbol_that_keeps_crashing_ends_the_gateway_with_symbol_failed_under_raise(
    autojump_clock: MockClock,
) -> None:
    errors: list[BaseException] = []
    async with exchange(TWO) as sim:
        with pytest.raises(SymbolFailed) as info:
            async with open_gateway(
                url=sim.ws_url, rest_url=sim.rest_url, symbols=TWO["symbols"],
                max_restarts=2, on_symbol_failure="raise", on_error=errors.append,
            ) as gw:  # fmt: skip
                for price in crash_on_each_stop(gw, "ETHUSDT", 3):
                    sim.control.inject_trade("ETHUSDT", price, 1.0)
                with trio.fail_after(60):
                    await trio.sleep_forever()  # ended by the gateway, not by time
    failure = info.value
    assert type(failure) is SymbolFailed and isinstance(failure, GatewayError)
    assert (failure.symbol, failure.restarts) == ("ETHUSDT", 2)
    cause = failure.__cause__
    assert isinstance(cause, RestartIntensityExceeded) and cause.child == "symbol:ETHUSDT"
    assert isinstance(cause.__cause__, RuntimeError)  # the injected bug, chained
    assert errors[-1] is failure  # the error callbacks saw it before the caller
    assert not any(isinstance(e, SymbolQuarantined | RestartIntensityExceeded) for e in errors)


# --- a callback raises ---------------------------------------------------------------


async def test_a_raising_callback_is_logged_counted_and_told_to_the_error_callbacks(
    autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="gateway.runtime.publish")
    errors: list[BaseException] = []
    called: list[int] = []

    def buggy(trade: Trade) -> None:
        called.append(trade.trade_id)
        raise RuntimeError("user callback bug")

    async with exchange_and_gateway(ONE) as (sim, gw):
        gw.on(Trade, buggy)
        gw.on_error(errors.append)
        with gw.subscribe("BTCUSDT", Trade) as sub:
            ids = [sim.control.inject_trade("BTCUSDT", p, 1.0) for p in (100.0, 100.1, 100.2)]
            assert [t.trade_id for t in await drain(sub, 3)] == ids
        await trio.testing.wait_all_tasks_blocked()  # the dispatcher ran every callback
        stats = gw.stats()
    assert called == ids
    assert stats.callbacks.errors == 3
    assert [str(e) for e in errors] == ["user callback bug"] * 3
    assert sum("user callback bug" in r.getMessage() for r in caplog.records) == 3
    symbol = stats.symbols["BTCUSDT"]
    assert (symbol.crashes, symbol.restarts, symbol.handled) == (0, 0, 3)
    assert stats.connections[0].reconnects == 0


# --- a close hook raises -------------------------------------------------------------


async def test_a_raising_close_hook_keeps_the_position_closing_and_is_retried_with_backoff(
    autojump_clock: MockClock,
) -> None:
    calls: list[tuple[float, StopState]] = []
    succeeded = trio.Event()
    errors: list[BaseException] = []
    fired: list[StopTriggered] = []
    holder: list[Gateway] = []

    def flaky_close(stop: StopTriggered) -> None:
        calls.append((trio.current_time(), holder[0].positions("BTCUSDT")[0].state))
        if len(calls) <= 3:
            raise ConnectionError(f"exchange busy ({len(calls)})")
        succeeded.set()

    async with exchange_and_gateway(ONE, close_hook=flaky_close) as (sim, gw):
        holder.append(gw)
        gw.on_error(errors.append)
        gw.on_stop_loss(fired.append)
        gw.open_position("BTCUSDT", "LONG", 100.0, stop_price=95.0)
        sim.control.inject_trade("BTCUSDT", 94.0, 1.0)
        with trio.fail_after(30):
            await succeeded.wait()
        await trio.testing.wait_all_tasks_blocked()
        (status,) = gw.positions("BTCUSDT")
        report = gw.actor_report("BTCUSDT")
    assert {state for _, state in calls} == {StopState.CLOSING}  # visible while failing
    gaps = [b[0] - a[0] for a, b in itertools.pairwise(calls)]
    assert gaps == pytest.approx([0.05, 0.1, 0.2])  # exponential backoff between retries
    assert (status.state, status.attempts, status.failures) == (StopState.CLOSED, 4, 3)
    assert [str(e) for e in errors] == [f"exchange busy ({n})" for n in (1, 2, 3)]
    assert len(fired) == 1  # the stop itself fired once
    assert report is not None and report.restarts == 0


# --- connection closed / silent / serverShutdown ---------------------------------------


@pytest.mark.parametrize("fault", ["closed", "closed-abrupt", "silent", "server-shutdown"])
async def test_a_closed_silent_or_shutting_down_connection_recovers_and_resubscribes(
    autojump_clock: MockClock, fault: str
) -> None:
    sim_options: dict[str, Any] = dict(TWO)
    if fault == "server-shutdown":
        sim_options.update(connection_lifetime=5.0, shutdown_notice=True, shutdown_lead=1.0)
    async with exchange_and_gateway(sim_options, silence_timeout=2.0) as (sim, gw):
        with gw.subscribe(kinds=[Trade], buffer=1000) as sub:
            sim.control.inject_trade("BTCUSDT", 100.0, 1.0)
            assert [t.price for t in await drain(sub, 1)] == [100.0]
            if fault.startswith("closed"):
                sim.control.close_connections(1000, "bye", abrupt=fault == "closed-abrupt")
            elif fault == "silent":
                sim.control.stall()  # no frame at all; pings are still answered
                await trio.sleep(10.0)  # five silence timeouts of market time
                sim.control.resume()
            with trio.fail_after(30):
                if fault != "silent":  # wait until a new connection replaced the old one
                    await sim.control.wait_for(
                        lambda st: st.connections_total >= 2 and st.connections_open == 1
                    )
                await gw._connections[0].wait_live()
            for symbol in TWO["symbols"]:
                sim.control.inject_trade(symbol, 101.0, 1.0)
            after = await drain(sub, 2)
        (conn,) = gw._connections
        subscriptions = list(sim.control.stats().subscriptions.values())
        restarts = [s.restarts for s in gw.stats().symbols.values()]
    assert sorted(t.symbol for t in after) == ["BTCUSDT", "ETHUSDT"]  # both streams flow
    assert subscriptions == [("btcusdt@trade", "ethusdt@trade")]  # resubscribed, once
    expected = {
        "closed": (1, 0), "closed-abrupt": (1, 0),
        "silent": (0, 0),  # a quiet exchange that answers pings keeps its connection
        "server-shutdown": (0, 1),  # make-before-break: a rotation, not a reconnect
    }[fault]  # fmt: skip
    assert (conn.reconnects, conn.rotations) == expected
    assert restarts == [0, 0]


# --- exchange unreachable for max_attempts ---------------------------------------------


@pytest.mark.parametrize("when", ["at-start", "mid-run"])
async def test_an_exchange_unreachable_for_max_attempts_gives_connection_failed_after_callbacks(
    autojump_clock: MockClock, when: str
) -> None:
    errors: list[BaseException] = []
    reconnect = ReconnectConfig(initial=0.1, cap=1.0, max_attempts=3)
    async with exchange(ONE) as sim:
        if when == "at-start":
            sim.control.refuse_connections(3600.0)
        with pytest.raises(ConnectionFailed, match="gave up after 3 attempts") as info:
            async with open_gateway(
                url=sim.ws_url, rest_url=sim.rest_url, symbols=ONE["symbols"],
                reconnect=reconnect, on_error=errors.append,
            ):  # fmt: skip
                assert when == "mid-run", "the gateway must not open while refused"
                sim.control.refuse_connections(3600.0)
                sim.control.close_connections(abrupt=True)
                with trio.fail_after(60):
                    await trio.sleep_forever()  # ended by the gateway, not by time
        rejected = sim.control.stats().connections_rejected
    failure = info.value
    assert type(failure) is ConnectionFailed
    attempts = errors[:-1]
    assert len(attempts) == 3 and errors[-1] is failure  # each attempt, then the final error
    assert all(isinstance(e, ConnectionLost) for e in attempts)
    assert failure.__cause__ is attempts[-1].__cause__  # the last attempt's error, chained
    assert rejected == (3 if when == "at-start" else 2)  # mid-run: the close was the first


# --- the caller cancels --------------------------------------------------------------


async def test_the_caller_cancelling_stops_everything_and_is_never_counted_as_a_crash(
    autojump_clock: MockClock,
) -> None:
    errors: list[BaseException] = []
    hook_started = trio.Event()

    async def slow_close(stop: StopTriggered) -> None:
        hook_started.set()
        await trio.sleep_forever()  # still running when the caller cancels

    async with exchange({**TWO, "pacing": "rate"}) as sim:
        with trio.CancelScope() as scope:
            async with open_gateway(
                url=sim.ws_url, rest_url=sim.rest_url, symbols=TWO["symbols"],
                close_hook=slow_close, on_error=errors.append,
            ) as gw:  # fmt: skip
                gw.open_position("BTCUSDT", "LONG", 100.0, stop_price=99.0)
                sim.control.inject_trade("BTCUSDT", 98.0, 1.0)
                with trio.fail_after(30):
                    await hook_started.wait()
                await trio.sleep(1.0)  # trades keep flowing (rate pacing) when we cancel
                scope.cancel()
                await trio.sleep_forever()  # the cancellation ends it
        assert scope.cancelled_caught
        with trio.fail_after(30):
            await sim.control.wait_for(lambda st: st.connections_open == 0)
    reports = {s: gw.actor_report(s) for s in TWO["symbols"]}
    for report in reports.values():
        assert report is not None
        assert (report.status, report.restarts, report.dead_letters) == (
            ChildStatus.STOPPED, 0, (),
        )  # fmt: skip
    assert {s.crashes for s in gw.stats().symbols.values()} == {0}
    assert gw._hooks.failures == 0  # the cancelled hook is no failure either
    assert errors == []
    assert gw.stats().symbols["BTCUSDT"].handled > 1
