"""The codec as a specification: documented payloads, real recorded frames, fuzzing."""

from __future__ import annotations

import collections
import json
import math
import re
from typing import Any

import attrs
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import (
    AggTrade,
    AvgPrice,
    BlockTrade,
    BookTicker,
    DecodeError,
    DepthUpdate,
    Kline,
    MiniTicker,
    PartialDepth,
    ReferencePrice,
    RollingTicker,
    ServerShutdown,
    Ticker,
    Trade,
)
from gateway.core.codec import ControlEncoder, decode_frame, stream_symbol
from gateway.core.events import MARKET_EVENT_TYPES
from gateway.core.fast_events import (
    new_agg_trade,
    new_book_ticker,
    new_depth_update,
    new_trade,
)
from gateway.core.frames import ControlError, ControlReply, EventArray, UnknownEvent
from tests.recorded_data import RECORDINGS, raw_frames

# The example payloads of binance-market-streams.md, section by section.
AGG_TRADE = (
    '{"e":"aggTrade","E":1767225600512,"s":"BTCUSDT","a":3512874401,"p":"94213.57000000",'
    '"q":"0.01250000","f":5301229870,"l":5301229872,"T":1767225600511,"m":false,"M":true}'
)
TRADE = (
    '{"e":"trade","E":1767225600512,"s":"BTCUSDT","t":5301229872,"p":"94213.57000000",'
    '"q":"0.00410000","T":1767225600511,"m":false,"M":true}'
)
BLOCK_TRADE = (
    '{"e":"blockTrade","E":1767225612345,"s":"BTCUSDT","t":1187,"p":"94100.00000000",'
    '"q":"25.00000000","T":1767225612101,"m":true}'
)
KLINE = (
    '{"e":"kline","E":1767225630001,"s":"BTCUSDT","k":{"t":1767225600000,"T":1767225659999,'
    '"s":"BTCUSDT","i":"1m","f":5301229870,"L":5301231104,"o":"94213.57000000",'
    '"c":"94240.10000000","h":"94251.00000000","l":"94198.02000000","v":"12.48310000",'
    '"n":1235,"x":false,"q":"1176221.83240150","V":"7.10220000","Q":"669201.44012300","B":"0"}}'
)
MINI_TICKER = (
    '{"e":"24hrMiniTicker","E":1767225601000,"s":"BTCUSDT","c":"94240.10000000",'
    '"o":"93010.55000000","h":"95120.00000000","l":"92805.31000000","v":"15322.90412000",'
    '"q":"1438990123.55120330"}'
)
TICKER = (
    '{"e":"24hrTicker","E":1767225601000,"s":"BTCUSDT","p":"1229.55000000","P":"1.322",'
    '"w":"93911.05708695","x":"93010.54000000","c":"94240.10000000","Q":"0.00410000",'
    '"b":"94240.09000000","B":"3.51822000","a":"94240.10000000","A":"0.88190000",'
    '"o":"93010.55000000","h":"95120.00000000","l":"92805.31000000","v":"15322.90412000",'
    '"q":"1438990123.55120330","O":1767139201000,"C":1767225601000,"F":5298123001,'
    '"L":5301231104,"n":3108104}'
)
ROLLING_TICKER = (
    '{"e":"1hTicker","E":1767225601000,"s":"BTCUSDT","p":"310.12000000","P":"0.330",'
    '"o":"93929.98000000","h":"94300.00000000","l":"93850.00000000","c":"94240.10000000",'
    '"w":"94089.89891371","v":"611.20931000","q":"57508622.19302010","O":1767222000000,'
    '"C":1767225601000,"F":5301102001,"L":5301231104,"n":129104}'
)
BOOK_TICKER = (
    '{"u":81234567890,"s":"BTCUSDT","b":"94240.09000000","B":"3.51822000",'
    '"a":"94240.10000000","A":"0.88190000"}'
)
AVG_PRICE = (
    '{"e":"avgPrice","E":1767225601000,"s":"BTCUSDT","i":"5m","w":"94187.33641207",'
    '"T":1767225600511}'
)
PARTIAL_DEPTH = (
    '{"lastUpdateId":81234567890,'
    '"bids":[["94240.09000000","3.51822000"],["94240.08000000","0.00120000"]],'
    '"asks":[["94240.10000000","0.88190000"],["94240.11000000","0.00060000"]]}'
)
DEPTH_UPDATE = (
    '{"e":"depthUpdate","E":1767225601100,"s":"BTCUSDT","U":81234567891,"u":81234567934,'
    '"b":[["94240.09000000","3.41822000"],["94238.00000000","0.00000000"]],'
    '"a":[["94240.10000000","0.90190000"],["94262.55000000","0.31000000"]]}'
)
REFERENCE_PRICE = '{"e":"referencePrice","s":"BTCUSDT","r":"94190.12000000","t":1767225600987}'


