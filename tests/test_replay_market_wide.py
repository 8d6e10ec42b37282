"""A recording with a market-wide stream (``!miniTicker@arr``) replays, and the run it
suggests names only real symbols and their streams."""

from __future__ import annotations

from pathlib import Path

import trio

from gateway.app.replay import suggested_run
from gateway.simulator import open_simulator
from gateway.simulator.replay import load_recording, recorded_symbols

_TRADE = ('{"stream":"btcusdt@trade","data":{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"1",'
          '"q":"1","T":1,"m":true,"M":true}}')  # fmt: skip


async def test_a_recording_with_a_market_wide_stream_is_served_with_its_symbols(
    tmp_path: Path,
) -> None:
    path = tmp_path / "stream.txt"
    path.write_text(
        "wss://stream.binance.com:9443/stream?streams=btcusdt@trade/!miniTicker@arr "
        "<-> 1633998512.0\n"
        f"1633998512.0: {_TRADE}\n"
        '1633998512.1: {"stream":"!miniTicker@arr","data":[]}\n'
    )
    symbols = recorded_symbols(load_recording(path))
    assert symbols == ("BTCUSDT",)
    with trio.fail_after(30):
        async with open_simulator(pacing="replay", replay_file=str(path), replay_speed=0,
                                  symbols=symbols) as sim:  # fmt: skip
            assert sim.rest_url
            command = suggested_run(sim, load_recording(path))
    assert "--symbols BTCUSDT --streams trade" in command and "!" not in command
