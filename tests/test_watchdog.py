"""The specification of gateway/runtime/watchdog.py: a live session checked from the
side, never per frame: silence (ping after half ``silence_timeout``, reconnect if neither
a frame nor the pong came; the wait for a control slot is not silence) and proof of life
per stream (a zombie replaced make-before-break, a stream silent alone asked about with
LIST_SUBSCRIPTIONS and subscribed again only if the exchange forgot it).

Real sockets on loopback, MockClock. In the proof-of-life tests the market is driven by
a task that trades (or only ticks) every 0.1 virtual seconds, the only sleeps there.
Defaults: ``stream_silence_factor`` 5 (klines push every 2 s: silent after 10 s),
``trade_silence_floor`` 10 s. The rotation before ``max_age`` is in test_rotation.py, the
refused streams it asks for again in test_control_channel.py.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import Any

import pytest
import trio
from trio.testing import MockClock

from gateway import (
    ConnectionLost,
    Gateway,
    Kline,
    Trade,
    open_gateway,
)
from gateway.simulator import Simulator, open_simulator
from tests._sessions import exchange, gateway, streams_again
from tests._simclient import bounded

SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT")
SIM = {"symbols": SYMBOLS, "seed": 12, "clock": "virtual", "pacing": "manual"}
STREAMS = ("trade", "kline_1m")
#: From the fault to data flowing again: a 10 s deadline, a 1 s check period, then a new
#: connection opened and subscribed (one SUBSCRIBE frame) while the old one still stands.
REPLACED_WITHIN = 15.0


async def drive(sim: Simulator, trades_until: float = math.inf) -> None:
    """The market: 3 trades (one per symbol) every 0.1 s until ``trades_until``, then only
    the time-driven pushes (klines every 2 s)."""
    while True:
        if trio.current_time() < trades_until:
            sim.control.generate(3)
        else:
            sim.control.tick()
        await trio.sleep(0.1)


@asynccontextmanager
async def running(
    errors: list[BaseException], trades_until: float = math.inf,
    streams: tuple[str, ...] = STREAMS, sim: Simulator | None = None, **options: Any,
) -> AsyncIterator[tuple[Simulator, Gateway]]:
    given: AbstractAsyncContextManager[Simulator] = (
        open_simulator(**SIM) if sim is None else nullcontext(sim)
    )
    async with given as sim, trio.open_nursery() as nursery:
        nursery.start_soon(drive, sim, trio.current_time() + trades_until)
        async with open_gateway(
            url=sim.ws_url, rest_url=sim.rest_url, on_error=errors.append, symbols=SYMBOLS,
            streams=streams, **options,
        ) as gw:  # fmt: skip
            yield sim, gw
        nursery.cancel_scope.cancel()


# --- silence: ping, then reconnect ------------------------------------------------


async def test_a_silent_peer_that_answers_no_ping_is_replaced_after_the_silence_timeout(
    autojump_clock: MockClock,
) -> None:
    errors: list[BaseException] = []
    async with exchange() as sim, gateway(sim, errors, silence_timeout=6.0) as gw:
        sim.control.deafen()  # no market frames flow (manual pacing) and no pong comes
        went_deaf = trio.current_time()
        with trio.fail_after(60):
            await sim.control.wait_for(lambda st: st.connections_total >= 2)
        # silent for a whole timeout (checked every half): then the close, bounded at 1 s
        # against a deaf peer, and the first backoff (at most 0.5 s)
        assert 6.0 <= trio.current_time() - went_deaf <= 1.5 * 6.0 + 1.0 + 0.5
        await streams_again(sim, gw)
    [lost] = errors
    assert isinstance(lost, ConnectionLost) and lost.reason == "silent for 6.0 s"


async def test_a_ping_waiting_for_a_slowed_control_pace_is_not_silence(
    autojump_clock: MockClock,
) -> None:
    # Three 1008 penalties: one control frame per 8 s. A quiet market (trades only, none
    # traded) sends no frame, so the watchdog pings every 3 s (silence_timeout 6): each
    # ping waits up to 8 s for its slot, longer than the 3 s a pong is waited for.
    errors: list[BaseException] = []
    async with exchange() as sim:
        sim.control.close_on_subscribe(1008, "Too many requests", count=3)
        async with gateway(
            sim, errors, streams=("trade",), control_rate=1, silence_timeout=6.0
        ) as gw:
            conn = gw._connections[0]
            assert conn.snapshot().control_pace == "1/8s" and conn.reconnects == 3
            await trio.sleep(60)  # about 7 pings, every one answered after its turn
            snap = conn.snapshot()
            await streams_again(sim, gw)
        stats = sim.control.stats()
    lost = [e for e in errors if isinstance(e, ConnectionLost)]
    assert [e.reason for e in lost] == ["closed by the exchange: 1008 Too many requests"] * 3
    assert snap.reconnects == 3 and snap.state == "live"  # no "silent for 6.0 s"
    assert stats.connections_total == 4


# --- a zombie: no market frame while pings are answered ---------------------------


async def test_a_zombie_connection_is_replaced_make_before_break(
    autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    errors: list[BaseException] = []
    caplog.set_level(logging.WARNING, "gateway.runtime.connection")
    async with running(errors) as (sim, gw):
        await trio.sleep(5)  # market time: every trade stream armed (30+ trades each)
        assert sim.control.zombie() == 1  # pings and requests answered, no market frame
        fault = trio.current_time()
        with gw.subscribe("ETHUSDT", Trade, buffer=100) as sub:
            with trio.fail_after(REPLACED_WITHIN):
                await sub.receive()
        elapsed = trio.current_time() - fault
        conn = gw._connections[0]
        snap = conn.snapshot()
        stats = sim.control.stats()
    assert 10.0 <= elapsed <= REPLACED_WITHIN
    assert len(gw._connections) == 1 and conn.conn_id == "conn-1"
    assert snap.zombie_replacements == 1 and snap.reconnects == 0
    assert stats.connections_total == 2
    assert not [e for e in errors if isinstance(e, ConnectionLost)]  # no break before make
    zombie_logs = [r for r in caplog.records if "zombie" in r.getMessage()]
    assert len(zombie_logs) == 1  # once, with the silence measured
    assert re.search(r"for 1\d\.\d s", zombie_logs[0].getMessage())


async def test_a_zombie_waiting_its_turn_to_ping_is_replaced_not_taken_for_a_dead_peer(
    autojump_clock: MockClock,
) -> None:
    # Three 1008 penalties slow the control pace to one frame per 8 s. A SUBSCRIBE sent
    # just before the zombie verdict takes that slot, so the verdict's ping waits 5.5-7.5 s
    # for its turn: longer than the 5 s a pong is waited for, though pongs come.
    errors: list[BaseException] = []
    async with open_simulator(**SIM) as sim:
        sim.control.close_on_subscribe(1008, "Too many requests", count=3)
        # Trades only: no kline stream goes overdue (and asks) a check before the verdict.
        async with running(errors, streams=("trade",), sim=sim, control_rate=1) as (_, gw):
            conn = gw._connections[0]
            assert conn.snapshot().control_pace == "1/8s" and conn.reconnects == 3
            await trio.sleep(5)  # every trade stream armed
            assert sim.control.zombie() == 1
            fault = trio.current_time()
            # The verdict comes 9-11 s after the fault (10 s of silence, counted from the
            # last check that saw a frame, at most 1 s before the fault; checks every 1 s).
            await trio.sleep(8.5)
            await gw.add_streams(["btcusdt@aggTrade"])  # the pace's one slot, for 8 s
            assert trio.current_time() - fault < 9.0
            with gw.subscribe("ETHUSDT", Trade, buffer=100) as sub:
                with trio.fail_after(30):
                    await sub.receive()
            elapsed = trio.current_time() - fault
            snap = conn.snapshot()
        stats = sim.control.stats()
    lost = [e for e in errors if isinstance(e, ConnectionLost)]
    assert [e.reason for e in lost] == ["closed by the exchange: 1008 Too many requests"] * 3
    assert snap.zombie_replacements == 1 and snap.reconnects == 3  # not a dead peer
    assert stats.connections_total == 5  # 3 penalised, the zombie, its replacement
    # the ping goes out when its turn comes (16.5 s after the fault), then make-before-break
    assert 16.5 <= elapsed <= 17.5


async def test_silence_without_pongs_is_a_dead_peer_reconnected_at_once(
    autojump_clock: MockClock,
) -> None:
    errors: list[BaseException] = []
    async with running(errors) as (sim, gw):
        await trio.sleep(5)
        assert sim.control.zombie() == sim.control.deafen() == 1  # no data, no pong
        fault = trio.current_time()
        with gw.subscribe("ETHUSDT", Trade, buffer=100) as sub:
            with trio.fail_after(30):
                await sub.receive()
        elapsed = trio.current_time() - fault
        snap = gw._connections[0].snapshot()
    # 10 s deadline + 1 s check + 5 s waiting for the pong + <= 1 s closing a deaf socket +
    # the first backoff (<= 0.5 s) + connect: sooner than the ping watchdog (30 s) alone
    assert 15.0 <= elapsed <= 18.0
    assert snap.zombie_replacements == 0 and snap.reconnects == 1
    lost = [e for e in errors if isinstance(e, ConnectionLost)]
    assert len(lost) == 1 and "no pong" in lost[0].reason


# --- a zombie that still forwards a trickle of non-market frames (the chaos soak) -


@asynccontextmanager
async def zombie_after_armed() -> AsyncIterator[tuple[Simulator, Gateway]]:
    """A flowing exchange and gateway; after 10 s of market time (both trade streams
    armed) the exchange goes zombie on the gateway's connection."""
    async with open_simulator(symbols=("BTCUSDT", "ETHUSDT"), clock="virtual",
                              rate=200.0) as sim, open_gateway(
        url=sim.ws_url, rest_url=sim.rest_url, symbols=["BTCUSDT", "ETHUSDT"],
        streams=("trade", "aggTrade"), silence_timeout=5.0, trade_silence_floor=5.0,
    ) as gw:  # fmt: skip
        await trio.sleep(10)  # market time passing, under the MockClock
        sim.control.zombie()
        yield sim, gw


