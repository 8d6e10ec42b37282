"""The specification of gateway/runtime/control_channel.py: one connection's control
frames (SUBSCRIBE chunked and paced, UNSUBSCRIBE, LIST_SUBSCRIPTIONS), replies matched by
id, refused streams dropped alone and asked for again, a 1008 close halving the pace.

The loopback tests run against the embedded exchange (real sockets, MockClock); the
plain-call tests at the end use a `Connection` that never connects.
"""

from __future__ import annotations

import logging
from typing import Any

import pytest
import trio
import trio.testing
from trio.testing import MockClock

from gateway import (
    AggTrade,
    ConnectionLost,
    GapFilled,
    StreamRefused,
    SubscriptionError,
    open_gateway,
)
from gateway.core.backoff import ReconnectPolicy
from gateway.core.frames import ControlError, ControlReply
from gateway.core.ratelimit import RollingWindowLimiter
from gateway.core.streams import chunk_for_control
from gateway.runtime.connection import Connection
from gateway.runtime.control_channel import REFUSED_RETRY, acquire
from gateway.runtime.router import Router
from gateway.simulator import open_simulator
from gateway.stats import RefusedStream
from tests._loopback import drain, exchange_and_gateway, queued
from tests._sessions import SIM, SYMBOLS, exchange, gateway, streams_again

#: Two symbols, for the refused stream of a symbol removed.
TWO = ("BTCUSDT", "ETHUSDT")
TWO_SIM = {**SIM, "symbols": TWO}


# --- SUBSCRIBE paced under the exchange's message rate -------------------------------


async def test_cold_start_with_1000_streams_never_earns_a_too_many_requests_close(
    autojump_clock: MockClock,
) -> None:
    symbols = tuple(f"S{i:03d}USDT" for i in range(250))
    streams = ("trade", "aggTrade", "ticker", "bookTicker")
    async with exchange_and_gateway(
        {"symbols": symbols[:2]}, symbols=symbols, streams=streams, check_symbols=False
    ) as (
        sim,
        gw,
    ):
        stats = sim.control.stats()
        assert sum(len(s) for s in stats.subscriptions.values()) == 1000
        assert 1008 not in stats.closes_by_code and stats.connections_total == 1
        conn = gw._connections[0]
        sent = list(conn.control_sent_at)
        assert len(sent) == conn.control_frames >= 7  # chunked under the 4 KB frame limit
        # The limiter: never more than 4 control frames in any 1-second window...
        for i, t in enumerate(sent):
            assert sum(1 for u in sent[i:] if u - t < 1.0) <= 4
        # ...and no slower than it has to be: the 5th frame goes exactly 1 s after the 1st.
        assert sent[4] - sent[0] == pytest.approx(1.0, abs=1e-6)


async def test_a_1008_close_in_reply_to_subscribe_slows_the_pace_and_reconnects(
    autojump_clock: MockClock,
) -> None:
    errors: list[BaseException] = []
    async with exchange() as sim:
        sim.control.close_on_subscribe(1008, "Too many requests")
        async with gateway(sim, errors) as gw:
            conn = gw._connections[0]
            assert conn.rate_penalties == 1
            assert conn.snapshot().control_pace == "2/1s"  # halved from 4 a second
            await streams_again(sim, gw)
        stats = sim.control.stats()
    assert stats.closes_by_code.get(1008) == 1
    assert stats.connection_attempts == 2  # one retry after backoff, not a storm
    lost = [e for e in errors if isinstance(e, ConnectionLost)]
    assert len(lost) == 1 and lost[0].opened and "1008 Too many requests" in lost[0].reason


async def test_exceeding_the_exchanges_message_rate_slows_down_until_it_is_accepted(
    autojump_clock: MockClock,
) -> None:
    # 900 streams: 6 SUBSCRIBE frames; at 10 a second the exchange (5 a second) closes 1008.
    many = tuple(f"S{i:03d}USDT" for i in range(300))
    errors: list[BaseException] = []
    async with exchange(symbols=many[:3]) as sim:
        async with gateway(
            sim, errors, symbols=many, streams=("trade", "aggTrade", "kline_1m"), control_rate=10
        ) as gw:
            assert len(gw._connections) == 1
            conn = gw._connections[0]
            assert conn.rate_penalties >= 1
            limit, window = conn.control_limiter.limit, conn.control_limiter.window
            assert limit / window <= 5
            # the last session's SUBSCRIBE frames kept to the slower pace
            sent = list(conn.control_sent_at)[-len(chunk_for_control(list(conn.streams))) :]
            assert len(sent) == 6
            assert all(sum(1 for t in sent if s <= t < s + window) <= limit for s in sent)
            await streams_again(sim, gw, many[0])
        stats = sim.control.stats()
    assert stats.connection_attempts == 1 + conn.rate_penalties <= 3
    assert set(stats.closes_by_code) <= {1000, 1008}


