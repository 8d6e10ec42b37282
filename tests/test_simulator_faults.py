"""Every fault fires as described, and one misbehaving client never hurts another."""

from __future__ import annotations

import httpx
import orjson
import pytest
import trio
from trio_websocket import ConnectionClosed, ConnectionRejected

from gateway.core.codec import decode_frame
from gateway.core.events import AggTrade, Trade
from gateway.core.frames import UnknownEvent
from gateway.errors import DecodeError
from gateway.simulator import SimulatorConfig, open_simulator
from tests._simclient import bounded, raw_client, ws_client


def config(**options: object) -> SimulatorConfig:
    base: dict[str, object] = {"symbols": ("BTCUSDT",), "pacing": "manual", "clock": "virtual",
                               "rest": False, "seed": 5}  # fmt: skip
    return SimulatorConfig.from_kwargs(**{**base, **options})


async def trades(ws: object, n: int) -> list[Trade]:
    out = []
    while len(out) < n:
        ev = decode_frame(await ws.get_message())  # type: ignore[attr-defined]
        if isinstance(ev, Trade):
            out.append(ev)
    return out


@bounded()
@pytest.mark.parametrize(("code", "abrupt", "seen"), [(4000, False, 4000), (1000, True, 1006)])
async def test_close_with_code_or_abruptly(
    autojump_clock: object, code: int, abrupt: bool, seen: int
) -> None:
    async with open_simulator(config()) as sim, ws_client(f"{sim.ws_url}/ws") as ws:
        await sim.control.wait_for(lambda s: s.connections_open == 1)
        assert sim.control.close_connections(code, "maintenance", abrupt=abrupt) == 1
        with pytest.raises(ConnectionClosed) as info:
            await ws.get_message()
        assert info.value.reason.code == seen
        stats = await sim.control.wait_for(lambda s: s.connections_open == 0)
        assert stats.closes_by_code == {seen: 1}


@bounded()
async def test_malformed_unknown_and_raw_frames(autojump_clock: object) -> None:
    async with open_simulator(config()) as sim, ws_client(sim.stream_url(["btcusdt@trade"])) as ws:
        await sim.control.wait_for(lambda s: s.connections_open == 1)
        sim.control.send_malformed()
        with pytest.raises(DecodeError):
            decode_frame(await ws.get_message())
        sim.control.send_unknown_event()
        ev = decode_frame(await ws.get_message())
        assert isinstance(ev, UnknownEvent) and ev.symbol == "BTCUSDT"
        sim.control.send_raw('{"hello":"world"}')
        assert await ws.get_message() == '{"hello":"world"}'


@bounded()
async def test_stall_drops_frames_but_keeps_the_socket(autojump_clock: object) -> None:
    async with open_simulator(config()) as sim, ws_client(sim.stream_url(["btcusdt@trade"])) as ws:
        await sim.control.wait_for(lambda s: s.connections_open == 1)
        sim.control.stall(10)
        sim.control.generate(5)
        with trio.move_on_after(5) as idle:
            await ws.get_message()
        assert idle.cancelled_caught and sim.control.stats().frames_dropped >= 5
        await trio.sleep(5)
        sim.control.generate(1)
        assert isinstance(decode_frame(await ws.get_message()), Trade)


@bounded()
async def test_drop_trades_makes_a_gap_that_rest_can_fill(autojump_clock: object) -> None:
    cfg = config(rest=True)
    url_streams = ["btcusdt@trade", "btcusdt@aggTrade"]
    async with open_simulator(cfg) as sim, ws_client(sim.stream_url(url_streams)) as ws:
        await sim.control.wait_for(lambda s: s.connections_open == 1)
        sim.control.generate(3)
        gap = sim.control.drop_trades("BTCUSDT", 4)
        sim.control.generate(12)
        ids, aggs = [], []
        while not ids or ids[-1] < gap.stop + 2:
            ev = decode_frame(await ws.get_message())
            if isinstance(ev, Trade):
                ids.append(ev.trade_id)
            elif isinstance(ev, AggTrade):
                aggs.append(ev)
        assert not set(gap) & set(ids)
        assert ids[ids.index(gap.start - 1) + 1] == gap.stop
        first_missing = min(a.agg_trade_id for a in aggs if a.first_trade_id >= gap.start) - 1
        async with httpx.AsyncClient(base_url=str(sim.rest_url)) as http:
            r = await http.get("/api/v3/aggTrades", params={"symbol": "BTCUSDT",
                                                             "fromId": first_missing})  # fmt: skip
        rows = r.json()
        assert rows[0]["a"] == first_missing and rows[0]["l"] >= gap.start


