"""Binance stream names: build, validate, parse, combine into URLs and shard over connections.

Pure functions and frozen values; no I/O. Symbols are kept uppercase (the exchange's
canonical form) and lowercased only when a wire name is built.
"""

from __future__ import annotations

import enum
import urllib.parse
from collections.abc import Iterable, Sequence

import attrs

from gateway.errors import InvalidStreamName

#: Kline intervals, in the exchange's (case-sensitive) spelling: ``1m`` is a minute, ``1M`` a month.
INTERVALS: tuple[str, ...] = (
    "1s", "1m", "3m", "5m", "15m", "30m", "1h", "2h", "4h", "6h", "8h", "12h",
    "1d", "3d", "1w", "1M",
)  # fmt: skip

_S = 1000
#: Length of each fixed interval in milliseconds (``1M`` is calendar-based and absent).
INTERVAL_MS: dict[str, int] = {
    "1s": _S, "1m": 60 * _S, "3m": 180 * _S, "5m": 300 * _S, "15m": 900 * _S,
    "30m": 1800 * _S, "1h": 3600 * _S, "2h": 7200 * _S, "4h": 14400 * _S,
    "6h": 21600 * _S, "8h": 28800 * _S, "12h": 43200 * _S, "1d": 86400 * _S,
    "3d": 259200 * _S, "1w": 604800 * _S,
}  # fmt: skip

#: Partial-depth levels and diff/partial depth update speeds (milliseconds).
DEPTH_LEVELS: tuple[int, ...] = (5, 10, 20)
UPDATE_SPEEDS_MS: tuple[int, ...] = (1000, 100)
#: Rolling-window ticker windows.
ROLLING_WINDOWS: tuple[str, ...] = ("1h", "4h", "1d")
#: The only documented kline timezone offset.
KLINE_OFFSETS: tuple[str, ...] = ("+08:00",)

#: Exchange limits that shape connections (see binance-market-streams.md section 2.3).
MAX_STREAMS_PER_CONNECTION = 1024
MAX_CONTROL_FRAME_BYTES = 4096


class StreamKind(enum.Enum):
    """What a stream carries; the value is the wire suffix (or the market-wide name)."""

    TRADE = "trade"
    AGG_TRADE = "aggTrade"
    BLOCK_TRADE = "blockTrade"
    KLINE = "kline"
    MINI_TICKER = "miniTicker"
    TICKER = "ticker"
    ROLLING_TICKER = "ticker_window"
    BOOK_TICKER = "bookTicker"
    AVG_PRICE = "avgPrice"
    REFERENCE_PRICE = "referencePrice"
    PARTIAL_DEPTH = "depthN"
    DIFF_DEPTH = "depth"
    ALL_MINI_TICKERS = "!miniTicker@arr"
    ALL_ROLLING_TICKERS = "!ticker_window@arr"

    @property
    def is_latest_value(self) -> bool:
        """True for streams where only the newest message matters (safe to conflate)."""
        return self in _LATEST_VALUE


_LATEST_VALUE = frozenset(
    {
        StreamKind.MINI_TICKER,
        StreamKind.TICKER,
        StreamKind.ROLLING_TICKER,
        StreamKind.BOOK_TICKER,
        StreamKind.AVG_PRICE,
        StreamKind.REFERENCE_PRICE,
        StreamKind.PARTIAL_DEPTH,
    }
)

_SIMPLE = {
    "trade": StreamKind.TRADE,
    "aggTrade": StreamKind.AGG_TRADE,
    "blockTrade": StreamKind.BLOCK_TRADE,
    "miniTicker": StreamKind.MINI_TICKER,
    "ticker": StreamKind.TICKER,
    "bookTicker": StreamKind.BOOK_TICKER,
    "avgPrice": StreamKind.AVG_PRICE,
    "referencePrice": StreamKind.REFERENCE_PRICE,
}
_SIMPLE_WIRE = {kind: wire for wire, kind in _SIMPLE.items()}
_FORBIDDEN_SYMBOL_CHARS = frozenset("@/!?&#%= \t\r\n\"'\\")


