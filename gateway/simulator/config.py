"""`SimulatorConfig`: every interval, limit and market option of the embedded exchange.

Defaults are the exchange's documented values (binance-market-streams.md, sections 0 and 2),
so a client tested against the defaults meets the real limits. Every interval is a plain
number of seconds so tests can compress 24 hours into a second.
"""

from __future__ import annotations

import enum
from typing import Any

import attrs

from gateway.core.streams import normalize_symbol
from gateway.errors import ConfigError, InvalidStreamName
from gateway.validators import non_negative, positive, positive_int

__all__ = ["ClockKind", "Pacing", "SimulatorConfig", "TimeUnit"]


class Pacing(enum.Enum):
    """How the order flow is driven."""

    RATE = "rate"  #: ``rate`` trades per second in total, sent in small bursts per tick
    MAX = "max"  #: as fast as the subscribed clients take them (bursts with backpressure)
    MANUAL = "manual"  #: nothing flows until a test calls ``control.generate()``/``tick()``
    REPLAY = "replay"  #: frames of a recording (``replay_file``) at ``replay_speed``


class ClockKind(enum.Enum):
    """Where event times come from."""

    WALL = "wall"  #: ``time.time()``: benchmarks and the command line
    VIRTUAL = "virtual"  #: a fixed epoch + ``trio.current_time()``: deterministic under MockClock


class TimeUnit(enum.Enum):
    """The default time unit of the REST side (streams choose per connection in the URL)."""

    MILLISECOND = "MILLISECOND"
    MICROSECOND = "MICROSECOND"


def _symbols(value: Any) -> tuple[str, ...]:
    if isinstance(value, str):
        value = [s for s in value.replace(",", " ").split() if s]
    try:
        out = tuple(dict.fromkeys(normalize_symbol(s) for s in value))
    except InvalidStreamName as exc:
        raise ConfigError(f"symbols: {exc}") from None
    except TypeError:
        raise ConfigError(f"symbols must be a list of names, got {value!r}") from None
    if not out:
        raise ConfigError("symbols must name at least one symbol, e.g. ['BTCUSDT']")
    return out


def _enum(kind: type[enum.Enum], name: str, value: Any) -> Any:
    if isinstance(value, kind):
        return value
    try:
        return kind(value.upper() if kind is TimeUnit else value.lower())
    except (ValueError, AttributeError):
        allowed = ", ".join(str(m.value) for m in kind)
        raise ConfigError(f"{name} must be one of {allowed}, got {value!r}") from None


def _clock(value: Any) -> ClockKind:
    result: ClockKind = _enum(ClockKind, "clock", value)
    return result


def _time_unit(value: Any) -> TimeUnit:
    result: TimeUnit = _enum(TimeUnit, "time_unit", value)
    return result


def _pacing(value: Any) -> Pacing:
    result: Pacing = _enum(Pacing, "pacing", value)
    return result


