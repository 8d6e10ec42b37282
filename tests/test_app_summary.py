"""The end-of-run summary: one document, printed as lines or a table, for every outcome."""

from __future__ import annotations

import io
from typing import Any

from rich.console import Console

from gateway.app.connecting import ConnectWatch
from gateway.app.output import LiveOutput
from gateway.app.summary import build_summary, summary_lines
from gateway.app.tracker import RunTracker
from gateway.config import GatewayConfig
from gateway.errors import ConnectionFailed, ConnectionLost, SubscriptionError

URL = "wss://me:hunter2@stream.example:9443"


def never_live_summary(stats: dict[str, Any], tracker: RunTracker) -> dict[str, Any]:
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
    assert [(c["id"], c["state"], c["streams"], c["connects"]) for c in watch.connections()] == [
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
    conn = {"id": "conn-1", "state": "reconnecting", "streams": 1, "connects": 0,
            "reconnects": 1, "rotations": 0, "frames": 0, "last_error": f"cannot reach {URL}"}
    router = dict.fromkeys(("frames", "malformed", "unknown", "unrouted"), 0)
    stats = {"symbols": {}, "connections": [conn], "router": router}
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