def combined(stream: str, payload: str) -> str:
    return f'{{"stream":"{stream}","data":{payload}}}'


def test_trade_decodes_with_numbers_ints_and_bools() -> None:
    ev = decode_frame(TRADE, receive_ns=42)
    assert ev == Trade(
        symbol="BTCUSDT", trade_id=5301229872, price=94213.57, quantity=0.0041,
        trade_time=1767225600511, is_buyer_maker=False, event_time=1767225600512, receive_ns=42,
    )  # fmt: skip
    assert isinstance(ev.price, float) and isinstance(ev.trade_id, int)
    assert ev.timestamp == 1767225600511  # the older layer's name


def test_agg_trade_decodes() -> None:
    ev = decode_frame(combined("btcusdt@aggTrade", AGG_TRADE))
    assert isinstance(ev, AggTrade)
    assert (ev.agg_trade_id, ev.first_trade_id, ev.last_trade_id) == (
        3512874401, 5301229870, 5301229872,
    )  # fmt: skip
    assert ev.price == 94213.57 and ev.quantity == 0.0125 and ev.is_buyer_maker is False
    assert ev.timestamp == ev.trade_time == 1767225600511


def test_block_trade_decodes() -> None:
    ev = decode_frame(BLOCK_TRADE)
    assert isinstance(ev, BlockTrade)
    assert (ev.trade_id, ev.price, ev.quantity, ev.is_buyer_maker) == (1187, 94100.0, 25.0, True)


@pytest.mark.parametrize("interval", ["7m", "", "1M ", "1m@+08:00", None, 1])
def test_a_kline_of_an_interval_the_exchange_has_not_is_a_decode_error(interval: Any) -> None:
    frame = KLINE.replace('"i":"1m"', f'"i":{json.dumps(interval)}')
    assert frame != KLINE
    with pytest.raises(DecodeError, match=r"k\.i"):
        decode_frame(combined("btcusdt@kline_1m", frame))


def test_kline_decodes_with_old_names() -> None:
    ev = decode_frame(combined("btcusdt@kline_1m", KLINE))
    assert isinstance(ev, Kline)
    assert (ev.symbol, ev.interval, ev.open_time, ev.close_time) == (
        "BTCUSDT", "1m", 1767225600000, 1767225659999,
    )  # fmt: skip
    assert (ev.open, ev.high, ev.low, ev.close) == (94213.57, 94251.0, 94198.02, 94240.1)
    assert (ev.volume, ev.quote_volume, ev.trade_count) == (12.4831, 1176221.8324015, 1235)
    assert (ev.taker_buy_volume, ev.taker_buy_quote_volume) == (7.1022, 669201.440123)
    assert ev.is_closed is False
    assert (ev.timeframe, ev.is_final, ev.ts_close) == ("1m", False, 1767225659999)


