"""Building the hottest events (`Trade`, `AggTrade`, and the two kinds that dominate real
feeds, `BookTicker` and `DepthUpdate`) at a fraction of the cost of their attrs
``__init__``: the same frozen, slotted instances, equal to what the class
would build, but with their slots filled through the slots' own descriptors instead of a
bound ``object.__setattr__`` per field (decode of a trade frame spends most of its time
there). The codec uses these; everything else keeps calling the classes.

The field order is checked against ``attrs.fields`` when this module is imported, so a
field added to any of these classes cannot be silently left unset.
"""

from __future__ import annotations

from typing import Any

import attrs

from gateway.core.events import AggTrade, BookTicker, DepthUpdate, Level, Trade

__all__ = ["new_agg_trade", "new_book_ticker", "new_depth_update", "new_trade"]

_new = object.__new__


def _setters(cls: type, names: tuple[str, ...]) -> tuple[Any, ...]:
    """Each slot's setter of ``cls``, in field order (checked against ``attrs.fields``)."""
    if tuple(f.name for f in attrs.fields(cls)) != names:  # pragma: no cover
        raise ImportError(f"gateway.core.fast_events: {cls.__name__}'s fields changed")
    return tuple(cls.__dict__[name].__set__ for name in names)


(_t_symbol, _t_id, _t_price, _t_qty, _t_time, _t_maker, _t_event, _t_rns,
 _t_backfilled) = _setters(Trade, (
    "symbol", "trade_id", "price", "quantity", "trade_time", "is_buyer_maker", "event_time",
    "receive_ns", "backfilled"))  # fmt: skip
(_a_symbol, _a_id, _a_price, _a_qty, _a_first, _a_last, _a_time, _a_maker, _a_event, _a_rns,
 _a_backfilled) = _setters(AggTrade, (
    "symbol", "agg_trade_id", "price", "quantity", "first_trade_id", "last_trade_id",
    "trade_time", "is_buyer_maker", "event_time", "receive_ns", "backfilled"))  # fmt: skip
(_b_symbol, _b_id, _b_bid, _b_bid_qty, _b_ask, _b_ask_qty, _b_event, _b_rns) = _setters(
    BookTicker, ("symbol", "update_id", "bid_price", "bid_quantity", "ask_price",
                 "ask_quantity", "event_time", "receive_ns"))  # fmt: skip
(_d_symbol, _d_first, _d_final, _d_bids, _d_asks, _d_event, _d_rns) = _setters(
    DepthUpdate, ("symbol", "first_update_id", "final_update_id", "bids", "asks",
                  "event_time", "receive_ns"))  # fmt: skip


def new_trade(symbol: str, trade_id: int, price: float, quantity: float, trade_time: int,
              is_buyer_maker: bool, event_time: int, receive_ns: int) -> Trade:  # fmt: skip
    """``Trade(symbol, ..., receive_ns)`` (live: ``backfilled`` False), built fast."""
    t = _new(Trade)
    _t_symbol(t, symbol)
    _t_id(t, trade_id)
    _t_price(t, price)
    _t_qty(t, quantity)
    _t_time(t, trade_time)
    _t_maker(t, is_buyer_maker)
    _t_event(t, event_time)
    _t_rns(t, receive_ns)
    _t_backfilled(t, False)
    return t  # type: ignore[no-any-return]


def new_agg_trade(symbol: str, agg_trade_id: int, price: float, quantity: float,
                  first_trade_id: int, last_trade_id: int, trade_time: int,
                  is_buyer_maker: bool, event_time: int, receive_ns: int) -> AggTrade:  # fmt: skip
    """``AggTrade(symbol, ..., receive_ns)`` (live: ``backfilled`` False), built fast."""
    a = _new(AggTrade)
    _a_symbol(a, symbol)
    _a_id(a, agg_trade_id)
    _a_price(a, price)
    _a_qty(a, quantity)
    _a_first(a, first_trade_id)
    _a_last(a, last_trade_id)
    _a_time(a, trade_time)
    _a_maker(a, is_buyer_maker)
    _a_event(a, event_time)
    _a_rns(a, receive_ns)
    _a_backfilled(a, False)
    return a  # type: ignore[no-any-return]



def new_book_ticker(symbol: str, update_id: int, bid_price: float, bid_quantity: float,
                    ask_price: float, ask_quantity: float, event_time: int | None,
                    receive_ns: int) -> BookTicker:  # fmt: skip
    """``BookTicker(symbol, ..., receive_ns)``, built fast."""
    b = _new(BookTicker)
    _b_symbol(b, symbol)
    _b_id(b, update_id)
    _b_bid(b, bid_price)
    _b_bid_qty(b, bid_quantity)
    _b_ask(b, ask_price)
    _b_ask_qty(b, ask_quantity)
    _b_event(b, event_time)
    _b_rns(b, receive_ns)
    return b  # type: ignore[no-any-return]


def new_depth_update(symbol: str, first_update_id: int, final_update_id: int,
                     bids: tuple[Level, ...], asks: tuple[Level, ...], event_time: int,
                     receive_ns: int) -> DepthUpdate:  # fmt: skip
    """``DepthUpdate(symbol, ..., receive_ns)``, built fast."""
    d = _new(DepthUpdate)
    _d_symbol(d, symbol)
    _d_first(d, first_update_id)
    _d_final(d, final_update_id)
    _d_bids(d, bids)
    _d_asks(d, asks)
    _d_event(d, event_time)
    _d_rns(d, receive_ns)
    return d  # type: ignore[no-any-return]