@bounded(200)
async def test_a_zombie_with_a_trickle_of_unknown_events_is_replaced(
    autojump_clock: object,
) -> None:
    async with zombie_after_armed() as (sim, gw):
        with gw.subscribe("BTCUSDT", Trade, buffer=100) as sub:
            with trio.move_on_after(60) as scope:
                for _ in range(20):  # the trickle: one unknown event every 3 s
                    sim.control.send_unknown_event("BTCUSDT")
                    with trio.move_on_after(3):
                        await sub.receive()
                        break
        assert not scope.cancelled_caught, "no live trade within 60 s of the zombie"
        assert gw._connections[0].snapshot().zombie_replacements == 1


@bounded(200)
async def test_a_zombie_without_a_trickle_is_replaced_within_seconds(
    autojump_clock: object,
) -> None:
    """The control case of the finding above: the same zombie, no trickle."""
    async with zombie_after_armed() as (_sim, gw):
        t0 = trio.current_time()
        with gw.subscribe("BTCUSDT", Trade, buffer=100) as sub, trio.fail_after(30):
            await sub.receive()
        assert trio.current_time() - t0 < 30
        assert gw._connections[0].snapshot().zombie_replacements == 1


# --- one stream silent while the others flow --------------------------------------


async def test_a_forgotten_stream_is_resubscribed_alone(autojump_clock: MockClock) -> None:
    errors: list[BaseException] = []
    async with running(errors) as (sim, gw):
        with gw.subscribe("ETHUSDT", Trade, buffer=10_000) as eth:
            await trio.sleep(5)
            assert sim.control.forget_stream("btcusdt@kline_1m") == 1
            fault = trio.current_time()
            with gw.subscribe("BTCUSDT", Kline, buffer=100) as klines:
                with trio.fail_after(REPLACED_WITHIN):
                    await klines.receive()
            elapsed = trio.current_time() - fault
            ids = [t.trade_id for t in eth.drain_nowait(100_000)]
        conn = gw._connections[0]
        snap = conn.snapshot()
        stats = sim.control.stats()
        gaps = {s: gw._state(s).machine.gaps for s in SYMBOLS}
    assert 10.0 <= elapsed <= REPLACED_WITHIN
    assert snap.stream_resubscribes == 1 and snap.stream_checks == 1
    assert snap.zombie_replacements == 0 and snap.reconnects == 0
    assert stats.connections_total == 1
    assert len(ids) > 100 and ids == list(range(ids[0], ids[0] + len(ids)))
    assert gaps == dict.fromkeys(SYMBOLS, 0)
    assert not errors