def test_ticker_decodes_with_old_names() -> None:
    ev = decode_frame(TICKER)
    assert isinstance(ev, Ticker)
    assert ev.price_change == 1229.55 and ev.price_change_percent == 1.322
    assert (ev.bid_price, ev.ask_price, ev.last_price) == (94240.09, 94240.1, 94240.1)
    assert (ev.open_time, ev.close_time, ev.trade_count) == (1767139201000, 1767225601000, 3108104)
    assert (ev.price, ev.price_change_pct, ev.volume, ev.quote_volume) == (
        94240.1, 1.322, 15322.90412, 1438990123.5512033,
    )  # fmt: skip


def test_rolling_and_mini_tickers_decode() -> None:
    roll = decode_frame(ROLLING_TICKER)
    assert isinstance(roll, RollingTicker)
    assert (roll.window, roll.last_price, roll.open_time, roll.price_change_pct) == (
        "1h", 94240.1, 1767222000000, 0.33,
    )  # fmt: skip
    mini = decode_frame(MINI_TICKER)
    assert isinstance(mini, MiniTicker)
    assert (mini.close_price, mini.open_price, mini.price) == (94240.1, 93010.55, 94240.1)


def test_book_ticker_has_no_event_time() -> None:
    ev = decode_frame(combined("btcusdt@bookTicker", BOOK_TICKER), receive_ns=7)
    assert ev == BookTicker("BTCUSDT", 81234567890, 94240.09, 3.51822, 94240.1, 0.8819, None, 7)


def test_avg_and_reference_price_decode() -> None:
    avg = decode_frame(AVG_PRICE)
    assert avg == AvgPrice("BTCUSDT", "5m", 94187.33641207, 1767225600511, 1767225601000)
    ref = decode_frame(REFERENCE_PRICE)
    assert ref == ReferencePrice("BTCUSDT", 94190.12, 1767225600987, None)
    none = decode_frame('{"e":"referencePrice","s":"BTCUSDT","r":null,"t":1}')
    assert isinstance(none, ReferencePrice) and none.price is None


def test_partial_depth_takes_symbol_from_the_stream_name() -> None:
    ev = decode_frame(combined("btcusdt@depth5@100ms", PARTIAL_DEPTH))
    assert isinstance(ev, PartialDepth)
    assert (ev.symbol, ev.levels, ev.last_update_id) == ("BTCUSDT", 5, 81234567890)
    assert ev.bids == ((94240.09, 3.51822), (94240.08, 0.0012))
    raw = decode_frame(PARTIAL_DEPTH)
    assert isinstance(raw, PartialDepth) and raw.symbol == ""  # raw mode cannot know it


def test_diff_depth_decodes_levels() -> None:
    ev = decode_frame(DEPTH_UPDATE)
    assert isinstance(ev, DepthUpdate)
    assert (ev.first_update_id, ev.final_update_id) == (81234567891, 81234567934)
    assert ev.bids == ((94240.09, 3.41822), (94238.0, 0.0))
    assert ev.asks == ((94240.1, 0.90190), (94262.55, 0.31))


def test_server_shutdown_in_both_forms() -> None:
    raw = decode_frame('{"e": "serverShutdown", "E": 1767225900000}')
    wrapped = decode_frame(
        '{"stream": "!serverShutdown", "data": {"e": "serverShutdown", "E": 1767225900000}}'
    )
    assert raw == wrapped == ServerShutdown(1767225900000)


def test_market_wide_arrays_decode_to_event_arrays() -> None:
    ev = decode_frame(combined("!miniTicker@arr", f"[{MINI_TICKER},{MINI_TICKER}]"))
    assert isinstance(ev, EventArray) and ev.stream == "!miniTicker@arr"
    assert [type(e) for e in ev.events] == [MiniTicker, MiniTicker]
    raw = decode_frame(f"[{ROLLING_TICKER}]")
    assert isinstance(raw, EventArray) and isinstance(raw.events[0], RollingTicker)


