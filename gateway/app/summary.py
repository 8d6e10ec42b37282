"""The end-of-run summary: a stable JSON document (docs/cli.md) and its printed forms.

`build_summary` is the single source: the plain lines (`summary_lines`), the table
(`summary_table`) and the JSON file (`write_summary`) all come from its result, so
what is printed always agrees with what is written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from rich import box
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from gateway.app.tracker import RunTracker
from gateway.core.events import StopTriggered
from gateway.core.redact import redact_text, redact_url
from gateway.core.streams import parse_stream
from gateway.stats import GatewayStats

__all__ = [
    "ENDED_BY",
    "SUMMARY_FORMAT",
    "build_summary",
    "summary_lines",
    "summary_table",
    "write_summary",
]

#: Bumped when a key changes meaning or disappears (new keys may be added freely).
#: 2: ``ended_by`` says ``interrupt`` or ``terminate`` where 1 said ``signal``; a run
#: that never went live is summarised too (``went_live`` false, ``symbols`` empty).
SUMMARY_FORMAT = 2

#: What ended a run: the ``ended_by`` values (see docs/cli.md).
ENDED_BY = ("duration", "interrupt", "terminate", "error")

_CONNECTION_KEYS = (
    "id", "state", "streams", "connects", "reconnects", "rotations", "frames", "last_error",
    "zombie_replacements", "stream_resubscribes", "restarts",
)  # fmt: skip

_ROUTER_KEYS = ("frames", "malformed", "unknown", "unrouted")
_LATENCIES = ("exchange_to_receive", "receive_to_handled", "receive_to_stop_decision")


def _kline_intervals(stream_names: list[str]) -> dict[str, list[str]]:
    """Per symbol, the kline intervals it subscribed, in subscription order."""
    out: dict[str, list[str]] = {}
    for name in stream_names:
        stream = parse_stream(name)
        if stream.symbol is not None and stream.interval is not None:
            out.setdefault(stream.symbol, []).append(stream.interval)
    return out


def build_summary(
    stats: GatewayStats,
    tracker: RunTracker,
    *,
    url: str,
    embedded: bool,
    stream_names: list[str],
    started_at: str,
    duration_s: float,
    ended_by: str,
    error: str | None = None,
    went_live: bool = True,
) -> dict[str, Any]:
    """The summary document of one run (see docs/cli.md for each key).

    ``url`` and every error text are shown with credentials masked. ``stats`` is what
    `Gateway.stats` said at the end; for a run that never went live (``went_live``
    false) its symbols are empty and its connections are what the run knew of them.
    """
    intervals = _kline_intervals(stream_names)
    symbols: dict[str, Any] = {}
    for sym, snap in stats.symbols.items():
        closed = {i: tracker.closed(sym, i) for i in intervals.get(sym, [])}
        for (s, i), n in tracker.candles_closed.items():
            if s == sym:
                closed.setdefault(i, n)
        latency = snap.latency_us.to_dict()
        symbols[sym] = {
            "events": dict(sorted(snap.events.items())),
            "events_total": sum(snap.events.values()),
            "candles_closed": closed,
            "stops_fired": snap.stops_fired,
            "dropped": snap.dropped,
            "crashes": snap.crashes,
            "restarts": snap.restarts,
            "status": snap.status,
            "last_price": snap.last_price,
            "latency_us": {k: latency[k] for k in _LATENCIES},
        }
    return {
        "format": SUMMARY_FORMAT,
        "url": redact_url(url),
        "embedded": embedded,
        "started_at": started_at,
        "duration_s": round(duration_s, 3),
        "ended_by": ended_by,
        "error": None if error is None else redact_text(error),
        "went_live": went_live,
        "symbols": symbols,
        "stop_losses": [_stop(e) for e in tracker.stops],
        "connections": [_connection(c.to_dict(), went_live) for c in stats.connections],
        "router": {k: getattr(stats.router, k) for k in _ROUTER_KEYS},
        "errors": [redact_text(line) for line in tracker.errors],
    }


def _connection(snapshot: dict[str, Any], went_live: bool) -> dict[str, Any]:
    out = {k: snapshot.get(k) for k in _CONNECTION_KEYS}
    if out["last_error"] is not None:
        out["last_error"] = redact_text(out["last_error"])
    out["went_live"] = went_live
    return out


def _stop(e: StopTriggered) -> dict[str, Any]:
    return {
        "symbol": e.symbol,
        "position_id": e.position_id,
        "side": e.side,
        "stop_price": e.stop_price,
        "trigger_price": e.trigger_price,
        "trade_time": e.trade_time,
        "triggered_at_epoch": e.triggered_at_epoch,
    }


def _kv(mapping: dict[str, Any]) -> str:
    return " ".join(f"{k}={v}" for k, v in mapping.items())


def _lat(lat: dict[str, float], key: str) -> str:
    return f"{lat[key]:.1f}us" if key in lat else "-"


def _symbol_words(sym: str, s: dict[str, Any]) -> str:
    lat = s["latency_us"]["receive_to_handled"]
    return (
        f"{sym} events {_kv(s['events']) or '-'} "
        f"candles {_kv(s['candles_closed']) or '-'} stops={s['stops_fired']} "
        f"drops={s['dropped']} restarts={s['restarts']} "
        f"p50={_lat(lat, 'p50')} p99={_lat(lat, 'p99')}"
    )


def summary_lines(summary: dict[str, Any]) -> list[str]:
    """The summary as ``summary ...`` lines of ``key=value`` words (the plain output)."""
    lines = [
        f"summary run url={summary['url']} duration_s={summary['duration_s']} "
        f"ended_by={summary['ended_by']} went_live={'yes' if summary['went_live'] else 'no'}"
    ]
    lines += [f"summary {_symbol_words(sym, s)}" for sym, s in summary["symbols"].items()]
    for c in summary["connections"]:
        connects = "-" if c["connects"] is None else c["connects"]
        line = (
            f"summary {c['id']} state={c['state']} went_live={'yes' if c['went_live'] else 'no'} "
            f"connects={connects} reconnects={c['reconnects']} rotations={c['rotations']} "
            f"frames={c['frames']}"
        )
        lines.append(line if c["last_error"] is None else f"{line} last_error={c['last_error']}")
    lines.append(f"summary router {_kv(summary['router'])}")
    for stop in summary["stop_losses"]:
        lines.append(
            f"summary stop-loss {stop['symbol']} {stop['position_id']} {stop['side']} "
            f"stop={stop['stop_price']:.2f} at={stop['trigger_price']:.2f}"
        )
    if summary["error"]:
        lines.append(f"summary error {summary['error']}")
    return lines


def _lines(mapping: dict[str, Any]) -> str:
    return "\n".join(f"{k}={v}" for k, v in mapping.items())


def _lat_cell(lat: dict[str, float], key: str) -> str:
    return f"{lat[key]:.1f}" if key in lat else "-"


def summary_table(summary: dict[str, Any], width: int | None = None) -> RenderableType:
    """The per-symbol part of the summary for a terminal ``width`` columns wide.

    A table, one ``kind=count`` per line, when its widest lines fit in ``width``; else
    the same facts as one wrapped paragraph per symbol. Numbers are never cut short.
    """
    never = "" if summary["went_live"] else ", never live"
    title = f"summary: {summary['duration_s']}s, ended by {summary['ended_by']}{never}"
    rows = []
    for sym, s in summary["symbols"].items():
        lat = s["latency_us"]["receive_to_handled"]
        rows.append((
            sym, _lines(s["events"]), _lines(s["candles_closed"]), str(s["stops_fired"]),
            str(s["dropped"]), str(s["restarts"]), _lat_cell(lat, "p50"), _lat_cell(lat, "p99"),
        ))  # fmt: skip
    headers = ("symbol", "events", "candles\nclosed", "stops", "drops", "restarts",
               "p50 µs", "p99 µs")  # fmt: skip
    widest = [max(len(line) for cell in (name, *(r[i] for r in rows)) for line in cell.split("\n"))
              for i, name in enumerate(headers)]  # fmt: skip
    # columns are one divider and one space apart
    if width is not None and sum(widest) + 2 * (len(headers) - 1) > width:
        words = [_symbol_words(sym, s) for sym, s in summary["symbols"].items()]
        return Group(Text(title, style="bold"), *(Text(w, overflow="fold") for w in words))
    table = Table(title=title, box=box.SIMPLE_HEAD, show_edge=False, pad_edge=False,
                  padding=(0, 1, 0, 0))  # fmt: skip
    for name, least in zip(headers, widest, strict=True):
        table.add_column(name, justify="left" if name in ("symbol", "events") else "right",
                         overflow="fold", min_width=least)  # fmt: skip
    for row in rows:
        table.add_row(*row)
    return table


def write_summary(summary: dict[str, Any], path: str | Path) -> None:
    """Write the summary as indented JSON, atomically (a temporary file, then rename)."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)
