"""The router's frame tap: every raw frame, with its receive time, before decoding."""

from __future__ import annotations

import orjson
import trio
import trio.testing
from trio.testing import MockClock

from gateway import Trade, open_gateway
from gateway.simulator import open_simulator


async def test_tap_sees_every_frame_in_order_with_the_events_receive_time(
    autojump_clock: MockClock,
) -> None:
    tapped: list[tuple[str | bytes, int]] = []
    options = {"symbols": ("BTCUSDT", "ETHUSDT"), "seed": 3, "clock": "virtual", "pacing": "manual"}
    async with open_simulator(**options) as sim, open_gateway(
        url=sim.ws_url, symbols=options["symbols"], streams=("trade",),
        frame_tap=lambda frame, ns: tapped.append((frame, ns)),
    ) as gw:  # fmt: skip
        sub = gw.subscribe(None, Trade, buffer=1000)
        sim.control.generate(trades=40)
        trades = []
        with trio.fail_after(10):
            while len(trades) < 40:
                trades.append(await sub.receive())
        frames = gw._connections[0].frames
    assert len(tapped) == frames
    # the first frame is the SUBSCRIBE reply; the rest are the trades, in order
    assert orjson.loads(tapped[0][0]) == {"result": None, "id": 1}
    market = [(orjson.loads(f), ns) for f, ns in tapped if b'"stream"' in _bytes(f)]
    ids = [(m["data"]["s"], m["data"]["t"]) for m, _ in market][: len(trades)]
    assert ids == [(t.symbol, t.trade_id) for t in trades]
    assert [ns for _, ns in market][: len(trades)] == [t.receive_ns for t in trades]


def _bytes(frame: str | bytes) -> bytes:
    return frame.encode() if isinstance(frame, str) else frame


async def test_without_a_tap_the_router_has_none(autojump_clock: MockClock) -> None:
    sim_options = {"symbols": ("BTCUSDT",), "clock": "virtual", "pacing": "manual"}
    async with (
        open_simulator(**sim_options) as sim,
        open_gateway(url=sim.ws_url, symbols=("BTCUSDT",)) as gw,
    ):
        assert gw._router.frame_tap is None


async def test_a_raising_tap_is_counted_and_reported_and_nothing_else_happens(
    autojump_clock: MockClock,
) -> None:
    seen: list[int] = []
    errors: list[BaseException] = []

    def flaky_tap(frame: str | bytes, receive_ns: int) -> None:
        seen.append(receive_ns)
        if len(seen) % 3 == 0:
            raise RuntimeError(f"tap bug on frame {len(seen)}")

    options = {"symbols": ("BTCUSDT",), "seed": 3, "clock": "virtual", "pacing": "manual"}
    async with open_simulator(**options) as sim, open_gateway(
        url=sim.ws_url, symbols=options["symbols"], frame_tap=flaky_tap, on_error=errors.append,
    ) as gw:  # fmt: skip
        with gw.subscribe("BTCUSDT", Trade, buffer=1000) as sub:
            made = sim.control.generate(trades=30)
            with trio.fail_after(10):
                trades = [await sub.receive() for _ in range(made)]
        await trio.testing.wait_all_tasks_blocked()
        frames, stats = gw._connections[0].frames, gw.stats()
        assert gw._connections[0].connects == 1  # the session never ended
    assert len(trades) == made  # every frame still routed, the failing ones included
    assert stats.router.tap_errors == frames // 3 == len(errors)
    assert all(isinstance(e, RuntimeError) and "tap bug" in str(e) for e in errors)