async def test_a_forgotten_kline_interval_beside_a_flowing_one_is_resubscribed_alone(
    autojump_clock: MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    # kline_1m and kline_5m of one symbol: the 1m stream keeps flowing while the exchange
    # forgets the 5m one, which must still be found silent (it is judged alone).
    errors: list[BaseException] = []
    caplog.set_level(logging.WARNING, "gateway.runtime.connection")
    async with running(errors, streams=("trade", "kline_1m", "kline_5m")) as (sim, gw):
        await trio.sleep(5)
        assert sim.control.forget_stream("btcusdt@kline_5m") == 1
        fault = trio.current_time()
        intervals: list[str] = []
        with gw.subscribe("BTCUSDT", Kline, buffer=1000) as klines:
            with trio.fail_after(REPLACED_WITHIN):
                for _ in range(1000):  # about 8 kline_1m pushes come before the 5m one
                    intervals.append((await klines.receive()).interval)
                    if intervals[-1] == "5m":
                        break
        elapsed = trio.current_time() - fault
        snap = gw._connections[0].snapshot()
        stats = sim.control.stats()
    assert 10.0 <= elapsed <= REPLACED_WITHIN
    assert intervals.count("1m") >= 4  # the 1m stream flowed all along (every 2 s)
    assert snap.stream_resubscribes == 1 and snap.stream_checks == 1
    assert snap.zombie_replacements == 0 and snap.reconnects == 0
    assert stats.connections_total == 1
    assert {"btcusdt@kline_1m", "btcusdt@kline_5m"} <= set(stats.subscriptions[1])
    resubscribed = [r.getMessage() for r in caplog.records if "subscribing again" in r.getMessage()]
    assert len(resubscribed) == 1 and "btcusdt@kline_5m" in resubscribed[0]
    assert "kline_1m" not in resubscribed[0]  # only the silent interval was sent again
    assert not errors


async def test_a_quiet_market_causes_no_replacement_and_no_resubscribe(
    autojump_clock: MockClock,
) -> None:
    errors: list[BaseException] = []
    async with running(errors, trades_until=5.0) as (sim, gw):
        with gw.subscribe("BTCUSDT", Kline, buffer=1000) as klines:
            await trio.sleep(120)  # trades stopped abruptly at 5 s; klines still every 2 s
            pushed = len(klines.drain_nowait(100_000))
        snap = gw._connections[0].snapshot()
        stats = sim.control.stats()
    assert pushed >= 55
    assert snap.zombie_replacements == 0 and snap.stream_resubscribes == 0
    # the trade streams had activity that stopped: asked about once, then left alone
    assert 1 <= snap.stream_checks <= 3
    assert snap.reconnects == 0 and stats.connections_total == 1
    assert not errors