@attrs.frozen(slots=True, kw_only=True)
class SimulatorConfig:
    """Everything the embedded exchange can be told; invalid values raise `ConfigError`.

    Connection rules (seconds / counts) default to the exchange's documented values.
    Market options describe the seeded random market; pacing options how fast it flows.
    """

    # --- where to listen -------------------------------------------------------------
    host: str = "127.0.0.1"
    port: int = 0  #: WebSocket port; 0 picks a free one
    rest_port: int = 0  #: REST port; 0 picks a free one
    rest: bool = True  #: serve the REST side at all
    #: Serve ``wss://`` and ``https://`` under a throwaway CA (``Simulator.ca_file``).
    tls: bool = False

    # --- connection rules ------------------------------------------------------------
    ping_interval: float = attrs.field(default=20.0, validator=positive)
    pong_timeout: float = attrs.field(default=60.0, validator=positive)
    max_incoming_per_second: int = attrs.field(default=5, validator=positive_int)
    max_streams_per_connection: int = attrs.field(default=1024, validator=positive_int)
    max_connection_attempts: int = attrs.field(default=300, validator=positive_int)
    connection_attempt_window: float = attrs.field(default=300.0, validator=positive)
    connection_lifetime: float = attrs.field(default=86400.0, validator=positive)
    shutdown_notice: bool = False  #: send ``serverShutdown`` before the lifetime close
    shutdown_lead: float = attrs.field(default=1.0, validator=non_negative)
    max_control_frame_bytes: int = attrs.field(default=4096, validator=positive_int)
    max_message_size: int = attrs.field(default=2**20, validator=positive_int)
    close_timeout: float = attrs.field(default=2.0, validator=positive)
    #: outgoing frames buffered per client; a client that lets it fill is disconnected
    client_buffer_frames: int = attrs.field(default=50_000, validator=positive_int)

    # --- market ----------------------------------------------------------------------
    symbols: tuple[str, ...] = attrs.field(default=("BTCUSDT", "ETHUSDT"), converter=_symbols)
    seed: int = 0
    start_price: float = attrs.field(default=100.0, validator=positive)
    tick_size: float = attrs.field(default=0.01, validator=positive)
    #: standard deviation of the price move per trade, as a fraction of the price
    volatility: float = attrs.field(default=0.0002, validator=non_negative)
    book_levels: int = attrs.field(default=100, validator=positive_int)
    #: aggregate trades REST keeps per symbol (deep enough to backfill a 25,000-id gap)
    agg_history: int = attrs.field(default=50_000, validator=positive_int)
    #: plain trades REST keeps per symbol for ``historicalTrades``
    trade_history: int = attrs.field(default=50_000, validator=positive_int)
    kline_history: int = attrs.field(default=1000, validator=positive_int)
    clock: ClockKind = attrs.field(default=ClockKind.WALL, converter=_clock)
    #: epoch (Unix seconds) of virtual time 0 (2026-01-01T00:00:00Z)
    virtual_epoch: float = attrs.field(default=1767225600.0, validator=non_negative)
    time_unit: TimeUnit = attrs.field(default=TimeUnit.MILLISECOND, converter=_time_unit)

    # --- pacing ----------------------------------------------------------------------
    pacing: Pacing = attrs.field(default=Pacing.RATE, converter=_pacing)
    rate: float = attrs.field(default=100.0, validator=positive)  #: trades/s, all symbols
    tick_interval: float = attrs.field(default=0.005, validator=positive)
    max_burst: int = attrs.field(default=500, validator=positive_int)  #: trades per burst (max)
    replay_file: str | None = None
    replay_speed: float = attrs.field(default=1.0, validator=non_negative)  #: 0 = max
    replay_wait_for_subscriber: bool = True
    replay_loop: bool = False
    #: A recording's ``rest.txt``: its depth snapshots answer ``/api/v3/depth`` (the last
    #: one recorded per symbol), so order books sync on replayed diffs.
    replay_rest_file: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.pacing is Pacing.REPLAY and not self.replay_file:
            raise ConfigError("pacing 'replay' needs replay_file (a stream.txt recording)")
        if self.shutdown_notice and self.shutdown_lead >= self.connection_lifetime:
            raise ConfigError(
                f"shutdown_lead ({self.shutdown_lead}) must be shorter than "
                f"connection_lifetime ({self.connection_lifetime})"
            )
        for name in ("port", "rest_port"):
            value = getattr(self, name)
            if type(value) is not int or not 0 <= value <= 65535:
                raise ConfigError(f"{name} must be an integer 0..65535, got {value!r}")
        if self.start_price / self.tick_size < 10 * self.book_levels:
            raise ConfigError(
                f"start_price {self.start_price} is too close to zero for tick_size "
                f"{self.tick_size} and book_levels {self.book_levels}: need at least "
                f"{10 * self.book_levels} ticks"
            )
        if round(self.tick_size * 1e8) < 1:
            raise ConfigError(f"tick_size must be at least 1e-8, got {self.tick_size}")

    @classmethod
    def from_kwargs(cls, **kwargs: Any) -> SimulatorConfig:
        """Build a config from keyword arguments; an unknown key raises `ConfigError`."""
        fields = {f.name for f in attrs.fields(cls)}
        unknown = sorted(set(kwargs) - fields)
        if unknown:
            raise ConfigError(
                f"unknown simulator option(s) {', '.join(unknown)}; allowed: "
                + ", ".join(sorted(fields))
            )
        return cls(**kwargs)