def normalize_symbol(symbol: str) -> str:
    """Return the canonical (uppercase) symbol, or raise `InvalidStreamName` if unusable."""
    if not isinstance(symbol, str) or not symbol.strip():
        raise InvalidStreamName(f"symbol must be a non-empty string, got {symbol!r}")
    bad = _FORBIDDEN_SYMBOL_CHARS.intersection(symbol)
    if bad:
        raise InvalidStreamName(
            f"symbol {symbol!r} contains {''.join(sorted(bad))!r}; "
            "symbols are letters and digits such as 'BTCUSDT'"
        )
    if len(symbol) > 32:
        raise InvalidStreamName(f"symbol {symbol!r} is longer than 32 characters")
    return symbol.upper()


#: Separators of common symbol spellings (``BTC/USDT``, ``BTC-USDT``, ``btc_usdt``).
_SYMBOL_SEPARATORS = str.maketrans("", "", "/-_")


def canonical_symbol(spelling: str) -> str:
    """``BTCUSDT`` for ``btcusdt``, ``BTC/USDT``, ``BTC-USDT`` or ``btc_usdt``: separators
    dropped, uppercase. Checks nothing (`normalize_symbol` does), so a lookup never raises."""
    return spelling.strip().translate(_SYMBOL_SEPARATORS).upper()


def _check_interval(interval: str) -> str:
    if interval not in INTERVALS:
        raise InvalidStreamName(
            f"unknown kline interval {interval!r}; allowed: {', '.join(INTERVALS)}"
        )
    return interval


@attrs.frozen(slots=True)
class Stream:
    """One market stream, validated; ``name`` is its exact wire name."""

    kind: StreamKind
    symbol: str | None = None
    interval: str | None = None
    levels: int | None = None
    speed_ms: int = 1000
    window: str | None = None
    tz_offset: str | None = None

    @property
    def name(self) -> str:
        """The wire name, e.g. ``btcusdt@kline_1m`` or ``!miniTicker@arr``."""
        kind = self.kind
        if kind is StreamKind.ALL_MINI_TICKERS:
            return "!miniTicker@arr"
        if kind is StreamKind.ALL_ROLLING_TICKERS:
            return f"!ticker_{self.window}@arr"
        assert self.symbol is not None
        sym = self.symbol.lower()
        if kind is StreamKind.KLINE:
            tz = f"@{self.tz_offset}" if self.tz_offset else ""
            return f"{sym}@kline_{self.interval}{tz}"
        if kind is StreamKind.ROLLING_TICKER:
            return f"{sym}@ticker_{self.window}"
        if kind in (StreamKind.PARTIAL_DEPTH, StreamKind.DIFF_DEPTH):
            depth = f"depth{self.levels}" if kind is StreamKind.PARTIAL_DEPTH else "depth"
            speed = "@100ms" if self.speed_ms == 100 else ""
            return f"{sym}@{depth}{speed}"
        return f"{sym}@{_SIMPLE_WIRE[kind]}"

    def __str__(self) -> str:
        return self.name


# Builders: each validates its arguments and returns a Stream.


def trade(symbol: str) -> Stream:
    """``<symbol>@trade``: every trade."""
    return Stream(StreamKind.TRADE, normalize_symbol(symbol))


def agg_trade(symbol: str) -> Stream:
    """``<symbol>@aggTrade``: aggregate trades."""
    return Stream(StreamKind.AGG_TRADE, normalize_symbol(symbol))


def block_trade(symbol: str) -> Stream:
    """``<symbol>@blockTrade``: block trades."""
    return Stream(StreamKind.BLOCK_TRADE, normalize_symbol(symbol))


def kline(symbol: str, interval: str, tz_offset: str | None = None) -> Stream:
    """``<symbol>@kline_<interval>[@+08:00]``: candle updates for one interval."""
    if tz_offset is not None and tz_offset not in KLINE_OFFSETS:
        raise InvalidStreamName(
            f"unknown kline offset {tz_offset!r}; allowed: {', '.join(KLINE_OFFSETS)}"
        )
    return Stream(
        StreamKind.KLINE, normalize_symbol(symbol), interval=_check_interval(interval),
        tz_offset=tz_offset,
    )  # fmt: skip