def test_control_replies_and_errors() -> None:
    assert decode_frame('{"result": null, "id": 1}') == ControlReply(1, None)
    assert decode_frame('{"result": ["btcusdt@aggTrade"], "id": 3}') == ControlReply(
        3, ["btcusdt@aggTrade"]
    )
    nested = decode_frame(
        '{"error": {"code": 2, "msg": "Invalid request: invalid stream"}, "id": 2}'
    )
    assert nested == ControlError(2, 2, "Invalid request: invalid stream")
    flat = decode_frame('{"code": 3, "msg": "Invalid JSON", "id": null}')
    assert flat == ControlError(None, 3, "Invalid JSON")


def test_unknown_but_well_formed_event_keeps_the_raw_dict() -> None:
    ev = decode_frame(
        combined("btcusdt@markPrice", '{"e":"markPriceUpdate","s":"BTCUSDT","p":"1"}')
    )
    assert isinstance(ev, UnknownEvent)
    assert ev.stream == "btcusdt@markPrice" and ev.symbol == "BTCUSDT"
    assert ev.raw == {"e": "markPriceUpdate", "s": "BTCUSDT", "p": "1"}
    assert isinstance(decode_frame("{}"), UnknownEvent)


@pytest.mark.parametrize(
    ("frame", "reason"),
    [
        ("not json", "not valid JSON"),
        ("42", "not a JSON object"),
        ('"text"', "not a JSON object"),
        ('{"e":"trade","E":1,"s":"X","t":1,"p":"1","q":"1","T":1}', "missing field 'm'"),
        ('{"e":"trade","E":"1","s":"X","t":1,"p":"1","q":"1","T":1,"m":true}', "malformed"),
        ('{"e":"trade","E":1,"s":"X","t":1,"p":"abc","q":"1","T":1,"m":true}', "malformed"),
        ('{"stream":"btcusdt@trade","data":5}', "payload must be an object"),
        ('{"e":"kline","E":1,"s":"X","k":[]}', "malformed"),
    ],
)
def test_malformed_frames_raise_decode_error_with_excerpt(frame: str, reason: str) -> None:
    with pytest.raises(DecodeError, match=reason) as info:
        decode_frame(frame)
    assert info.value.excerpt == frame[:120]


def test_decode_error_excerpt_is_short() -> None:
    frame = '{"e":"trade",' + "x" * 5000
    with pytest.raises(DecodeError) as info:
        decode_frame(frame)
    assert len(info.value.excerpt) <= 121 and info.value.excerpt.endswith("…")


# Kinds in each real recording (counts from its README, checked frame by frame).
RECORDED_COUNTS = {
    "2021-04-17": {DepthUpdate: 614, BookTicker: 570, Kline: 20, AggTrade: 24},
    "2021-08-14": {DepthUpdate: 546, BookTicker: 412, Kline: 17, AggTrade: 28},
    "2021-10-12": {DepthUpdate: 177, BookTicker: 84, Kline: 2, AggTrade: 2},
}


@pytest.mark.parametrize("recording", RECORDINGS)
def test_every_recorded_frame_decodes(recording: str) -> None:
    counts: collections.Counter[type] = collections.Counter()
    for ts, frame in raw_frames(recording):
        ev = decode_frame(frame, receive_ns=int(ts * 1e9))
        wrapper = json.loads(frame)
        assert ev.symbol == wrapper["data"]["s"]
        assert stream_symbol(frame) == ev.symbol
        counts[type(ev)] += 1
    assert dict(counts) == RECORDED_COUNTS[recording]


def test_recorded_values_survive_decoding() -> None:
    ts, frame = next(raw_frames("2021-10-12"))
    ev = decode_frame(frame, receive_ns=int(ts * 1e9))
    assert isinstance(ev, DepthUpdate)
    assert (ev.symbol, ev.first_update_id, ev.final_update_id) == ("NKNUSDT", 499869750, 499869752)
    assert ev.bids[0] == (0.3513, 6195.0) and ev.asks == ()
    assert ev.receive_ns == int(1633998512.0633569 * 1e9)


