"""The live view and the plain lines: pure functions of a snapshot, rendered off-terminal."""

from __future__ import annotations

import io
import sys

import pytest
import trio
from rich.console import Console
from trio.testing import MockClock

from gateway import open_gateway
from gateway.app.output import LiveOutput
from gateway.app.snapshot import CandleView, ConnectionRow, Snapshot, SnapshotTaker, SymbolRow
from gateway.app.tracker import RunTracker
from gateway.app.view import render, status_lines
from gateway.simulator import open_simulator
from tests._terminal import screen

SYMBOLS = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT")


def _snapshot() -> Snapshot:
    rows = tuple(
        SymbolRow(
            sym,
            100.0 + i,
            0.5 - i * 0.25,
            CandleView("1s", 100.0, 101.5, 99.5, 100.0 + i),
            candles_closed=3 + i,
            events=1000 * i,
            msgs_per_s=40.0 + i,
            dropped=i,
            restarts=i % 2,
            status="running" if i != 4 else "failed",
            p50_us=12.0 + i,
            p99_us=80.0 + i,
            position="LONG STOP FIRED 99.76" if i == 0 else "",
        )
        for i, sym in enumerate(SYMBOLS)
    )
    return Snapshot(
        "gateway · ws://127.0.0.1:1234", 3.0, rows,
        (ConnectionRow("conn-1", "live", 20, 2, 1, 642),), 642, 1, 2, 1, 0,
        ("stop-loss BTCUSDT demo-1 LONG stop 99.77 fired at 99.76",),
    )  # fmt: skip


def _rendered(snapshot: Snapshot, width: int) -> str:
    out = io.StringIO()
    console = Console(file=out, width=width, force_terminal=True, color_system=None)
    console.print(render(snapshot, console.width))
    return out.getvalue()


@pytest.mark.parametrize("width", [80, 200])
def test_view_renders_one_row_per_symbol_within_the_width(width: int) -> None:
    text = _rendered(_snapshot(), width)
    lines = text.splitlines()
    assert all(len(line) <= width for line in lines)
    for i, sym in enumerate(SYMBOLS):
        row = next(line for line in lines if line.lstrip().startswith(sym))
        assert f"{40 + i}" in row and f"{12 + i}" in row and f"{80 + i}" in row
        assert f"{100.0 + i:,.2f}" in row
    btc = next(line for line in lines if line.lstrip().startswith("BTCUSDT"))
    assert "FIRED 99.76" in btc
    assert "conn-1 live streams 20 reconnects 2 rotations 1 frames 642" in text
    assert "malformed 1 unknown 2" in text
    assert "fired at 99.76" in text  # recent events
    assert "XRPUSDT (failed)" in text if width >= 120 else "XRPUSDT!" in text


def test_wide_view_shows_the_whole_candle_and_both_latencies() -> None:
    wide = _rendered(_snapshot(), 200)
    assert "O 100.00 H 101.50 L 99.50 C 100.00" in wide
    assert "p50 µs" in wide and "p99 µs" in wide
    narrow = _rendered(_snapshot(), 80)
    assert "H 101.50" not in narrow and "p50/99" in narrow and "FIRED 99.76" in narrow


def test_plain_status_has_a_line_per_symbol_connection_and_router() -> None:
    lines = status_lines(_snapshot())
    assert len(lines) == len(SYMBOLS) + 2
    assert lines[0].startswith("status 3.0s BTCUSDT last 100.00 chg +0.50% candle 1s O 100.00")
    assert "pos LONG STOP FIRED 99.76" in lines[0]
    assert lines[-1] == "status 3.0s router frames 642 malformed 1 unknown 2"


async def test_snapshots_of_a_live_gateway_render(autojump_clock: MockClock) -> None:
    options = {"symbols": SYMBOLS[:3], "seed": 5, "clock": "virtual", "pacing": "manual"}
    streams = ("trade", "kline_1s", "kline_1m")
    async with (
        open_simulator(**options) as sim,
        open_gateway(url=sim.ws_url, symbols=SYMBOLS[:3], streams=streams) as gw,
    ):
        tracker = RunTracker()
        tracker.attach(gw)
        gw.open_position("BTCUSDT", "LONG", 100.0, stop_pct=0.5)
        taker = SnapshotTaker(gw, tracker, "test")
        taker.take(0.0, 0.0)
        for _ in range(30):
            sim.control.generate(trades=10)
            await trio.sleep(0.1)
            sim.control.tick()
        await trio.sleep(0.5)
        tracker.take_pending()
        snap = taker.take(3.5, 3.5)
        tracker.close()
    assert [row.symbol for row in snap.symbols] == list(SYMBOLS[:3])
    for row in snap.symbols:
        assert row.last_price is not None and row.events > 0 and row.msgs_per_s > 0
        assert row.candle is not None and row.candle.interval == "1s"
        assert row.candles_closed == tracker.closed_total[row.symbol] > 0
    assert snap.symbols[0].position == "LONG armed stop 50.00"
    for width in (80, 200):
        assert "BTCUSDT" in _rendered(snap, width)


async def test_stray_output_goes_above_the_live_view_not_through_it(
    autojump_clock: MockClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Writes to stdout or stderr while the view is live (a library's log handler, a
    print) land above the view; before, they tore it (the view redrew over them)."""
    terminal = io.StringIO()
    console = Console(file=terminal, width=80, force_terminal=True, color_system=None)
    monkeypatch.setattr(sys, "stdout", terminal)
    monkeypatch.setattr(sys, "stderr", terminal)
    output = LiveOutput(console, fps=4.0)
    async with trio.open_nursery() as nursery:
        await nursery.start(output.run, _snapshot)
        await trio.sleep(1.0)
        print("stray print", file=sys.stderr)
        await trio.sleep(1.0)
        print("stray stdout")
        await trio.sleep(1.0)
        nursery.cancel_scope.cancel()
    lines = screen(terminal.getvalue())
    head = [i for i, line in enumerate(lines) if line.startswith("gateway · ws://127.0.0.1:1234")]
    assert lines.count("stray print") == 1 and lines.count("stray stdout") == 1, lines
    assert len(head) == 1, lines
    assert lines.index("stray print") < lines.index("stray stdout") < head[0]
