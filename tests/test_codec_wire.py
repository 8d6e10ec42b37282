"""The codec's msgspec fast path (`gateway.core.codec_wire`) decides nothing of its own:
every frame, text or bytes, decodes to what the generic orjson path (`decode_generic`)
gives for the same frame, and real frames take it."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import event, given, settings
from hypothesis import strategies as st

from gateway import AggTrade, DecodeError, Trade
from gateway.core.codec import decode_frame, decode_generic
from gateway.core.codec_wire import fast_event
from tests.recorded_data import RECORDINGS, raw_frames

_ANY_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats() | st.text(max_size=8),
    lambda children: st.lists(children, max_size=3),
    max_leaves=5,
)  # fmt: skip
_DECIMAL = st.from_regex(r"[0-9]{1,10}(\.[0-9]{1,8})?", fullmatch=True)
_NEAR_MISS = st.text(alphabet="0123456789.-+eE_ naif\u0665", max_size=10)
_ID = st.integers(0, 2**63)
_GOOD = {"E": _ID, "s": st.sampled_from(["BTCUSDT", "ETHBTC", "1000SATSUSDT"]), "t": _ID,
         "p": _DECIMAL, "q": _DECIMAL, "T": _ID, "m": st.booleans(), "M": st.booleans(),
         "a": _ID, "f": _ID, "l": _ID, "u": _ID}  # fmt: skip
_BAD = {**dict.fromkeys(_GOOD, _ANY_JSON), "p": _NEAR_MISS | _ANY_JSON,
        "q": _NEAR_MISS | _ANY_JSON}  # fmt: skip
_BOOK_GOOD = {**_GOOD, "E": _ID | st.none(), **dict.fromkeys("bBaA", _DECIMAL)}
_BOOK_BAD = {**_BAD, **dict.fromkeys("bBaA", _NEAR_MISS | _ANY_JSON)}
_KEYS = {"trade": "EstpqTmM", "aggTrade": "EsapqfltTmM", "bookTicker": "usbBaAE"}


def _generic(frame: str, rns: int) -> Any:
    """What the generic path makes of ``frame``: the event, or the DecodeError's reason."""
    try:
        return decode_generic(frame, rns)
    except DecodeError as exc:
        return ("DecodeError", exc.reason)


def _dumps(value: object) -> str:
    """Compact JSON as the exchange writes it (integers past 64 bits too)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@st.composite
def _frames(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["trade", "aggTrade", "bookTicker"]))
    book = kind == "bookTicker"
    good, bad = (_BOOK_GOOD, _BOOK_BAD) if book else (_GOOD, _BAD)
    fields = {}
    for key in _KEYS[kind]:  # each field well-formed but now and then
        roll = draw(st.integers(0, 19))
        if roll:
            fields[key] = draw(good[key] if roll > 1 else bad[key])
    if book:  # now and then what makes it another kind for the generic path
        extra = draw(st.sampled_from([{}, {}, {}, {"e": "kline"}, {"e": None},
                                      {"lastUpdateId": 1}, {"lastUpdateId": 1, "bids": []}]))
        fields.update(extra)
    items = list(fields.items())
    order = draw(st.permutations(range(len(items))))
    data = {} if book else {"e": draw(st.sampled_from([kind, kind, kind, kind, "kline", 5]))}
    data.update(items[i] for i in order)
    if book or draw(st.booleans()):
        streams = ["btcusdt@bookTicker"] * 3 + ["btcusdt@trade"] if book else [
            "btcusdt@trade", "btcusdt@aggTrade", "x@kline_1m"]
        return _dumps({"stream": draw(st.sampled_from(streams)), "data": data})
    return _dumps(data)


@settings(max_examples=900, deadline=None)
@given(_frames(), st.integers(0, 2**62))
def test_the_fast_path_decodes_every_frame_as_the_generic_path_does(
    frame: str, rns: int
) -> None:
    generic = _generic(frame, rns)
    for form in (frame, frame.encode()):
        fast = fast_event(form, rns)
        event("fast path" if fast is not None else "generic path")
        if fast is not None:
            assert fast == generic and type(fast) is type(generic)
        try:
            assert decode_frame(form, rns) == generic
        except DecodeError as exc:
            assert ("DecodeError", exc.reason) == generic


def test_complete_trade_frames_take_the_fast_path_in_both_forms() -> None:
    data = {"e": "trade", "E": 1, "s": "BTCUSDT", "t": 7, "p": "99.5", "q": "0.25", "T": 2,
            "m": True, "M": True}  # fmt: skip
    for frame in (orjson.dumps({"stream": "btcusdt@trade", "data": data}).decode(),
                  orjson.dumps(data).decode()):  # fmt: skip
        fast = fast_event(frame, 9)
        assert fast == Trade("BTCUSDT", 7, 99.5, 0.25, 2, True, 1, 9)
        assert fast == _generic(frame, 9)
    agg = {"e": "aggTrade", "E": 1, "s": "BTCUSDT", "a": 3, "p": "1.5", "q": "2", "f": 10,
           "l": 12, "T": 2, "m": False, "M": True}  # fmt: skip
    fast = fast_event(orjson.dumps({"stream": "btcusdt@aggTrade", "data": agg}).decode(), 9)
    assert fast == AggTrade("BTCUSDT", 3, 1.5, 2.0, 10, 12, 2, False, 1, 9)


def test_other_kinds_are_left_to_the_generic_path() -> None:
    data = {"e": "trade", "E": 1, "s": "BTCUSDT", "t": 7, "p": "99.5", "q": "0.25", "T": 2,
            "m": True}  # fmt: skip
    text = orjson.dumps({"stream": "btcusdt@trade", "data": data}).decode()
    assert fast_event(text.encode(), 0) == fast_event(text, 0) is not None  # bytes too
    assert fast_event(bytearray(text.encode()), 0) is None  # anything else: generic
    depth = '{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1,"s":"BTCUSDT",' \
            '"U":1,"u":2,"b":[],"a":[]}}'  # fmt: skip
    assert fast_event(depth, 0) is None
    bad = text.replace('"99.5"', '"+99.5"')
    assert fast_event(bad, 0) is None
    assert _generic(bad, 0)[0] == "DecodeError"


def test_recorded_trade_and_book_frames_take_the_fast_path_to_the_generic_event() -> None:
    seen = 0
    for recording in RECORDINGS:
        for _, frame in raw_frames(recording):
            fast = fast_event(frame, 5)
            if fast is not None:
                seen += 1
                assert fast == _generic(frame, 5)
            elif any(k in frame[:80] for k in ('"e":"trade"', '"e":"aggTrade"', '@bookTicker"')):
                raise AssertionError(f"a recorded frame missed the fast path: {frame}")
    assert seen > 0