def mini_ticker(symbol: str) -> Stream:
    """``<symbol>@miniTicker``: 24h rolling mini ticker."""
    return Stream(StreamKind.MINI_TICKER, normalize_symbol(symbol))


def ticker(symbol: str) -> Stream:
    """``<symbol>@ticker``: 24h rolling ticker."""
    return Stream(StreamKind.TICKER, normalize_symbol(symbol))


def rolling_ticker(symbol: str, window: str) -> Stream:
    """``<symbol>@ticker_<window>``: rolling-window ticker (1h, 4h, 1d)."""
    if window not in ROLLING_WINDOWS:
        raise InvalidStreamName(
            f"unknown ticker window {window!r}; allowed: {', '.join(ROLLING_WINDOWS)}"
        )
    return Stream(StreamKind.ROLLING_TICKER, normalize_symbol(symbol), window=window)


def book_ticker(symbol: str) -> Stream:
    """``<symbol>@bookTicker``: best bid/ask."""
    return Stream(StreamKind.BOOK_TICKER, normalize_symbol(symbol))


def avg_price(symbol: str) -> Stream:
    """``<symbol>@avgPrice``: the exchange's rolling average price."""
    return Stream(StreamKind.AVG_PRICE, normalize_symbol(symbol))


def reference_price(symbol: str) -> Stream:
    """``<symbol>@referencePrice``: reference price."""
    return Stream(StreamKind.REFERENCE_PRICE, normalize_symbol(symbol))


def _check_speed(speed_ms: int) -> int:
    if speed_ms not in UPDATE_SPEEDS_MS:
        raise InvalidStreamName(
            f"unknown update speed {speed_ms!r} ms; allowed: "
            f"{', '.join(str(s) for s in UPDATE_SPEEDS_MS)}"
        )
    return speed_ms


def partial_depth(symbol: str, levels: int, speed_ms: int = 1000) -> Stream:
    """``<symbol>@depth<levels>[@100ms]``: top-N book snapshots."""
    if levels not in DEPTH_LEVELS:
        raise InvalidStreamName(
            f"unknown depth level {levels!r}; allowed: {', '.join(map(str, DEPTH_LEVELS))}"
        )
    return Stream(
        StreamKind.PARTIAL_DEPTH, normalize_symbol(symbol), levels=levels,
        speed_ms=_check_speed(speed_ms),
    )  # fmt: skip


def diff_depth(symbol: str, speed_ms: int = 1000) -> Stream:
    """``<symbol>@depth[@100ms]``: order-book diffs."""
    return Stream(StreamKind.DIFF_DEPTH, normalize_symbol(symbol), speed_ms=_check_speed(speed_ms))


def all_mini_tickers() -> Stream:
    """``!miniTicker@arr``: mini tickers of every changed symbol."""
    return Stream(StreamKind.ALL_MINI_TICKERS)


def all_rolling_tickers(window: str) -> Stream:
    """``!ticker_<window>@arr``: rolling tickers of every changed symbol."""
    if window not in ROLLING_WINDOWS:
        raise InvalidStreamName(
            f"unknown ticker window {window!r}; allowed: {', '.join(ROLLING_WINDOWS)}"
        )
    return Stream(StreamKind.ALL_ROLLING_TICKERS, window=window)