_json = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats(allow_nan=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=5)
    | st.dictionaries(st.text(max_size=5), children, max_size=6),
    max_leaves=30,
)  # fmt: skip
_KEYS = ["E", "s", "t", "p", "q", "T", "m", "k", "u", "b", "a", "id", "result", "stream"]
_event_like = st.fixed_dictionaries(
    {"e": st.sampled_from(["trade", "aggTrade", "kline", "24hrTicker", "depthUpdate", "zzz"])},
    optional={k: _json for k in _KEYS},
)
_ALLOWED = (
    *MARKET_EVENT_TYPES,
    UnknownEvent,
    EventArray,
    ServerShutdown,
    ControlReply,
    ControlError,
)


def _only_typed_outcomes(frame: str | bytes) -> None:
    try:
        ev: Any = decode_frame(frame)
    except DecodeError:
        return
    assert isinstance(ev, _ALLOWED)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=200))
def test_arbitrary_text_gives_event_or_decode_error(text: str) -> None:
    _only_typed_outcomes(text)


@settings(max_examples=300, deadline=None)
@given(_json)
def test_arbitrary_json_gives_event_or_decode_error(value: object) -> None:
    _only_typed_outcomes(orjson.dumps(value))


@settings(max_examples=300, deadline=None)
@given(_event_like, st.booleans())
def test_event_shaped_json_gives_event_or_decode_error(value: dict[str, Any], wrap: bool) -> None:
    payload = {"stream": "btcusdt@trade", "data": value} if wrap else value
    _only_typed_outcomes(orjson.dumps(payload))


def test_control_encoder_ids_increase() -> None:
    enc = ControlEncoder()
    rid1, sub = enc.subscribe(["btcusdt@trade", "ethusdt@kline_1m"])
    rid2, unsub = enc.unsubscribe(["btcusdt@trade"])
    rid3, lst = enc.list_subscriptions()
    assert (rid1, rid2, rid3) == (1, 2, 3)
    assert json.loads(sub) == {
        "method": "SUBSCRIBE", "params": ["btcusdt@trade", "ethusdt@kline_1m"], "id": 1,
    }  # fmt: skip
    assert json.loads(unsub) == {"method": "UNSUBSCRIBE", "params": ["btcusdt@trade"], "id": 2}
    assert json.loads(lst) == {"method": "LIST_SUBSCRIPTIONS", "id": 3}


# -- prices and quantities: positive, finite decimal strings (issue 11) ---------------------

