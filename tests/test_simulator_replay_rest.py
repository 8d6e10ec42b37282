"""Replay serves a recording's frames exactly and in order; the REST side answers like the
exchange; the order-book sync procedure works against streams plus REST snapshots."""

from __future__ import annotations

from pathlib import Path

import httpx
import orjson
import pytest
import trio

from gateway.core.codec import decode_frame
from gateway.core.events import DepthUpdate, PartialDepth
from gateway.simulator import SimulatorConfig, open_simulator
from gateway.simulator.replay import load_recording
from tests._simclient import bounded, ws_client
from tests.recorded_data import recorded_dir

RECORDINGS = sorted(recorded_dir().glob("*/stream.txt"))


@bounded(120)
@pytest.mark.parametrize("path", RECORDINGS, ids=lambda p: p.parent.name)
async def test_replay_serves_exactly_the_recorded_frames_in_order(path: Path) -> None:
    recording = load_recording(path)
    cfg = SimulatorConfig(pacing="replay", replay_file=str(path), replay_speed=0, rest=False)
    async with open_simulator(cfg) as sim, ws_client(sim.stream_url(recording.streams),
                                                     message_queue_size=64) as ws:  # fmt: skip
        got = [(await ws.get_message()).encode() for _ in recording.frames]
        assert got == [f.text for f in recording.frames]
        await sim.control.wait_replay_done()


@bounded(600)
async def test_replay_at_scaled_speed_keeps_the_pace_and_raw_mode(autojump_clock: object) -> None:
    if not RECORDINGS:
        pytest.skip(f"no recordings in {recorded_dir()}")
    path = RECORDINGS[-1]
    recording = load_recording(path)
    cfg = SimulatorConfig(pacing="replay", replay_file=str(path), replay_speed=2, rest=False)
    async with open_simulator(cfg) as sim, ws_client(
        f"{sim.ws_url}/ws/" + "/".join(recording.streams), message_queue_size=64
    ) as ws:  # fmt: skip
        start = trio.current_time()
        for frame in recording.frames:
            text = await ws.get_message()
            assert text.encode() == frame.data
            elapsed = (frame.time - recording.frames[0].time) / 2
            assert trio.current_time() - start == pytest.approx(elapsed, abs=1e-6)


@bounded()
async def test_rest_endpoints_and_errors(autojump_clock: object) -> None:
    cfg = SimulatorConfig(symbols=("BTCUSDT", "ETHUSDT"), pacing="manual", clock="virtual")
    async with open_simulator(cfg) as sim, httpx.AsyncClient(base_url=str(sim.rest_url)) as http:
        sim.control.generate(20, symbol="BTCUSDT")
        assert (await http.get("/api/v3/ping")).json() == {}
        assert (await http.get("/api/v3/time")).json() == {"serverTime": 1767225600000}
        info = (await http.get("/api/v3/exchangeInfo")).json()
        assert [s["symbol"] for s in info["symbols"]] == ["BTCUSDT", "ETHUSDT"]
        assert info["symbols"][0]["filters"][0]["tickSize"] == "0.01000000"
        klines = (await http.get("/api/v3/klines", params={"symbol": "BTCUSDT",
                                                           "interval": "1m"})).json()  # fmt: skip
        assert len(klines) == 1 and len(klines[0]) == 12 and klines[0][8] >= 20
        aggs = (await http.get("/api/v3/aggTrades", params={"symbol": "BTCUSDT"})).json()
        assert sum(a["l"] - a["f"] + 1 for a in aggs) == klines[0][8]
        errors = {
            "/api/v3/depth?symbol=NOPE": (-1121, "Invalid symbol."),
            "/api/v3/klines?symbol=BTCUSDT&interval=2m": (-1120, "Invalid interval."),
            "/api/v3/depth": (-1102, "Mandatory parameter 'symbol' was not sent, was "
                              "empty/null, or malformed."),
            "/api/v3/aggTrades?symbol=BTCUSDT&fromId=1&startTime=2": (
                -1128, "Combination of optional parameters invalid."),
            "/api/v3/klines?symbol=BTCUSDT&interval=1m&limit=abc": (
                -1100, "Illegal characters found in parameter 'limit'; legal range is "
                "'^[0-9]{1,20}$'."),
        }  # fmt: skip
        for path, (code, msg) in errors.items():
            r = await http.get(path)
            assert r.status_code == 400 and r.json() == {"code": code, "msg": msg}
        r = await http.get("/api/v3/time", headers={"X-MBX-TIME-UNIT": "MICROSECOND"})
        assert r.json()["serverTime"] == 1767225600000000


