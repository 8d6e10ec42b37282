"""Protocol conformance over real loopback sockets: every stream decodes with the codec,
control replies have the documented shapes, raw/combined and microsecond modes work."""

from __future__ import annotations

from collections import defaultdict

import orjson
import pytest
import trio
import trio.testing

from gateway.core.codec import ControlEncoder, decode_frame
from gateway.core.events import (
    AggTrade,
    AvgPrice,
    BookTicker,
    DepthUpdate,
    Kline,
    MiniTicker,
    PartialDepth,
    ReferencePrice,
    RollingTicker,
    Ticker,
    Trade,
)
from gateway.core.frames import ControlError, ControlReply, EventArray
from gateway.simulator import SimulatorConfig, open_simulator
from tests._simclient import bounded, ws_client

EXPECTED = {
    "btcusdt@trade": Trade, "btcusdt@aggTrade": AggTrade, "btcusdt@bookTicker": BookTicker,
    "btcusdt@depth": DepthUpdate, "btcusdt@depth@100ms": DepthUpdate,
    "btcusdt@depth5": PartialDepth, "btcusdt@depth10@100ms": PartialDepth,
    "btcusdt@depth20": PartialDepth, "btcusdt@kline_1s": Kline, "btcusdt@kline_1m": Kline,
    "btcusdt@kline_1d@+08:00": Kline, "btcusdt@kline_1M": Kline, "btcusdt@ticker": Ticker,
    "btcusdt@miniTicker": MiniTicker, "btcusdt@ticker_1h": RollingTicker,
    "btcusdt@ticker_4h": RollingTicker, "btcusdt@ticker_1d": RollingTicker,
    "btcusdt@avgPrice": AvgPrice, "btcusdt@referencePrice": ReferencePrice,
    "!miniTicker@arr": EventArray, "!ticker_1h@arr": EventArray,
}  # fmt: skip


def config(**options: object) -> SimulatorConfig:
    base: dict[str, object] = {"symbols": ("BTCUSDT", "ETHUSDT"), "seed": 3, "rate": 200.0,
                               "clock": "virtual", "rest": False}  # fmt: skip
    return SimulatorConfig.from_kwargs(**{**base, **options})


@bounded()
async def test_every_stream_kind_decodes_to_its_event_type(autojump_clock: object) -> None:
    async with open_simulator(config()) as sim, ws_client(sim.stream_url(EXPECTED)) as ws:
        seen: dict[str, set[type]] = defaultdict(set)
        with trio.move_on_after(4.5):
            while len(seen) < len(EXPECTED) or trio.current_time() < 2.5:
                frame = await ws.get_message()
                stream = orjson.loads(frame)["stream"]
                seen[stream].add(type(decode_frame(frame)))
        assert {s: {t} for s, t in EXPECTED.items()} == dict(seen)


@bounded()
async def test_raw_endpoint_and_microseconds(autojump_clock: object) -> None:
    async with open_simulator(config()) as sim:
        async with ws_client(f"{sim.ws_url}/ws/btcusdt@trade?timeUnit=MICROSECOND") as ws:
            frame = orjson.loads(await ws.get_message())
            assert frame["e"] == "trade" and len(str(frame["E"])) == 16
            assert isinstance(decode_frame(await ws.get_message()), Trade)
        async with ws_client(f"{sim.ws_url}/ws/btcusdt@kline_1s") as ws:
            k = orjson.loads(await ws.get_message())["k"]
            assert len(str(k["t"])) == 13 and k["T"] % 1000 == 999 and k["x"] is True


@bounded()
async def test_live_subscription_control(autojump_clock: object) -> None:
    enc = ControlEncoder()
    async with open_simulator(config()) as sim, ws_client(f"{sim.ws_url}/ws") as ws:

        async def reply() -> object:
            while True:
                ev = decode_frame(await ws.get_message())
                if isinstance(ev, ControlReply | ControlError):
                    return ev

        rid, text = enc.subscribe(["btcusdt@trade", "ethusdt@aggTrade"])
        await ws.send_message(text)
        assert await reply() == ControlReply(rid, None)
        rid, text = enc.list_subscriptions()
        await ws.send_message(text)
        assert await reply() == ControlReply(rid, ["btcusdt@trade", "ethusdt@aggTrade"])
        rid, text = enc.get_property("combined")
        await ws.send_message(text)
        assert await reply() == ControlReply(rid, False)
        await trio.sleep(1.1)  # stay under 5 messages a second
        first = orjson.loads(await ws.get_message())
        assert "e" in first and "stream" not in first  # raw: no wrapper
        rid, text = enc.set_property("combined", True)
        await ws.send_message(text)
        assert await reply() == ControlReply(rid, None)
        wrapped = orjson.loads(await ws.get_message())
        assert set(wrapped) == {"stream", "data"}
        rid, text = enc.unsubscribe(["btcusdt@trade", "ethusdt@aggTrade"])
        await ws.send_message(text)
        assert await reply() == ControlReply(rid, None)
        await ws.send_message('{"method":"SUBSCRIBE","params":["btcusdt@nope"],"id":9}')
        raw = await ws.get_message()
        while '"id"' not in raw:
            raw = await ws.get_message()
        assert orjson.loads(raw) == {"error": {"code": 2, "msg": "Invalid request: invalid stream"},
                                     "id": 9}  # fmt: skip
        stats = sim.control.stats()
        assert stats.subscriptions == {1: ()} and stats.connections_open == 1


@bounded()
async def test_any_valid_symbol_trades_and_exchange_lists_configured(
    autojump_clock: object,
) -> None:
    async with open_simulator(config()) as sim, ws_client(sim.stream_url(["xyzusdt@trade"])) as ws:
        assert decode_frame(await ws.get_message()).symbol == "XYZUSDT"  # type: ignore[union-attr]
        assert sim.market.listed == ("BTCUSDT", "ETHUSDT")


@pytest.mark.parametrize("pacing", ["max", "rate"])
@bounded()
async def test_trade_ids_are_contiguous_per_symbol(pacing: str) -> None:
    with trio.fail_after(10):
        async with open_simulator(config(pacing=pacing, clock="wall", rate=5000.0)) as sim:
            url = sim.stream_url(["btcusdt@trade", "ethusdt@trade"])
            async with ws_client(url, message_queue_size=64) as ws:
                last: dict[str, int] = {}
                for _ in range(2000):
                    ev = decode_frame(await ws.get_message())
                    assert isinstance(ev, Trade)
                    if ev.symbol in last:
                        assert ev.trade_id == last[ev.symbol] + 1
                    last[ev.symbol] = ev.trade_id


@bounded()
async def test_same_seed_gives_byte_identical_frames_over_the_wire(autojump_clock: object) -> None:
    streams = ["btcusdt@trade", "btcusdt@aggTrade", "btcusdt@bookTicker", "btcusdt@depth@100ms",
               "btcusdt@kline_1s", "ethusdt@trade"]  # fmt: skip
    runs = []
    for _ in range(2):
        sim_cm = open_simulator(config(pacing="manual"))
        async with sim_cm as sim, ws_client(sim.stream_url(streams)) as ws:
            await sim.control.wait_for(lambda s: s.connections_open == 1)
            frames = []
            for _ in range(5):
                sim.control.generate(40)
                await trio.sleep(0.5)
                sim.control.tick()
            sim.control.send_raw("end")
            while (text := await ws.get_message()) != "end":
                frames.append(text)
        runs.append(frames)
    assert len(runs[0]) > 250 and runs[0] == runs[1]  # virtual clock: even the times match