POSITIVE, NON_NEGATIVE, SIGNED = "positive", "non-negative", "signed"
# (kind, payload, stream, path to the field, rule); see the codec's docstring for why.
_PAYLOADS = {
    "trade": (TRADE, "btcusdt@trade"),
    "aggTrade": (AGG_TRADE, "btcusdt@aggTrade"),
    "blockTrade": (BLOCK_TRADE, "btcusdt@blockTrade"),
    "kline": (KLINE, "btcusdt@kline_1m"),
    "24hrTicker": (TICKER, "btcusdt@ticker"),
    "1hTicker": (ROLLING_TICKER, "btcusdt@ticker_1h"),
    "24hrMiniTicker": (MINI_TICKER, "btcusdt@miniTicker"),
    "bookTicker": (BOOK_TICKER, "btcusdt@bookTicker"),
    "avgPrice": (AVG_PRICE, "btcusdt@avgPrice"),
    "referencePrice": (REFERENCE_PRICE, "btcusdt@referencePrice"),
    "depthUpdate": (DEPTH_UPDATE, "btcusdt@depth@100ms"),
    "partialDepth": (PARTIAL_DEPTH, "btcusdt@depth5@100ms"),
}
_TICKER_UNSIGNED = ("w", "x", "c", "Q", "b", "B", "a", "A", "o", "h", "l", "v", "q")
DECIMAL_FIELDS: list[tuple[str, tuple[str | int, ...], str]] = [
    *((kind, (key,), POSITIVE) for kind in ("trade", "aggTrade", "blockTrade") for key in "pq"),
    *(("kline", ("k", key), POSITIVE) for key in "ohlc"),
    *(("kline", ("k", key), NON_NEGATIVE) for key in "vqVQ"),
    *(("24hrTicker", (key,), SIGNED) for key in "pP"),
    *(("24hrTicker", (key,), NON_NEGATIVE) for key in _TICKER_UNSIGNED),
    *(("1hTicker", (key,), SIGNED) for key in "pP"),
    *(("1hTicker", (key,), NON_NEGATIVE) for key in "ohlcwvq"),
    *(("24hrMiniTicker", (key,), NON_NEGATIVE) for key in "cohlvq"),
    *(("bookTicker", (key,), NON_NEGATIVE) for key in "bBaA"),
    ("avgPrice", ("w",), POSITIVE),
    ("referencePrice", ("r",), POSITIVE),
    *(("depthUpdate", (side, 1, 0), POSITIVE) for side in "ba"),
    *(("depthUpdate", (side, 1, 1), NON_NEGATIVE) for side in "ba"),
    *(("partialDepth", (side, 1, 0), POSITIVE) for side in ("bids", "asks")),
    *(("partialDepth", (side, 1, 1), NON_NEGATIVE) for side in ("bids", "asks")),
]
# What the issue saw accepted, and strings float() reads but the exchange never writes.
BAD_ANYWHERE: list[object] = [
    True, False, None, 5, 94213.57, 0, [], {}, "", "abc", "inf", "-inf", "Infinity",
    "nan", "-nan", "1e999", "-1e999", "  5", "\t5", "+5", "+0.5",
]  # fmt: skip
BAD_BY_RULE: dict[str, list[object]] = {
    POSITIVE: ["0", "0.00000000", "-0", "-5", "-94213.57", ".5", "1e-999", "\u2003-5"],
    NON_NEGATIVE: ["-0", "-5", "-0.00000001", ".5", "\u2003-5"],
    SIGNED: ["--5", "-", "- 5"],
}
GOOD_BY_RULE: dict[str, list[str]] = {
    POSITIVE: ["94213.57000000", "0.00000001", "1", "92233720368.54775807"],
    NON_NEGATIVE: ["0", "0.00000000", "94213.57000000", "1"],
    SIGNED: ["-12.50000000", "0.00000000", "-0.000", "1229.55000000", "-0"],
}


def _frame_with(kind: str, path: tuple[str | int, ...], value: object) -> str:
    payload, stream = _PAYLOADS[kind]
    data = orjson.loads(payload)
    target: Any = data
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return combined(stream, orjson.dumps(data).decode())


def _field_name(path: tuple[str | int, ...]) -> str:
    if len(path) == 3:  # a depth level: side, index, price (0) or quantity (1)
        return f"field {path[0]!r} level {path[1]} {('price', 'quantity')[int(path[2])]}"
    return f"field {'.'.join(str(p) for p in path)!r}"


def test_every_decimal_field_of_every_kind_is_listed() -> None:
    """The table below names each decimal-string field of the reference payloads."""
    listed = {(kind, path) for kind, path, _ in DECIMAL_FIELDS}
    for kind, (payload, _) in _PAYLOADS.items():
        data = orjson.loads(payload)
        objects = [((), data)] + ([(("k",), data["k"])] if "k" in data else [])
        for prefix, obj in objects:
            for key, value in obj.items():
                decimal = type(value) is str and re.fullmatch(r"-?[0-9.]+", value)
                if decimal and (kind, key) != ("kline", "B"):  # "B" is documented "ignore"
                    assert (kind, (*prefix, key)) in listed, (kind, key)
    assert len(listed) == len(DECIMAL_FIELDS)


@pytest.mark.parametrize(("kind", "path", "rule"), DECIMAL_FIELDS)
def test_a_bad_decimal_raises_decode_error_naming_the_field(
    kind: str, path: tuple[str | int, ...], rule: str
) -> None:
    for bad in BAD_ANYWHERE + BAD_BY_RULE[rule]:
        if bad is None and kind == "referencePrice":
            continue  # null is the exchange's "no reference price now"
        frame = _frame_with(kind, path, bad)
        with pytest.raises(DecodeError) as info:
            decode_frame(frame)
        assert _field_name(path) in info.value.reason, (bad, info.value.reason)
        assert rule in info.value.reason or rule == SIGNED