async def test_a_close_while_live_subscribes_wait_for_their_turn_is_a_reconnect(
    autojump_clock: MockClock,
) -> None:
    errors: list[BaseException] = []
    async with exchange() as sim, gateway(sim, errors, control_rate=1) as gw:
        async with trio.open_nursery() as nursery:
            for symbol in ("SOLUSDT", "XRPUSDT", "ADAUSDT"):  # paced one a second
                nursery.start_soon(gw.add_symbols, [symbol])
            await trio.sleep(0.5)
            sim.control.close_connections(1011, "internal error")
        with trio.fail_after(60):
            await sim.control.wait_for(lambda st: st.connections_total >= 2)
        for symbol in ("SOLUSDT", "XRPUSDT", "ADAUSDT"):
            await streams_again(sim, gw, symbol)
        await gw.remove_symbols(["XRPUSDT"])
        assert "xrpusdt@trade" not in sim.control.stats().subscriptions[2]
    assert all(isinstance(e, ConnectionLost) for e in errors)


async def test_a_deaf_peer_that_never_replies_to_subscribe_is_replaced(
    autojump_clock: MockClock,
) -> None:
    errors: list[BaseException] = []
    async with exchange() as sim, gateway(sim, errors) as gw:
        sim.control.deafen()
        # a live SUBSCRIBE gets no reply: the session is replaced, the stream kept
        await gw.add_symbols(["SOLUSDT"])
        with trio.fail_after(60):
            await sim.control.wait_for(lambda st: st.connections_total >= 2)
        await streams_again(sim, gw, "SOLUSDT")
    assert any(isinstance(e, ConnectionLost) and "SUBSCRIBE failed" in e.reason for e in errors)


# --- a stream the exchange refuses -----------------------------------------------------


async def test_a_refused_stream_is_reported_and_dropped_and_the_others_stream(
    autojump_clock: MockClock,
) -> None:
    errors: list[BaseException] = []
    async with exchange() as sim:
        sim.control.refuse_streams(["ethusdt@aggTrade"])
        async with gateway(sim, errors, streams=("trade", "aggTrade", "kline_1m")) as gw:
            conn = gw._connections[0]
            assert "ethusdt@aggTrade" not in conn.streams and len(conn.streams) == 8
            assert gw.stats().refused == {
                "ethusdt@aggTrade": RefusedStream(
                    code=2, message="Invalid request: invalid stream", connection="conn-1",
                ),
            }  # fmt: skip
            for symbol in SYMBOLS:
                await streams_again(sim, gw, symbol)
            # a reconnect does not ask for it at once (its own retry timer does)
            sim.control.close_connections(abrupt=True)
            with trio.fail_after(60):
                await sim.control.wait_for(lambda st: st.connections_total >= 2)
            await streams_again(sim, gw)
            assert set(sim.control.stats().subscriptions[2]) == set(conn.streams)
        closes = sim.control.stats().closes_by_code
    assert conn.connects == 2 and set(closes) == {1000, 1006}  # no reconnect for the refusal
    refused = [e for e in errors if isinstance(e, SubscriptionError)]
    assert len(refused) == 1 and refused[0].code == 2 and "ethusdt@aggTrade" in str(refused[0])


