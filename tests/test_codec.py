"""The codec as a specification: documented payloads, real recorded frames, fuzzing."""

from __future__ import annotations

import collections
import json
from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gateway import (
    AggTrade,
    AvgPrice,
    BlockTrade,
    BookTicker,
    ControlEncoder,
    ControlError,
    ControlReply,
    DecodeError,
    DepthUpdate,
    EventArray,
    Kline,
    MiniTicker,
    PartialDepth,
    ReferencePrice,
    RollingTicker,
    ServerShutdown,
    Ticker,
    Trade,
    UnknownEvent,
    decode_frame,
)
from gateway.core.codec import stream_symbol
from gateway.core.events import MARKET_EVENT_TYPES
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