def parse_stream(name: str) -> Stream:
    """Parse a wire name into a `Stream`; an uppercase symbol part is normalised.

    Raises `InvalidStreamName` with a message that says what is allowed.
    """
    if not isinstance(name, str) or not name:
        raise InvalidStreamName(f"stream name must be a non-empty string, got {name!r}")
    if name.startswith("!"):
        if name == "!miniTicker@arr":
            return all_mini_tickers()
        if name.startswith("!ticker_") and name.endswith("@arr"):
            return all_rolling_tickers(name[len("!ticker_") : -len("@arr")])
        raise InvalidStreamName(
            f"unknown market-wide stream {name!r}; allowed: !miniTicker@arr, "
            + ", ".join(f"!ticker_{w}@arr" for w in ROLLING_WINDOWS)
        )
    symbol, sep, rest = name.partition("@")
    if not sep or not rest:
        raise InvalidStreamName(
            f"stream name {name!r} must look like '<symbol>@<type>', e.g. 'btcusdt@trade'"
        )
    if rest in _SIMPLE:
        return Stream(_SIMPLE[rest], normalize_symbol(symbol))
    if rest.startswith("kline_"):
        interval, _, tz = rest[len("kline_") :].partition("@")
        return kline(symbol, interval, tz or None)
    if rest.startswith("ticker_"):
        return rolling_ticker(symbol, rest[len("ticker_") :])
    if rest.startswith("depth"):
        body, _, speed = rest.partition("@")
        if speed and speed != "100ms":
            raise InvalidStreamName(
                f"unknown update speed {speed!r} in {name!r}; allowed: '@100ms' or none"
            )
        speed_ms = 100 if speed else 1000
        if body == "depth":
            return diff_depth(symbol, speed_ms)
        digits = body[len("depth") :]
        if not digits.isdigit():
            raise InvalidStreamName(
                f"unknown depth stream {name!r}; allowed: depth, depth5, depth10, depth20"
            )
        return partial_depth(symbol, int(digits), speed_ms)
    raise InvalidStreamName(
        f"unknown stream type {rest!r} in {name!r}; allowed: "
        + ", ".join([*_SIMPLE, "kline_<interval>", "ticker_<window>", "depth", "depth<N>"])
    )


def stream_names(streams: Iterable[Stream | str]) -> list[str]:
    """Wire names of ``streams`` (strings are validated and normalised), without repeats."""
    seen: dict[str, None] = {}
    for s in streams:
        seen[(parse_stream(s) if isinstance(s, str) else s).name] = None
    return list(seen)


def combined_url(base: str, streams: Iterable[Stream | str], time_unit: str | None = None) -> str:
    """The combined-stream URL ``<base>/stream?streams=a/b/c`` (optionally ``timeUnit``).

    ``base`` is the host part, e.g. ``wss://stream.binance.com:9443``. With no streams
    the URL is the bare ``/stream`` endpoint, for subscribing later.
    """
    names = stream_names(streams)
    query: list[str] = []
    if names:
        query.append("streams=" + "/".join(urllib.parse.quote(n, safe="@/!_:") for n in names))
    if time_unit is not None:
        if time_unit.upper() not in ("MILLISECOND", "MICROSECOND"):
            raise InvalidStreamName(
                f"unknown timeUnit {time_unit!r}; allowed: MILLISECOND, MICROSECOND"
            )
        query.append(f"timeUnit={time_unit.upper()}")
    url = base.rstrip("/") + "/stream"
    return url + ("?" + "&".join(query) if query else "")


def shard_streams(
    streams: Iterable[Stream | str], max_per_connection: int = MAX_STREAMS_PER_CONNECTION
) -> list[list[str]]:
    """Split streams into groups of at most ``max_per_connection``, keeping a symbol together.

    Streams of one symbol stay on one connection where they fit, so that a symbol's
    events arrive in order over a single socket.
    """
    if max_per_connection < 1:
        raise InvalidStreamName(f"max_per_connection must be >= 1, got {max_per_connection}")
    by_symbol: dict[str | None, list[str]] = {}
    for name in stream_names(streams):
        by_symbol.setdefault(parse_stream(name).symbol, []).append(name)
    groups: list[list[str]] = []
    current: list[str] = []
    for names in by_symbol.values():
        if len(current) + len(names) > max_per_connection and current:
            groups.append(current)
            current = []
        for n in names:
            if len(current) == max_per_connection:
                groups.append(current)
                current = []
            current.append(n)
    if current:
        groups.append(current)
    return groups


def chunk_for_control(names: Sequence[str], max_bytes: int = 3000) -> list[list[str]]:
    """Split names so that each SUBSCRIBE frame stays well under the exchange's ~4 KB limit."""
    chunks: list[list[str]] = []
    current: list[str] = []
    size = 0
    for n in names:
        cost = len(n.encode()) + 3  # quotes and comma
        if current and size + cost > max_bytes:
            chunks.append(current)
            current, size = [], 0
        current.append(n)
        size += cost
    if current:
        chunks.append(current)
    return chunks
