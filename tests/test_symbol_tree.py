"""The specification of gateway/runtime/symbol_tree.py: the gateway's symbol actors, one
supervisor per symbol under ``symbols`` (a symbol that keeps crashing fails alone):
starting, stopping, reporting, killing on purpose, and what happens when a symbol's
supervisor gives up (``on_symbol_failure``: quarantine it, or end the gateway).

End to end on loopback first, then plain calls on a tree of its own. The failure-table
rows for a symbol that keeps crashing are in test_failure_table.py, warm-up in
test_warmup.py.
"""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from trio.testing import MockClock

from actors import ChildStatus
from gateway import GatewayError, GatewayErrorEvent, SymbolFailed, SymbolQuarantined, Trade
from gateway.config import GatewayConfig
from gateway.core.holds import HoldBudget
from gateway.runtime.hooks import HookRunner
from gateway.runtime.publish import Publisher
from gateway.runtime.router import Router
from gateway.runtime.symbol_tree import SymbolTree
from tests._loopback import SYMBOLS, drain, exchange_and_gateway, queued

# --- one supervisor per symbol, end to end -------------------------------------------


async def test_a_killed_symbol_restarts_alone_and_loses_no_trade(
    autojump_clock: MockClock,
) -> None:
    from gateway import UnknownSymbol

    async with exchange_and_gateway(streams=("trade",)) as (sim, gw):
        subs = {s: gw.subscribe(s, Trade, buffer=10_000) for s in SYMBOLS}
        firsts = {s: sim.market.symbol(s).next_trade_id for s in SYMBOLS}
        victim, *others = SYMBOLS
        for i in range(12):
            sim.control.generate(trades=20)
            if i in (3, 7):
                assert gw.kill_symbol(victim, "drill")
                assert not gw.kill_symbol(victim)  # already going down: nothing to kill
            await trio.sleep(0.5)
        made = {s: sim.market.symbol(s).next_trade_id - firsts[s] for s in SYMBOLS}
        got = {s: await drain(sub, made[s]) for s, sub in subs.items()}
        with pytest.raises(UnknownSymbol):
            gw.kill_symbol("NOPEUSDT")
        stats = gw.stats().symbols
    for s in SYMBOLS:  # every trade, once, in order: the killed one caught up on its queue
        assert [t.trade_id for t in got[s]] == list(range(firsts[s], firsts[s] + made[s]))
    assert stats[victim].restarts == 2
    assert stats[victim].dead_letters == 0  # killed between events: nothing in hand
    assert all(stats[s].restarts == 0 for s in others)
    report = gw.actor_report(victim)
    assert report is not None and "drill" in (report.last_error or "")


async def test_a_symbol_that_always_crashes_leaves_the_others_complete(
    autojump_clock: MockClock,
) -> None:
    async with exchange_and_gateway(
        {"symbols": ("BTCUSDT", "ETHUSDT")}, max_restarts=1000, restart_period=1.0
    ) as (sim, gw):
        bad = gw._state("ETHUSDT")

        def always_fail(event: Any) -> None:
            raise ValueError(f"broken handler for {event.symbol}")

        bad.handle = always_fail  # type: ignore[method-assign]
        raising: list[int] = []

        def raising_callback(ev: Trade) -> None:
            raising.append(ev.trade_id)
            raise RuntimeError("user callback bug")

        gw.on(Trade, raising_callback)
        first = sim.market.symbol("BTCUSDT").next_trade_id
        with gw.subscribe("BTCUSDT", Trade, buffer=10_000) as sub:
            for _ in range(10):
                sim.control.generate(trades=20)
                await trio.sleep(0.2)
            made = sim.market.symbol("BTCUSDT").next_trade_id - first
            trades = await drain(sub, made)
        assert [t.trade_id for t in trades] == list(range(first, first + made))
        report = gw.actor_report("ETHUSDT")
        assert report is not None and report.restarts >= 2 and report.dead_letters
        assert gw.stats().symbols["BTCUSDT"].crashes == 0
        assert gw.stats().callbacks.errors == len(raising) > 0


# --- plain calls on a tree of its own -------------------------------------------------