@bounded(60)
async def test_order_book_sync_procedure_reproduces_the_partial_book() -> None:
    cfg = SimulatorConfig(symbols=("BTCUSDT",), rate=300.0, seed=11)
    streams = ["btcusdt@depth@100ms", "btcusdt@depth20@100ms"]
    async with open_simulator(cfg) as sim, ws_client(sim.stream_url(streams)) as ws, \
            httpx.AsyncClient(base_url=str(sim.rest_url)) as http:  # fmt: skip
        first = decode_frame(await ws.get_message())
        while not isinstance(first, DepthUpdate):
            first = decode_frame(await ws.get_message())
        buffered: list[object] = [first]
        snap = (await http.get("/api/v3/depth", params={"symbol": "BTCUSDT", "limit": 1000})).json()
        assert snap["lastUpdateId"] >= first.first_update_id
        book_id = snap["lastUpdateId"]
        book = {"b": {p: q for p, q in snap["bids"]}, "a": {p: q for p, q in snap["asks"]}}
        checked = 0
        started = False
        while checked < 10:
            ev = buffered.pop(0) if buffered else decode_frame(await ws.get_message())
            if isinstance(ev, DepthUpdate):
                if ev.final_update_id <= book_id:
                    continue
                assert ev.first_update_id <= book_id + 1, "events were missed"
                started = True
                for side, rows in (("b", ev.bids), ("a", ev.asks)):
                    for price, qty in rows:
                        key = f"{price:.8f}"
                        if qty:
                            book[side][key] = f"{qty:.8f}"
                        else:
                            book[side].pop(key, None)
                book_id = ev.final_update_id
            elif isinstance(ev, PartialDepth) and started and ev.last_update_id == book_id:
                top_b = sorted(book["b"].items(), key=lambda r: -float(r[0]))[:20]
                top_a = sorted(book["a"].items(), key=lambda r: float(r[0]))[:20]
                assert [(float(p), float(q)) for p, q in top_b] == list(ev.bids)
                assert [(float(p), float(q)) for p, q in top_a] == list(ev.asks)
                checked += 1


def test_recordings_parse() -> None:
    for path in RECORDINGS:
        rec = load_recording(path)
        assert rec.url.startswith("wss://") and rec.frames
        assert all(orjson.loads(f.text)["stream"] == f.stream for f in rec.frames)


@bounded()
async def test_agg_trades_time_bounds_are_inclusive_milliseconds_and_limit_at_most_1000(
    autojump_clock: object,
) -> None:
    cfg = SimulatorConfig(symbols=("BTCUSDT",), pacing="manual", clock="virtual")
    async with open_simulator(cfg) as sim, httpx.AsyncClient(base_url=str(sim.rest_url)) as http:

        async def aggs(**params: int) -> list[dict[str, object]]:
            r = await http.get("/api/v3/aggTrades", params={"symbol": "BTCUSDT", **params})
            assert r.status_code == 200
            rows: list[dict[str, object]] = r.json()
            return rows

        for _ in range(8):
            await trio.sleep(0.0007)  # trade times that fall inside a millisecond
            sim.control.generate(3, symbol="BTCUSDT")
        rows = await aggs()
        for row in rows:  # startTime == endTime == T still finds the row (both inclusive)
            assert row in await aggs(startTime=row["T"], endTime=row["T"])  # type: ignore[arg-type]
        mid: int = rows[len(rows) // 2]["T"]  # type: ignore[assignment]
        assert await aggs(startTime=mid) == [r for r in rows if r["T"] >= mid]  # type: ignore[operator]
        assert await aggs(endTime=mid) == [r for r in rows if r["T"] <= mid]  # type: ignore[operator]
        assert await aggs(startTime=mid, endTime=mid, limit=1) == [
            next(r for r in rows if r["T"] == mid)
        ]
        assert len(await aggs(limit=1000)) == len(rows)
        r = await http.get("/api/v3/aggTrades", params={"symbol": "BTCUSDT", "limit": 1001})
        assert r.status_code == 400 and r.json()["code"] == -1130