@pytest.mark.parametrize(("kind", "path", "rule"), DECIMAL_FIELDS)
def test_what_the_exchange_sends_decodes_to_that_value(
    kind: str, path: tuple[str | int, ...], rule: str
) -> None:
    for good in GOOD_BY_RULE[rule]:
        ev = decode_frame(_frame_with(kind, path, good))
        assert float(good) in _floats(ev), (kind, path, good)


def _floats(ev: Any) -> list[float]:
    values = [v for v in attrs.astuple(ev, recurse=False) if type(v) is float]
    for side in ("bids", "asks"):
        values += [x for level in getattr(ev, side, ()) for x in level]
    return values


def test_zeros_the_exchange_sends_are_kept() -> None:
    """A removed depth level, a candle without trades, an empty book side, no change."""
    depth = decode_frame(DEPTH_UPDATE)
    assert isinstance(depth, DepthUpdate) and depth.bids[1] == (94238.0, 0.0)
    kline = decode_frame(_frame_with("kline", ("k", "V"), "0.00000000"))
    assert isinstance(kline, Kline) and kline.taker_buy_volume == 0.0
    book = decode_frame(
        '{"u":1,"s":"BTCUSDT","b":"0.00000000","B":"0.00000000","a":"94240.1","A":"1.5"}'
    )
    assert isinstance(book, BookTicker) and (book.bid_price, book.bid_quantity) == (0.0, 0.0)
    falling = decode_frame(_frame_with("24hrTicker", ("p",), "-12.50000000"))
    assert isinstance(falling, Ticker) and falling.price_change == -12.5


def test_a_bad_element_of_a_market_wide_array_fails_the_frame() -> None:
    bad = MINI_TICKER.replace('"c":"94240.10000000"', '"c":"nan"')
    with pytest.raises(DecodeError, match="field 'c'"):
        decode_frame(combined("!miniTicker@arr", f"[{MINI_TICKER},{bad}]"))


def test_float_spellings_past_the_first_character_pass_as_float_reads_them() -> None:
    """The documented limit: only the first character's form is checked (cost)."""
    for text, value in (("5_0", 50.0), ("5e2", 500.0), ("5 ", 5.0), ("5.", 5.0)):
        ev = decode_frame(_frame_with("trade", ("p",), text))
        assert isinstance(ev, Trade) and ev.price == value


_DECIMAL = st.from_regex(r"[0-9]{1,12}(\.[0-9]{1,8})?", fullmatch=True)
_NEAR_MISS = st.text(alphabet="0123456789.-+eE_ naif\t\u00a0\u2003\u0665", max_size=12)


@settings(max_examples=400, deadline=None)
@given(_DECIMAL | _NEAR_MISS | st.text(max_size=12))
def test_a_trade_price_is_accepted_only_as_a_positive_finite_unsigned_string(text: str) -> None:
    try:
        ev = decode_frame(_frame_with("trade", ("p",), text))
    except DecodeError as exc:
        assert "field 'p' must be a positive decimal string" in exc.reason
        digit_first = text[:1].isascii() and text[:1].isdigit()
        assert not (digit_first and 0 < _float_or_nan(text) < math.inf)
        return
    assert isinstance(ev, Trade)
    assert 0.0 < ev.price < math.inf and ev.price == float(text)
    assert not text[:1].isascii() or text[:1].isdigit()  # no space, sign, '+' or '.' first


@settings(max_examples=400, deadline=None)
@given(_DECIMAL | _NEAR_MISS | st.text(max_size=12))
def test_a_depth_quantity_is_accepted_only_as_a_non_negative_finite_string(text: str) -> None:
    try:
        ev = decode_frame(_frame_with("depthUpdate", ("b", 1, 1), text))
    except DecodeError as exc:
        assert "field 'b' level 1 quantity must be a non-negative" in exc.reason
        digit_first = text[:1].isascii() and text[:1].isdigit()
        assert not (digit_first and 0 <= _float_or_nan(text) < math.inf)
        return
    assert isinstance(ev, DepthUpdate)
    assert 0.0 <= ev.bids[1][1] < math.inf and ev.bids[1][1] == float(text)