def _tree(**options: Any) -> tuple[SymbolTree, Publisher, Router, list[GatewayError]]:
    """A symbol tree of its own (no REST, no listing check); ``ended``: what it ended the
    gateway with."""
    config = GatewayConfig(symbols=("BTCUSDT", "ETHUSDT"), url="ws://127.0.0.1:9", rest_url="",
                           check_symbols=False, **options)  # fmt: skip
    publisher, router, ended = Publisher(), Router(), list[GatewayError]()
    hooks = HookRunner(None, publisher, lambda _symbol, _result: None)
    tree = SymbolTree(config, {}, publisher=publisher, router=router, hooks=hooks,
                      backfiller=None, hold_budget=HoldBudget(0), seeded=lambda _name: None,
                      end=ended.append)  # fmt: skip
    return tree, publisher, router, ended


async def test_a_started_symbol_runs_under_its_own_supervisor_and_is_routed_until_stopped(
    autojump_clock: MockClock,
) -> None:
    tree, _publisher, router, _ended = _tree()
    async with trio.open_nursery() as nursery:
        await nursery.start(tree.supervisor.run)
        await tree.start("BTCUSDT")
        state = tree.states["BTCUSDT"]
        await tree.start("BTCUSDT")  # running already: nothing happens
        await trio.testing.wait_all_tasks_blocked()
        assert tree.states == {"BTCUSDT": state} and router.state_of("BTCUSDT") is state
        assert list(tree.supervisor.report()) == ["symbol:BTCUSDT"]  # its own subtree
        report = tree.report("BTCUSDT")
        assert report is not None and report.name == "symbol:BTCUSDT"
        assert (report.status, report.restarts) == (ChildStatus.RUNNING, 0)
        await tree.stop("BTCUSDT")
        assert tree.states == {} and router.state_of("BTCUSDT") is None
        assert tree.report("BTCUSDT") is None and tree.supervisor.report() == {}
        nursery.cancel_scope.cancel()


def test_a_symbol_not_running_has_no_report_and_nothing_to_kill() -> None:
    tree, _publisher, _router, _ended = _tree()
    assert tree.report("BTCUSDT") is None
    assert tree.kill("BTCUSDT", "drill") is False


async def test_a_symbol_its_supervisor_gave_up_on_is_quarantined_alone_and_told(
    autojump_clock: MockClock,
) -> None:
    tree, publisher, _router, ended = _tree()  # on_symbol_failure = "quarantine"
    error = RuntimeError("kept crashing")
    async with trio.open_nursery() as nursery:
        await nursery.start(tree.supervisor.run)
        for symbol in ("BTCUSDT", "ETHUSDT"):
            await tree.start(symbol)
        with publisher.subscribe(kinds=[SymbolQuarantined, GatewayErrorEvent]) as sub:
            tree.failed("ETHUSDT", error)  # what its supervisor calls when it gives up
            told = queued(sub)
        nursery.cancel_scope.cancel()
    assert told == [SymbolQuarantined("ETHUSDT", 0, error),
                    GatewayErrorEvent("symbol", error, "ETHUSDT")]  # fmt: skip
    assert tree.states["ETHUSDT"].quarantined and not tree.states["BTCUSDT"].quarantined
    assert ended == []


async def test_under_raise_a_symbol_its_supervisor_gave_up_on_ends_the_gateway(
    autojump_clock: MockClock,
) -> None:
    tree, publisher, _router, ended = _tree(on_symbol_failure="raise")
    error = RuntimeError("kept crashing")
    async with trio.open_nursery() as nursery:
        await nursery.start(tree.supervisor.run)
        await tree.start("ETHUSDT")
        with publisher.subscribe(kinds=[SymbolQuarantined, GatewayErrorEvent]) as sub:
            tree.failed("ETHUSDT", error)
            told = queued(sub)
        nursery.cancel_scope.cancel()
    (failure,) = ended
    assert isinstance(failure, SymbolFailed) and (failure.symbol, failure.restarts) == (
        "ETHUSDT", 0)  # fmt: skip
    assert failure.__cause__ is error
    assert told == [] and not tree.states["ETHUSDT"].quarantined  # the gateway's end tells


async def test_without_the_listing_check_or_warm_up_candles_rest_is_never_asked() -> None:
    tree, _publisher, _router, _ended = _tree()  # check_symbols False, warmup_candles 0
    await tree.check_listed(["NOPEUSDT"], "symbols")  # not checked: no ConfigError
    await tree.warm_up(["btcusdt@kline_1m"])  # and no REST endpoint to ask anyway
