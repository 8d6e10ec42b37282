"""The codec's msgspec fast path (`gateway.core.codec_wire`) decides nothing of its own:
every text frame decodes to what the generic orjson path gives for the same frame (the
bytes form of a frame always takes the generic path), and real frames take it."""

from __future__ import annotations

import json
from typing import Any

import orjson
from hypothesis import event, given, settings
from hypothesis import strategies as st

from gateway import AggTrade, DecodeError, Trade
from gateway.core.codec import decode_frame
from gateway.core.codec_wire import fast_trade
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
         "a": _ID, "f": _ID, "l": _ID}  # fmt: skip
_BAD = {**dict.fromkeys(_GOOD, _ANY_JSON), "p": _NEAR_MISS | _ANY_JSON,
        "q": _NEAR_MISS | _ANY_JSON}  # fmt: skip
_KEYS = {"trade": "EstpqTmM", "aggTrade": "EsapqfltTmM"}


def _generic(frame: str, rns: int) -> Any:
    """What the generic path makes of ``frame``: the event, or the DecodeError's reason."""
    try:
        return decode_frame(frame.encode(), rns)
    except DecodeError as exc:
        return ("DecodeError", exc.reason)


def _dumps(value: object) -> str:
    """Compact JSON as the exchange writes it (integers past 64 bits too)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


@st.composite
def _frames(draw: st.DrawFn) -> str:
    kind = draw(st.sampled_from(["trade", "aggTrade"]))
    fields = {}
    for key in _KEYS[kind]:  # each field well-formed but now and then
        roll = draw(st.integers(0, 19))
        if roll:
            fields[key] = draw(_GOOD[key] if roll > 1 else _BAD[key])
    items = list(fields.items())
    order = draw(st.permutations(range(len(items))))
    data = {"e": draw(st.sampled_from([kind, kind, kind, kind, "kline", 5]))}
    data.update(items[i] for i in order)
    if draw(st.booleans()):
        stream = draw(st.sampled_from(["btcusdt@trade", "btcusdt@aggTrade", "x@kline_1m"]))
        return _dumps({"stream": stream, "data": data})
    return _dumps(data)


@settings(max_examples=600, deadline=None)
@given(_frames(), st.integers(0, 2**62))
def test_the_fast_path_decodes_every_text_frame_as_the_generic_path_does(
    frame: str, rns: int
) -> None:
    fast = fast_trade(frame, rns)
    generic = _generic(frame, rns)
    event("fast path" if fast is not None else "generic path")
    if fast is not None:
        assert fast == generic and type(fast) is type(generic)
    try:
        assert decode_frame(frame, rns) == generic
    except DecodeError as exc:
        assert ("DecodeError", exc.reason) == generic


def test_complete_trade_frames_take_the_fast_path_in_both_forms() -> None:
    data = {"e": "trade", "E": 1, "s": "BTCUSDT", "t": 7, "p": "99.5", "q": "0.25", "T": 2,
            "m": True, "M": True}  # fmt: skip
    for frame in (orjson.dumps({"stream": "btcusdt@trade", "data": data}).decode(),
                  orjson.dumps(data).decode()):  # fmt: skip
        fast = fast_trade(frame, 9)
        assert fast == Trade("BTCUSDT", 7, 99.5, 0.25, 2, True, 1, 9)
        assert fast == _generic(frame, 9)
    agg = {"e": "aggTrade", "E": 1, "s": "BTCUSDT", "a": 3, "p": "1.5", "q": "2", "f": 10,
           "l": 12, "T": 2, "m": False, "M": True}  # fmt: skip
    fast = fast_trade(orjson.dumps({"stream": "btcusdt@aggTrade", "data": agg}).decode(), 9)
    assert fast == AggTrade("BTCUSDT", 3, 1.5, 2.0, 10, 12, 2, False, 1, 9)


def test_other_kinds_and_bytes_are_left_to_the_generic_path() -> None:
    data = {"e": "trade", "E": 1, "s": "BTCUSDT", "t": 7, "p": "99.5", "q": "0.25", "T": 2,
            "m": True}  # fmt: skip
    text = orjson.dumps({"stream": "btcusdt@trade", "data": data}).decode()
    assert fast_trade(text.encode(), 0) is None  # binary frames: generic
    book = '{"stream":"btcusdt@bookTicker","data":{"u":1,"s":"BTCUSDT","b":"1","B":"1",' \
           '"a":"2","A":"1"}}'  # fmt: skip
    assert fast_trade(book, 0) is None
    bad = text.replace('"99.5"', '"+99.5"')
    assert fast_trade(bad, 0) is None
    assert _generic(bad, 0)[0] == "DecodeError"


def test_recorded_trade_frames_take_the_fast_path_to_the_generic_event() -> None:
    seen = 0
    for recording in RECORDINGS:
        for _, frame in raw_frames(recording):
            fast = fast_trade(frame, 5)
            if fast is not None:
                seen += 1
                assert fast == _generic(frame, 5)
            elif '"e":"trade"' in frame[:80] or '"e":"aggTrade"' in frame[:80]:
                raise AssertionError(f"a recorded trade frame missed the fast path: {frame}")
    assert seen > 0