@settings(max_examples=400, deadline=None)
@given(_DECIMAL.map(lambda s: "-" + s) | _DECIMAL | _NEAR_MISS)
def test_a_ticker_price_change_is_any_finite_signed_string(text: str) -> None:
    try:
        ev = decode_frame(_frame_with("24hrTicker", ("p",), text))
    except DecodeError as exc:
        assert "field 'p' must be a decimal string" in exc.reason
        assert not math.isfinite(_float_or_nan(text)) or not text[:1] or text[0] in " +.\t"
        return
    assert isinstance(ev, Ticker) and math.isfinite(ev.price_change)
    assert ev.price_change == float(text)


def _float_or_nan(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


@given(symbol=st.text(min_size=1, max_size=12), ids=st.integers(0, 2**62),
       price=st.floats(1e-8, 1e9), qty=st.floats(1e-8, 1e9), times=st.integers(0, 2**50),
       maker=st.booleans(), rns=st.integers(0, 2**62))  # fmt: skip
def test_the_fast_event_constructors_build_what_the_classes_build(
    symbol: str, ids: int, price: float, qty: float, times: int, maker: bool, rns: int,
) -> None:
    """`gateway.core.fast_events` builds equal, frozen, hashable events, live (not
    backfilled), field for field what ``Trade(...)`` and ``AggTrade(...)`` build."""
    trade = new_trade(symbol, ids, price, qty, times, maker, times, rns)
    assert trade == Trade(symbol, ids, price, qty, times, maker, times, rns)
    assert hash(trade) == hash(Trade(symbol, ids, price, qty, times, maker, times, rns))
    agg = new_agg_trade(symbol, ids, price, qty, ids, ids, times, maker, times, rns)
    assert agg == AggTrade(symbol, ids, price, qty, ids, ids, times, maker, times, rns)
    assert attrs.asdict(agg) == attrs.asdict(
        AggTrade(symbol, ids, price, qty, ids, ids, times, maker, times, rns))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        trade.price = 1.0  # type: ignore[misc]


_LEVELS = st.lists(st.tuples(st.floats(1e-8, 1e9), st.floats(0, 1e9)), max_size=5).map(tuple)


@given(symbol=st.text(min_size=1, max_size=12), ids=st.integers(0, 2**62),
       prices=st.tuples(*[st.floats(0, 1e9)] * 4), bids=_LEVELS, asks=_LEVELS,
       times=st.integers(0, 2**50) | st.none(), rns=st.integers(0, 2**62))  # fmt: skip
def test_the_fast_book_and_depth_constructors_build_what_the_classes_build(
    symbol: str, ids: int, prices: tuple[float, float, float, float],
    bids: tuple[tuple[float, float], ...], asks: tuple[tuple[float, float], ...],
    times: int | None, rns: int,
) -> None:
    """`fast_events.new_book_ticker` and `new_depth_update` build equal, frozen, hashable
    events, field for field what ``BookTicker(...)`` and ``DepthUpdate(...)`` build."""
    book = new_book_ticker(symbol, ids, *prices, times, rns)
    assert book == BookTicker(symbol, ids, *prices, times, rns)
    assert hash(book) == hash(BookTicker(symbol, ids, *prices, times, rns))
    depth = new_depth_update(symbol, ids, ids + 3, bids, asks, times or 0, rns)
    assert depth == DepthUpdate(symbol, ids, ids + 3, bids, asks, times or 0, rns)
    assert attrs.asdict(depth) == attrs.asdict(
        DepthUpdate(symbol, ids, ids + 3, bids, asks, times or 0, rns))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        book.bid_price = 1.0  # type: ignore[misc]
