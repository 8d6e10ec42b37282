"""The live terminal view and the plain lines: pure functions of a `Snapshot`.

`render` builds a rich renderable (no terminal needed: print it to any `Console`);
`status_lines` gives the same facts as one line per symbol and connection, for pipes
and CI. Neither reads the clock or the gateway.
"""

from __future__ import annotations

from rich import box
from rich.console import Group, JustifyMethod, RenderableType
from rich.table import Table
from rich.text import Text

from gateway.app.snapshot import CandleView, ConnectionRow, Snapshot, SymbolRow

__all__ = ["WIDE", "connection_line", "render", "status_lines", "symbol_line"]

#: From this many columns on, the view shows the whole open candle and both latencies.
WIDE = 120


def _price(value: float | None) -> str:
    return "-" if value is None else f"{value:,.2f}"


def _change(pct: float | None) -> Text:
    if pct is None:
        return Text("-")
    style = "green" if pct > 0 else "red" if pct < 0 else ""
    return Text(f"{pct:+.2f}%", style=style)


def _us(value: float | None) -> str:
    return "-" if value is None else f"{value:,.0f}"


def _candle(c: CandleView | None, wide: bool) -> Text:
    if c is None:
        return Text("-")
    arrow, style = ("▲", "green") if c.close >= c.open else ("▼", "red")
    if wide:
        return Text(
            f"{c.interval} O {c.open:.2f} H {c.high:.2f} L {c.low:.2f} C {c.close:.2f} {arrow}",
            style=style,
        )
    return Text(f"{c.interval} {c.close:.2f}{arrow}", style=style)


def _position(text: str) -> Text:
    style = "bold red" if "FIRED" in text else "yellow" if "armed" in text else ""
    return Text(text or "-", style=style)


def _symbol_cells(row: SymbolRow, wide: bool) -> list[Text]:
    name = row.symbol
    if row.status != "running":
        name = f"{row.symbol} ({row.status})" if wide else f"{row.symbol}!"
    cells = [
        Text(name, style="bold" if row.status == "running" else "bold red"),
        Text(_price(row.last_price)), _change(row.change_pct), _candle(row.candle, wide),
        Text(f"{row.msgs_per_s:,.0f}"),
    ]  # fmt: skip
    if wide:
        cells += [Text(str(row.dropped)), Text(str(row.restarts)), Text(str(row.candles_closed)),
                  Text(_us(row.p50_us)), Text(_us(row.p99_us))]  # fmt: skip
    else:
        cells += [Text(f"{row.dropped}/{row.restarts}"),
                  Text(f"{_us(row.p50_us)}/{_us(row.p99_us)}")]  # fmt: skip
    # narrow: "FIRED 99.76" / "armed 99.77" (the side and the word "stop" go)
    position = row.position if wide else " ".join(row.position.split()[1:]).replace("STOP ", "")
    position = position.replace("armed stop", "armed")
    cells.append(_position(position))
    return cells


_WIDE_HEADERS = ("symbol", "last", "chg", "candle", "msg/s", "drop", "rst", "closed",
                 "p50 µs", "p99 µs", "position")  # fmt: skip
_NARROW_HEADERS = ("symbol", "last", "chg", "candle", "msg/s", "d/r", "p50/99", "position")


def _symbol_table(snap: Snapshot, wide: bool) -> Table:
    rows = [_symbol_cells(row, wide) for row in snap.symbols]
    headers = _WIDE_HEADERS if wide else _NARROW_HEADERS
    table = Table(box=box.SIMPLE_HEAD, expand=False, pad_edge=False, padding=(0, 1))
    for i, header in enumerate(headers):
        last = i == len(headers) - 1
        # every column keeps its widest cell; only the position column gives way
        width = max([len(header)] + [r[i].cell_len for r in rows]) if not last else None
        justify: JustifyMethod = "left" if header in ("symbol", "candle", "position") else "right"
        table.add_column(header, justify=justify, no_wrap=True, min_width=width,
                         overflow="ellipsis")  # fmt: skip
    for cells in rows:
        table.add_row(*cells)
    return table


def connection_line(c: ConnectionRow) -> str:
    """One connection in words."""
    return (
        f"{c.id} {c.state} streams {c.streams} reconnects {c.reconnects} "
        f"rotations {c.rotations} frames {c.frames}"
    )


def render(snap: Snapshot, width: int = WIDE) -> RenderableType:
    """The whole view for a terminal ``width`` columns wide."""
    wide = width >= WIDE
    head = Text.assemble(
        (snap.title, "bold cyan"), f"  {snap.elapsed:.1f}s  ",
        (f"stops fired {snap.stops_fired}", "bold red" if snap.stops_fired else ""),
        f"  errors {snap.errors}", "" if wide else "  (d/r: drops/restarts, p50/99 µs)",
    )  # fmt: skip
    parts: list[RenderableType] = [head, _symbol_table(snap, wide)]
    for c in snap.connections:
        style = "green" if c.state == "live" else "yellow"
        parts.append(Text(connection_line(c), style=style, overflow="fold"))
    parts.append(
        Text(f"router frames {snap.frames} malformed {snap.malformed} unknown {snap.unknown}")
    )
    if snap.recent:
        parts.append(Text("recent:", style="bold"))
        parts.extend(Text(f"  {line}", overflow="ellipsis", no_wrap=True) for line in snap.recent)
    return Group(*parts)


def symbol_line(row: SymbolRow) -> str:
    """One symbol in words (the plain output's status line)."""
    c = row.candle
    candle = "-" if c is None else f"{c.interval} O {c.open:.2f} C {c.close:.2f}"
    change = "-" if row.change_pct is None else f"{row.change_pct:+.2f}%"
    return (
        f"{row.symbol} last {_price(row.last_price)} chg {change} candle {candle} "
        f"closed {row.candles_closed} msg/s {row.msgs_per_s:.0f} drops {row.dropped} "
        f"restarts {row.restarts} p50 {_us(row.p50_us)}us p99 {_us(row.p99_us)}us "
        f"pos {row.position or '-'}"
    )


def status_lines(snap: Snapshot) -> list[str]:
    """The plain output's periodic status: one line per symbol, connection, and router."""
    at = f"status {snap.elapsed:.1f}s"
    lines = [f"{at} {symbol_line(row)}" for row in snap.symbols]
    lines += [f"{at} {connection_line(c)}" for c in snap.connections]
    lines.append(f"{at} router frames {snap.frames} malformed {snap.malformed} "
                 f"unknown {snap.unknown}")  # fmt: skip
    return lines
