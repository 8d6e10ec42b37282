"""The end-of-run summary: one document, printed as lines or a table, for every outcome."""

from __future__ import annotations

import io
import re
from typing import Any

import pytest
from rich.console import Console

from gateway.app.connecting import ConnectWatch
from gateway.app.output import LiveOutput
from gateway.app.summary import build_summary, summary_lines
from gateway.app.tracker import RunTracker
from gateway.config import GatewayConfig
from gateway.errors import ConnectionFailed, ConnectionLost, SubscriptionError
from gateway.stats import ConnectionStats, GatewayStats, RouterStats

URL = "wss://me:hunter2@stream.example:9443"


def never_live_summary(stats: GatewayStats, tracker: RunTracker) -> dict[str, Any]:
    return build_summary(
        stats, tracker, url=URL, embedded=False, stream_names=[], started_at="t",
        duration_s=3.0004, ended_by="duration", error=f"never went live: {URL}",
        went_live=False,
    )  # fmt: skip


def test_connect_watch_pictures_the_planned_connections_and_notes_errors_until_live() -> None:
    tracker = RunTracker()
    config = GatewayConfig(symbols=("BTCUSDT", "ETHUSDT"), streams=("trade", "ticker"),
                           max_streams_per_connection=2)  # fmt: skip
    watch = ConnectWatch(config, tracker)
    # not started yet: every planned shard is idle and never opened
    assert [(c.id, c.state, c.streams, c.connects) for c in watch.connections()] == [
        ("conn-1", "idle", 2, 0), ("conn-2", "idle", 2, 0)]  # fmt: skip
    def lost(attempt: int) -> ConnectionLost:
        return ConnectionLost("conn-1", "h:1", "refused", opened=False, attempt=attempt,
                              max_attempts=3, retry_in=0.5)  # fmt: skip

    watch.on_error(lost(1))
    watch.on_error(SubscriptionError(2, "stream x refused"))  # not a connection attempt
    watch.on_error(lost(2))
    assert watch.last_error == str(lost(2))
    assert [line.split(":")[0] for line in tracker.errors] == [
        "error connection", "error gateway", "error connection"]  # fmt: skip
    watch.on_error(ConnectionFailed("[conn-1] gave up after 3 attempts"))  # the run's error
    assert watch.last_error == str(lost(2)) and len(tracker.errors) == 3
    watch.live = True
    watch.on_error(lost(3))  # after live: the tracker's subscription reports it
    assert watch.last_error == str(lost(2)) and len(tracker.errors) == 3


def test_a_never_live_summary_is_printed_and_masks_credentials() -> None:
    tracker = RunTracker()
    conn = ConnectionStats(id="conn-1", state="reconnecting", streams=1, reconnects=1,
                           last_error=f"cannot reach {URL}")  # fmt: skip
    stats = GatewayStats(symbols={}, connections=(conn,), router=RouterStats())
    summary = never_live_summary(stats, tracker)
    assert summary["url"] == "wss://me:***@stream.example:9443"
    assert summary["went_live"] is False and summary["duration_s"] == 3.0
    assert summary["connections"][0]["went_live"] is False
    lines = summary_lines(summary)
    assert lines[0].endswith("ended_by=duration went_live=no")
    assert lines[1].startswith("summary conn-1 state=reconnecting went_live=no connects=0 ")
    assert lines[-1].startswith("summary error never went live: wss://me:***@")
    out = io.StringIO()
    LiveOutput(Console(file=out, width=120, color_system=None)).final(summary)
    shown = out.getvalue()
    assert "never live" in shown and "conn-1 reconnecting, never live, 1 reconnects" in shown
    assert "hunter2" not in repr(summary) + "\n".join(lines) + shown


def _busy_summary() -> dict[str, Any]:
    """A long run's summary: five symbols with seven-digit counts."""
    symbols = {}
    for i, sym in enumerate(("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT")):
        symbols[sym] = {
            "events": {"AggTrade": 1234567 + i, "Kline": 98765 + i, "Ticker": 86400 + i,
                       "Trade": 7654321 + i},
            "candles_closed": {"1s": 86399 + i, "1m": 1439 + i, "1h": 24},
            "stops_fired": 12 + i, "dropped": 123456 + i, "restarts": 3 + i,
            "latency_us": {"receive_to_handled": {"p50": 1234.5 + i, "p99": 98765.4 + i}},
        }  # fmt: skip
    return {"duration_s": 86400.123, "ended_by": "interrupt", "went_live": True,
            "symbols": symbols, "connections": [], "stop_losses": [], "error": None}  # fmt: skip


@pytest.mark.parametrize("scale", [1, 10**6])
def test_the_summary_at_80_columns_shows_every_number_whole(scale: int) -> None:
    """A table while it fits in 80 columns, wrapped paragraphs past that; before, the
    table cut counts (``Trade=1…``)."""
    summary = _busy_summary()
    for s in summary["symbols"].values():
        s["events"]["Trade"] *= scale
        s["dropped"] *= scale
        s["latency_us"]["receive_to_handled"]["p99"] *= scale
    out = io.StringIO()
    LiveOutput(Console(file=out, width=80, color_system=None)).final(summary)
    shown = out.getvalue()
    assert "…" not in shown, shown
    assert max(len(line) for line in shown.splitlines()) <= 80
    words = set(shown.split())
    for s in summary["symbols"].values():
        for kind, n in [*s["events"].items(), *s["candles_closed"].items()]:
            assert f"{kind}={n}" in words, (kind, n, shown)
        lat = s["latency_us"]["receive_to_handled"]
        for n in (s["stops_fired"], s["dropped"], s["restarts"], lat["p50"], lat["p99"]):
            text = f"{n:.1f}" if isinstance(n, float) else str(n)
            assert re.search(rf"(?<![\d.]){re.escape(text)}(?![\d.])", shown), (n, shown)
