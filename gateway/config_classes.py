"""The configuration's attrs classes and their field converters and validators.

Each validator raises a `ConfigError` naming the field, its value and what is allowed;
`gateway.config` structures these classes from TOML and dicts and re-exports them.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import attrs

from gateway.core.redact import redact_url
from gateway.core.stop_loss import Side
from gateway.core.streams import canonical_symbol, normalize_symbol, parse_stream
from gateway.endpoints import BINANCE_URL, REST_AUTO, TESTNET_REST_URL, TESTNET_URL, rest_url_for
from gateway.errors import ConfigError, InvalidStreamName
from gateway.validators import (
    http_url_auto_or_empty,
    non_negative,
    non_negative_int,
    one_of,
    positive,
    positive_int,
    ws_url,
)


def _url_repr(url: str) -> str:
    """A URL field's repr, with its credentials masked."""
    return repr(redact_url(url)) if isinstance(url, str) else repr(url)


def _canonical_symbols(value: Any) -> Any:
    """Common spellings (``btc/usdt``, ``BTC-USDT``) as ``BTCUSDT``, repeats dropped;
    anything but a sequence of strings is left for the validator to name."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        return value
    if not all(isinstance(v, str) for v in value):
        return value
    return tuple(dict.fromkeys(canonical_symbol(v) for v in value))


def _canonical(value: Any) -> Any:
    """One symbol's common spelling as ``BTCUSDT`` (a non-string is left as it is)."""
    return canonical_symbol(value) if isinstance(value, str) else value