async def test_a_refused_stream_is_asked_for_again_and_once_accepted_its_gap_is_filled(
    autojump_clock: MockClock,
) -> None:
    errors: list[BaseException] = []
    async with exchange() as sim, gateway(sim, errors, streams=("aggTrade",)) as gw:
        with (
            gw.subscribe("ETHUSDT", [AggTrade, GapFilled], buffer=1000) as sub,
            gw.subscribe("ETHUSDT", StreamRefused, buffer=10) as refused,
        ):
            sim.control.inject_trade("ETHUSDT", 99.0, 1.0)
            events: list[Any] = await drain(sub, 1)  # flowing: the ids before the refusal
            # At the next session the exchange refuses the stream for a while.
            sim.control.refuse_streams(["ethusdt@aggTrade"])
            sim.control.close_connections(abrupt=True)
            await drain(refused, 1)
            conn = gw._connections[0]
            for _ in range(3):  # refused again at its first retries: logged, not reported
                sim.control.inject_trade("ETHUSDT", 99.0, 1.0)
                await trio.sleep(REFUSED_RETRY.ceiling(0))
            accepted_at = trio.current_time()
            sim.control.accept_streams(["ethusdt@aggTrade"])
            with trio.fail_after(60):
                while not any(isinstance(e, GapFilled) for e in events):
                    sim.control.inject_trade("ETHUSDT", 99.0, 1.0)
                    await trio.sleep(1.0)
                    events.extend(queued(sub))
            back_after = trio.current_time() - accepted_at
            sim.control.inject_trade("ETHUSDT", 99.0, 1.0)  # and live after the gap
            events.extend(await drain(sub, 1))
            assert not queued(refused)  # reported once, however often it was asked again
        assert "ethusdt@aggTrade" in conn.streams and not conn.refused
        assert conn.snapshot().refusal_retries >= 2
    ids = [e.agg_trade_id for e in events if isinstance(e, AggTrade)]
    assert ids == list(range(ids[0], ids[-1] + 1))  # every aggregate trade, once, in order
    assert sum(1 for e in events if isinstance(e, AggTrade) and e.backfilled) >= 3
    assert back_after <= REFUSED_RETRY.ceiling(3) + 2  # the next retry's wait, at most
    refusals = [e for e in errors if isinstance(e, SubscriptionError)]
    assert len(refusals) == 1  # reported once, however often it was asked for again


async def test_too_many_subscriptions_refuses_the_whole_chunk_without_halving(
    autojump_clock: MockClock,
) -> None:
    errors: list[BaseException] = []
    streams = ("trade", "aggTrade", "kline_1m")  # 9 streams; the exchange takes 5
    async with exchange(max_streams_per_connection=5) as sim, gateway(
        sim, errors, streams=streams
    ) as gw:
        conn = gw._connections[0]
        assert conn.streams == {} and len(conn.refused) == 9
        assert {code for code, _ in conn.refused.values()} == {4}
        assert conn.control_frames == 1 and conn.connects == 1  # one SUBSCRIBE, no halving
        await gw.add_symbols(["SOLUSDT"])  # one stream fits: it streams
        await streams_again(sim, gw, "SOLUSDT")
    assert len([e for e in errors if isinstance(e, SubscriptionError)]) == 9


async def test_a_stream_refused_live_reaches_subscribers_as_stream_refused(
    autojump_clock: MockClock,
) -> None:
    errors: list[BaseException] = []
    async with exchange() as sim:
        sim.control.refuse_streams(["solusdt@trade"], code=2, message="Invalid symbol")
        async with gateway(sim, errors) as gw:
            with gw.subscribe(None, StreamRefused) as sub:
                await gw.add_symbols(["SOLUSDT", "XRPUSDT"])
                with trio.fail_after(30):
                    event = await sub.receive()
            assert event == StreamRefused("SOLUSDT", "solusdt@trade", 2, "Invalid symbol", "conn-1")
            await streams_again(sim, gw, "XRPUSDT")
            assert "solusdt@trade" not in gw._connections[0].streams


async def test_a_refused_stream_of_a_removed_symbol_is_never_asked_for_again(
    autojump_clock: MockClock,
) -> None:
    errors: list[Any] = []
    async with open_simulator(**TWO_SIM) as sim, open_gateway(
        url=sim.ws_url, rest_url=sim.rest_url, on_error=errors.append, symbols=TWO,
        streams=("aggTrade",), check_symbols=False,
    ) as gw:  # fmt: skip
        with gw.subscribe("ETHUSDT", StreamRefused, buffer=10) as refused:
            with gw.subscribe("ETHUSDT", AggTrade, buffer=10) as sub:
                sim.control.inject_trade("ETHUSDT", 99.0, 1.0)
                await drain(sub, 1)
            sim.control.refuse_streams(["ethusdt@aggTrade"])
            sim.control.close_connections(abrupt=True)
            await drain(refused, 1)
        conn = gw._connections[0]
        await gw.remove_symbols(["ETHUSDT"])
        sim.control.accept_streams(["ethusdt@aggTrade"])
        await trio.sleep(REFUSED_RETRY.ceiling(2) + 5)
        assert "ethusdt@aggTrade" not in conn.streams
        assert "ethusdt@aggTrade" not in conn.refused
        assert conn.snapshot().refusal_retries == 0