@bounded()
async def test_duplicate_and_delay(autojump_clock: object) -> None:
    async with open_simulator(config()) as sim, ws_client(sim.stream_url(["btcusdt@trade"])) as ws:
        await sim.control.wait_for(lambda s: s.connections_open == 1)
        sim.control.duplicate_frames(1)
        sim.control.generate(1)
        first, second = await ws.get_message(), await ws.get_message()
        assert first == second
        sim.control.delay_frames(3)
        start = trio.current_time()
        sim.control.generate(1)
        await ws.get_message()
        assert trio.current_time() - start == pytest.approx(3)


@bounded()
async def test_refuse_connections_for_a_while(autojump_clock: object) -> None:
    async with open_simulator(config()) as sim:
        sim.control.refuse_connections(10)
        with pytest.raises(ConnectionRejected) as info:
            async with ws_client(f"{sim.ws_url}/ws"):
                pass
        assert info.value.status_code == 503
        await trio.sleep(10)
        async with ws_client(f"{sim.ws_url}/ws"):
            pass


@bounded(300)
async def test_inject_trade_reaches_trade_and_kline_streams(autojump_clock: object) -> None:
    streams = ["btcusdt@trade", "btcusdt@kline_1m"]
    async with open_simulator(config()) as sim, ws_client(sim.stream_url(streams)) as ws:
        await sim.control.wait_for(lambda s: s.connections_open == 1)
        tid = sim.control.inject_trade("BTCUSDT", 95.5, 2.0)
        frame = orjson.loads(await ws.get_message())["data"]
        assert (frame["t"], frame["p"], frame["q"]) == (tid, "95.50000000", "2.00000000")
        await trio.sleep(61)
        sim.control.tick()
        kline = decode_frame(await ws.get_message())
        assert kline.is_closed and kline.low == 95.5  # type: ignore[union-attr]


@bounded(600)
async def test_misbehaving_clients_do_not_disturb_a_good_one(autojump_clock: object) -> None:
    cfg = config(max_message_size=10_000, client_buffer_frames=500)
    async with open_simulator(cfg) as sim, ws_client(sim.stream_url(["btcusdt@trade"])) as good:
        # garbage instead of a handshake
        async with await trio.open_tcp_stream("127.0.0.1", sim.port) as junk:
            await junk.send_all(b"\x16\x03\x01 definitely not HTTP\r\n\r\n")
            assert b"400" in await junk.receive_some(1000)
        # a flood, a huge frame, and a client that never reads
        async with ws_client(f"{sim.ws_url}/ws") as flood:
            for i in range(50):
                await flood.send_message(f'{{"method":"LIST_SUBSCRIPTIONS","id":{i}}}')
            with pytest.raises(ConnectionClosed):
                while True:
                    await flood.get_message()
        async with ws_client(f"{sim.ws_url}/ws") as huge:
            await huge.send_message("[" + "1," * 20_000 + "1]")
            with pytest.raises(ConnectionClosed) as info:
                await huge.get_message()
            assert info.value.reason.code == 1009
        async with raw_client(sim.stream_url(["btcusdt@trade", "btcusdt@depth20@100ms"])):
            last = None
            for _ in range(1000):  # until the reader that never reads is dropped
                sim.control.generate(50)
                await trio.sleep(0.1)
                sim.control.tick()
                for t in await trades(good, 50):
                    assert last is None or t.trade_id == last + 1
                    last = t.trade_id
                if sim.control.stats().closes_by_code.get(1008, 0) >= 2:
                    break
        stats = await sim.control.wait_for(lambda s: s.connections_open == 1)
        assert stats.closes_by_code.get(1008, 0) >= 2  # the flood and the reader that never read