def _names(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    """A sequence of strings, not a bare string (whose letters would become names)."""
    if isinstance(value, str):
        raise ConfigError(
            f"{attribute.name} must be a list of names, e.g. ('BTCUSDT',), got the string "
            f"{value!r} (config_from_dict and open_gateway's keywords split 'A,B' for you)"
        )
    if not isinstance(value, Sequence):
        raise ConfigError(f"{attribute.name} must be a list of names, got {value!r}")
    for i, item in enumerate(value):
        if not isinstance(item, str):
            raise ConfigError(f"{attribute.name}[{i}] must be a string, got {item!r}")


@attrs.frozen
class ReconnectConfig:
    """Reconnect policy: exponential backoff with full jitter, then give up."""

    initial: float = attrs.field(default=0.5, validator=positive)
    factor: float = attrs.field(default=2.0, validator=positive)
    cap: float = attrs.field(default=30.0, validator=positive)
    max_attempts: int = attrs.field(default=10, validator=positive_int)


@attrs.frozen
class PositionConfig:
    """An open position protected by a stop-loss (percent from entry or absolute price)."""

    symbol: str = attrs.field(converter=_canonical)
    side: Side
    entry_price: float = attrs.field(validator=positive)
    quantity: float = attrs.field(default=0.0, validator=non_negative)
    stop_pct: float | None = None
    stop_price: float | None = None
    id: str | None = None

    def __attrs_post_init__(self) -> None:
        if (self.stop_pct is None) == (self.stop_price is None):
            raise ValueError("give exactly one of stop_pct and stop_price")
        if self.stop_pct is not None and not 0 < self.stop_pct < 1:
            raise ValueError(f"stop_pct must be between 0 and 1, got {self.stop_pct!r}")


def _reconnect(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    """A `ReconnectConfig` (a dict is converted on the way in, not here)."""
    if not isinstance(value, ReconnectConfig):
        raise ConfigError(
            f"{attribute.name} must be a ReconnectConfig, got {value!r} "
            "(config_from_dict and open_gateway's keywords also take a dict)"
        )


def _positions(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    """A sequence of `PositionConfig` (dicts are converted on the way in, not here)."""
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise ConfigError(f"{attribute.name} must be a list of PositionConfig, got {value!r}")
    for i, item in enumerate(value):
        if not isinstance(item, PositionConfig):
            raise ConfigError(
                f"{attribute.name}[{i}] must be a PositionConfig, got {item!r} "
                "(config_from_dict and open_gateway's keywords also take dicts)"
            )


def _at_least_two(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    """A finite number >= 2: one cadence late is jitter, not silence."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not 2 <= value < math.inf:
        raise ConfigError(f"{attribute.name} must be a number of at least 2, got {value!r}")


def _ca_file(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    """``""`` (the system's trust store only) or a file that exists."""
    if not isinstance(value, str):
        raise ConfigError(f"{attribute.name} must be a path to a PEM file or '', got {value!r}")
    if value and not Path(value).is_file():
        raise ConfigError(f"{attribute.name}: no such file {value!r} (a PEM file of CA "
                          "certificates to trust, e.g. the embedded exchange's sim.ca_file)")


def _warmup(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    """An integer 0..999: the last candles of one REST page (its open candle dropped)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 999:
        raise ConfigError(f"{attribute.name} must be an integer from 0 to 999, got {value!r}")


def _seed(_inst: object, attribute: attrs.Attribute[Any], value: Any) -> None:
    """None or an integer."""
    if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
        raise ConfigError(f"{attribute.name} must be an integer or None, got {value!r}")


@attrs.frozen
class GatewayConfig:
    """Everything a gateway needs; every field has a sensible default but ``symbols``."""

    #: Spellings such as ``btcusdt``, ``BTC/USDT``, ``BTC-USDT`` become ``BTCUSDT``.
    #: `open_gateway` checks them against the exchange's ``exchangeInfo``.
    symbols: tuple[str, ...] = attrs.field(
        default=(), converter=_canonical_symbols, validator=_names
    )
    #: Stream suffixes opened for every symbol, e.g. ``trade``, ``kline_1m``, ``ticker``.
    streams: tuple[str, ...] = attrs.field(default=("trade",), validator=_names)
    #: Full stream names opened in addition (their symbols join ``symbols``).
    extra_streams: tuple[str, ...] = attrs.field(default=(), validator=_names)
    #: The stream endpoint: ``ws://`` or ``wss://`` (TLS) with a host, nothing else.
    url: str = attrs.field(default=BINANCE_URL, validator=ws_url, repr=_url_repr)
    #: The REST endpoint (symbol checks, depth snapshots, backfill, warm-up, price
    #: fallback): ``http://`` or ``https://``; empty: no REST. ``"auto"`` (the default):
    #: follows ``url`` (`rest_url_for`: a Binance stream host's REST host, else the same
    #: host and port). Credentials in it are sent as HTTP basic auth.
    rest_url: str = attrs.field(
        default=REST_AUTO, validator=http_url_auto_or_empty, repr=_url_repr
    )
    #: Check ``symbols`` (and symbols added later) against the exchange's
    #: ``exchangeInfo`` first: unknown ones are a `ConfigError`, a status other than
    #: ``TRADING`` a warning. False: no check (an endpoint without ``exchangeInfo``).
    check_symbols: bool = True
    #: A PEM file of CA certificates trusted for ``wss://`` and ``https://``, on top of
    #: the system's store (e.g. ``Simulator.ca_file`` of an exchange run with ``tls=True``).
    ca_file: str = attrs.field(default="", validator=_ca_file)
    #: REST backfill: trade or aggregate-trade ids fetched per gap at most (1000 a page,
    #: weight 25 or 4 each); the rest of a bigger gap is reported as `GapUnfilled`.
    backfill_max_ids: int = attrs.field(default=100_000, validator=positive_int)
    #: In order for subscribers: live trades (per symbol and stream) after a gap being
    #: backfilled are held at most this many (0: never held) and this long (seconds),
    #: then published after the backfilled ones. Stop-losses never wait for them.
    hold_max_events: int = attrs.field(default=10_000, validator=non_negative_int)
    hold_max_seconds: float = attrs.field(default=10.0, validator=positive)
    #: Events held by all symbols together at most (live ones and backfilled rows waiting
    #: behind an older gap; 0: no gateway-wide bound): one bound on the memory a gap storm
    #: takes (about 0.4 kB an event), whatever the number of symbols. The hold that would
    #: pass it is released as if at its own bound.
    hold_max_total: int = attrs.field(default=50_000, validator=non_negative_int)
    #: A hold that reaches its bound publishes what it holds; its gaps still pending then
    #: end in `GapUnfilled` and their rows, when they come, only feed the stop-loss book
    #: (``"unfilled"``: ids never go back), or are published late (``"late"``).
    hold_overflow: str = attrs.field(
        default="unfilled", validator=one_of("unfilled", "late")
    )
    #: REST weight the gateway spends per minute at most, all symbols together (the
    #: exchange's cap is 6000); ``X-MBX-USED-WEIGHT-1M`` is tracked and requests wait.
    rest_weight_per_minute: int = attrs.field(default=5000, validator=positive_int)
    #: One REST request that has not answered after this long has failed (and is retried).
    rest_timeout: float = attrs.field(default=10.0, validator=positive)
    #: Retries of a REST request (5xx, timeout, connection error, 429/418) before it fails.
    rest_retries: int = attrs.field(default=4, validator=non_negative_int)
    #: Closed candles fetched over REST per symbol and subscribed kline interval before
    #: `open_gateway` yields (0: none; at most 999, one page). A failure is reported to
    #: the error callbacks and that buffer starts empty.
    warmup_candles: int = attrs.field(default=0, validator=_warmup)
    #: A symbol with armed stops and no live trade for this many seconds (stream down,
    #: reconnecting, zombie) has its stops checked against the REST price; 0: never.
    fallback_after: float = attrs.field(default=5.0, validator=non_negative)
    #: Seconds between REST price polls of such a symbol (weight 2 each).
    fallback_interval: float = attrs.field(default=1.0, validator=positive)
    testnet: bool = False
    time_unit: str = "MILLISECOND"
    candle_buffer: int = attrs.field(default=1000, validator=positive_int)
    mailbox_size: int = attrs.field(default=10_000, validator=positive_int)
    subscriber_buffer: int = attrs.field(default=1000, validator=positive_int)
    callback_buffer: int = attrs.field(default=10_000, validator=positive_int)
    max_streams_per_connection: int = attrs.field(default=1024, validator=positive_int)
    #: Control frames per second per connection (the exchange closes at more than 5).
    control_rate: int = attrs.field(default=4, validator=positive_int)
    #: No frame for this long: ping; no frame or pong for twice this long: reconnect.
    silence_timeout: float = attrs.field(default=30.0, validator=positive)
    connect_timeout: float = attrs.field(default=10.0, validator=positive)
    #: A stream silent for this many of its push cadences (klines 2 s, tickers 1 s, depthN
    #: its speed; trades, diff depth: their recent mean inter-arrival) is checked with the exchange;
    #: a connection where every stream is, is a zombie and replaced. At least 2.
    stream_silence_factor: float = attrs.field(default=5.0, validator=_at_least_two)
    #: Trades, book tickers, diff depth that moved recently are silent after at least this.
    trade_silence_floor: float = attrs.field(default=10.0, validator=positive)
    #: A close hook that runs longer than this has failed (and is retried).
    close_hook_timeout: float = attrs.field(default=10.0, validator=positive)
    #: Rotate (make-before-break) before the exchange's 24 h limit.
    max_connection_age: float = attrs.field(default=23 * 3600.0, validator=positive)
    reconnect: ReconnectConfig = attrs.field(default=ReconnectConfig(), validator=_reconnect)
    positions: tuple[PositionConfig, ...] = attrs.field(default=(), validator=_positions)
    max_restarts: int = attrs.field(default=5, validator=non_negative)
    restart_period: float = attrs.field(default=10.0, validator=positive)
    #: A symbol past ``max_restarts`` within ``restart_period``: ``"quarantine"`` stops it
    #: alone (a `SymbolQuarantined` event); ``"raise"`` ends the gateway with
    #: `SymbolFailed` (its cause: the `RestartIntensityExceeded`).
    on_symbol_failure: str = attrs.field(
        default="quarantine", validator=one_of("quarantine", "raise")
    )

    #: Seeds the jitter of reconnect, REST-retry and actor-restart backoff, so that a run
    #: under a mock clock repeats (tests, drills such as ``gateway soak``); None: the OS.
    jitter_seed: int | None = attrs.field(default=None, validator=_seed)

    def __attrs_post_init__(self) -> None:
        unit = self.time_unit
        if not isinstance(unit, str) or unit.upper() not in ("MILLISECOND", "MICROSECOND"):
            raise ConfigError(
                f"time_unit must be MILLISECOND or MICROSECOND, got {self.time_unit!r}"
            )
        for i, symbol in enumerate(self.symbols):
            try:
                normalize_symbol(symbol)
            except InvalidStreamName as exc:
                raise ConfigError(f"symbols[{i}]: {exc}") from None
        if self.symbols and not self.streams:
            raise ConfigError(
                f"streams must name at least one stream suffix (e.g. 'trade') for symbols "
                f"{', '.join(self.symbols)}; got {self.streams!r}"
            )
        self.stream_names()  # validates symbols and stream suffixes

    def resolved_url(self) -> str:
        """The stream endpoint used: ``url``, or the test network's when ``testnet`` is
        set and ``url`` is left at production's default."""
        return TESTNET_URL if self.testnet and self.url == BINANCE_URL else self.url

    def resolved_rest_url(self) -> str:
        """The REST endpoint used: ``rest_url``, or `rest_url_for` the stream endpoint
        when it is ``"auto"``; empty: no REST."""
        if self.rest_url == REST_AUTO:
            return rest_url_for(self.resolved_url())
        return self.rest_url

    def stream_names(self) -> list[str]:
        """Wire names of every stream, validated (raises `ConfigError` on a bad one)."""
        names: list[str] = []
        for name in self.extra_streams:
            try:
                names.append(parse_stream(name).name)
            except InvalidStreamName as exc:
                raise ConfigError(f"extra_streams: {exc}") from None
        for symbol in self.symbols:
            for suffix in self.streams:
                try:
                    names.append(parse_stream(f"{symbol.lower()}@{suffix}").name)
                except InvalidStreamName as exc:
                    raise ConfigError(f"streams: {suffix!r} for {symbol!r}: {exc}") from None
        return list(dict.fromkeys(names))

    def all_symbols(self) -> tuple[str, ...]:
        """``symbols`` plus the symbols of ``extra_streams``, uppercase, without repeats."""
        found = [s.upper() for s in self.symbols]
        for name in self.extra_streams:
            sym = parse_stream(name).symbol
            if sym is not None:
                found.append(sym)
        return tuple(dict.fromkeys(found))

    def with_testnet(self) -> GatewayConfig:
        """The same configuration pointed at the exchange's test network."""
        return attrs.evolve(self, url=TESTNET_URL, rest_url=TESTNET_REST_URL, testnet=True)