# --- LIST_SUBSCRIPTIONS ------------------------------------------------------------------


async def test_list_subscriptions_asks_the_exchange_what_this_connection_carries(
    autojump_clock: MockClock,
) -> None:
    errors: list[BaseException] = []
    async with exchange() as sim, gateway(sim, errors, streams=("trade", "aggTrade")) as gw:
        conn = gw._connections[0]
        listed = await conn.list_subscriptions()
        assert sim.control.forget_stream("btcusdt@trade") == 1
        after = await conn.list_subscriptions()  # the exchange's word, not our own list
    assert sorted(listed) == sorted(conn.streams) and len(listed) == 6
    assert sorted(after) == sorted(set(listed) - {"btcusdt@trade"})
    assert "btcusdt@trade" in conn.streams
    assert errors == []


# --- plain calls on a connection that never connects ---------------------------------


def _connection(streams: tuple[str, ...] = (), **options: Any) -> Connection:
    """A connection that is never run: its control channel has no session."""
    return Connection("conn-1", "ws://127.0.0.1:9", list(streams), Router(),
                      policy=ReconnectPolicy(), connect_limiter=RollingWindowLimiter(1, 1.0),
                      **options)  # fmt: skip


async def test_a_request_with_no_live_session_fails_at_once_with_no_code() -> None:
    conn = _connection(("btcusdt@trade",))
    with pytest.raises(SubscriptionError) as info:
        await conn.list_subscriptions()
    assert (info.value.code, info.value.message) == (None, "not connected")
    assert conn.control_frames == 0


async def test_with_no_session_subscribe_and_unsubscribe_only_change_what_is_asked_for_later(
) -> None:
    conn = _connection(("btcusdt@trade",))
    conn.refused["ethusdt@trade"] = (2, "Invalid symbol")
    conn._refused_retry["ethusdt@trade"] = (1, 5.0)
    await conn.subscribe(["ethusdt@trade", "btcusdt@trade"])  # wanted again: no refusal kept
    assert list(conn.streams) == ["btcusdt@trade", "ethusdt@trade"]
    assert conn.refused == {} and conn._refused_retry == {}
    conn.refused["bnbusdt@trade"] = (2, "Invalid symbol")
    conn._refused_retry["bnbusdt@trade"] = (1, 5.0)
    await conn.unsubscribe(["btcusdt@trade", "bnbusdt@trade"])  # a refused one is never retried
    assert list(conn.streams) == ["ethusdt@trade"]
    assert conn.refused == {} and conn._refused_retry == {}
    assert conn.control_frames == 0  # nothing was sent: there is no session


def test_each_1008_halves_the_pace_then_widens_its_window_up_to_eight_seconds() -> None:
    conn = _connection(control_rate=4)
    paces = []
    for _ in range(6):
        conn._control.slow_down("closed by the exchange: 1008 Too many requests")
        paces.append(conn.snapshot().control_pace)
    assert paces == ["2/1s", "1/1s", "1/2s", "1/4s", "1/8s", "1/8s"]
    assert conn.rate_penalties == 6


def test_an_unsolicited_error_reply_is_logged_and_an_unsolicited_result_ignored(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING, "gateway.runtime.connection")
    conn = _connection()
    conn.on_control(ControlReply(7, None))  # no request 7 is pending
    conn.on_control(ControlError(8, 2, "Invalid request"))
    warned = [r.getMessage() for r in caplog.records]
    assert len(warned) == 1 and "[conn-1] unsolicited error from exchange" in warned[0]
    assert "Invalid request" in warned[0]
    assert conn.control_replies == 2  # neither is proof of life for a stream


async def test_acquire_takes_a_free_slot_at_once_else_waits_for_the_pace_in_force(
    autojump_clock: MockClock,
) -> None:
    pace = [RollingWindowLimiter(1, 10.0)]
    start = trio.current_time()
    await acquire(lambda: pace[0])  # a free slot: taken at once
    assert trio.current_time() == start
    took: list[float] = []

    async def second() -> None:
        await acquire(lambda: pace[0])
        took.append(trio.current_time() - start)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(second)
        await trio.testing.wait_all_tasks_blocked()  # waiting for the slot at 10 s
        slower = RollingWindowLimiter(1, 60.0)
        assert slower.try_acquire(trio.current_time())
        pace[0] = slower  # a 1008 replaced the pace meanwhile; its one slot is taken
    assert took == [60.0]  # woken at 10 s, it read the pace again and waited for it
