"""Recordings: written with rotation (and gzip), replayed frame for frame, counted by kind."""

from __future__ import annotations

import collections
import gzip
from pathlib import Path

import orjson
import pytest
import trio
from trio.testing import MockClock
from trio_websocket import open_websocket_url

from gateway import open_gateway
from gateway.app.recording import FrameRecorder, read_recording_lines, rotated_name
from gateway.app.replay import merge_recordings
from gateway.simulator import open_simulator
from gateway.simulator.replay import load_recording
from tests.recorded_data import RECORDINGS, recorded_dir, stream_frames

RECORDED_STREAMS = ("aggTrade", "kline_1m", "depth@100ms", "bookTicker")


def test_recorder_writes_the_header_and_market_frames_only(tmp_path: Path) -> None:
    path = tmp_path / "rec.txt"
    rec = FrameRecorder(path, "ws://x/stream?streams=btcusdt@trade", 1700000000.5)
    rec('{"result":null,"id":1}', 1_700_000_000_600_000_000)
    rec('{"stream":"btcusdt@trade","data":{"e":"trade"}}', 1_700_000_000_700_000_000)
    rec(b'{"stream":"btcusdt@trade","data":{"e":"trade","t":2}}', 1_700_000_000_800_000_000)
    rec.close()
    assert path.read_text().splitlines() == [
        "ws://x/stream?streams=btcusdt@trade <-> 1700000000.5",
        '1700000000.7: {"stream":"btcusdt@trade","data":{"e":"trade"}}',
        '1700000000.8: {"stream":"btcusdt@trade","data":{"e":"trade","t":2}}',
    ]
    assert (rec.frames, rec.skipped, rec.files) == (2, 1, [path])
    loaded = load_recording(path)
    assert [f.stream for f in loaded.frames] == ["btcusdt@trade"] * 2


@pytest.mark.parametrize("name", ["rec.txt", "rec.txt.gz"])
def test_recorder_rotates_by_size_into_numbered_files(tmp_path: Path, name: str) -> None:
    path = tmp_path / name
    rec = FrameRecorder(path, "ws://x/stream", 1.0, max_bytes=2000)
    frames = [
        '{"stream":"btcusdt@trade","data":{"t":' + str(i) + ',"pad":"' + "x" * (i % 97) + '"}}'
        for i in range(400)
    ]
    for i, frame in enumerate(frames):
        rec(frame, (2 + i) * 1_000_000_000)
    rec.close()
    assert len(rec.files) > 2
    assert rec.files == [rotated_name(path, i) for i in range(len(rec.files))]
    assert rec.files[1].name == f"{name}.1"
    seen = []
    for f in rec.files:
        data = f.read_bytes()
        if name.endswith(".gz"):
            data = gzip.decompress(data)  # each file is a whole gzip stream
        assert len(data) <= 2000  # for gzip, the uncompressed size is bounded
        head, lines = read_recording_lines(f)
        assert head == "ws://x/stream <-> 1.0"
        seen += [line.split(b": ", 1)[1].decode() for line in lines]
    assert seen == frames


async def _replayed_frames(path: Path, streams: tuple[str, ...], count: int) -> list[bytes]:
    """Serve ``path`` at full speed; a client subscribing with SUBSCRIBE on /stream gets..."""
    out: list[bytes] = []
    async with (
        open_simulator(pacing="replay", replay_file=str(path), replay_speed=0, rest=False) as sim,
        open_websocket_url(f"{sim.ws_url}/stream") as ws,
    ):
        await ws.send_message(
            orjson.dumps({"method": "SUBSCRIBE", "params": list(streams), "id": 7}).decode()
        )
        assert orjson.loads(await ws.get_message()) == {"result": None, "id": 7}
        with trio.fail_after(20):
            while len(out) < count:
                msg = await ws.get_message()
                out.append(msg.encode() if isinstance(msg, str) else msg)
    return out


async def test_recorded_frames_replay_identically_and_in_order(
    tmp_path: Path, autojump_clock: MockClock
) -> None:
    symbols = ("BTCUSDT", "ETHUSDT")
    streams = ("trade", "kline_1s", "ticker")
    path = tmp_path / "rec.txt.gz"
    sim_options = {"symbols": symbols, "seed": 11, "clock": "virtual", "pacing": "manual"}
    async with open_simulator(**sim_options) as sim:
        recorder = FrameRecorder(path, sim.stream_url(), 1.0, max_bytes=4000)
        async with open_gateway(
            url=sim.ws_url, symbols=symbols, streams=streams, frame_tap=recorder
        ) as gw:
            for _ in range(20):
                sim.control.generate(trades=10)
                await trio.sleep(0.2)
                sim.control.tick()
            await trio.sleep(1)
            received = gw._connections[0].frames
        recorder.close()
    assert len(recorder.files) > 1 and recorder.frames == received - 1  # - the SUBSCRIBE reply
    merged = merge_recordings([str(f) for f in recorder.files], tmp_path / "merged.txt")
    recorded = [line.split(b": ", 1)[1] for line in read_recording_lines(merged)[1]]
    assert len(recorded) == recorder.frames
    names = tuple(f"{s.lower()}@{x}" for s in symbols for x in streams)
    replayed = await _replayed_frames(merged, names, len(recorded))
    assert replayed == recorded


@pytest.mark.parametrize("recording", RECORDINGS)
async def test_each_real_recording_replays_through_the_gateway_with_its_event_counts(
    recording: str, autojump_clock: MockClock
) -> None:
    expected: collections.Counter[tuple[str, str]] = collections.Counter(
        (f.event.symbol, type(f.event).__name__) for f in stream_frames(recording)
    )
    path = recorded_dir() / recording / "stream.txt"
    rec = load_recording(path)
    symbols = tuple(dict.fromkeys(s.split("@")[0].upper() for s in rec.streams))
    async with (
        open_simulator(pacing="replay", replay_file=str(path), replay_speed=0, rest=False) as sim,
        open_gateway(url=sim.ws_url, symbols=symbols, streams=RECORDED_STREAMS) as gw,
    ):
        with trio.fail_after(20):
            await sim.control.wait_replay_done()
            while gw._router.frames < len(rec.frames) + 1:  # noqa: ASYNC110 - no event for it
                await trio.sleep(0.01)
        counts = {
            (sym, kind): n
            for sym, snap in gw.stats().symbols.items()
            for kind, n in snap.events.items()
        }
    assert counts == dict(expected)
