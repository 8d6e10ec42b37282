"""The older WebSocket layer's field names, kept as read-only aliases on today's events
(``timestamp`` for a trade's time, ``price`` and ``price_change_pct`` for a ticker's), so
that code written against it reads the same fields."""

from __future__ import annotations

__all__ = ["TickerOldNames", "TradeOldNames"]


class TradeOldNames:
    """The older layer's name for a trade's time."""

    __slots__ = ()
    trade_time: int

    @property
    def timestamp(self) -> int:
        """Trade time (older layer's name)."""
        return self.trade_time


class TickerOldNames:
    """The older layer's names for a ticker's last price and change percent."""

    __slots__ = ()
    last_price: float
    price_change_percent: float

    @property
    def price(self) -> float:
        """Last price (older layer's name)."""
        return self.last_price

    @property
    def price_change_pct(self) -> float:
        """Price change percent (older layer's name)."""
        return self.price_change_percent
