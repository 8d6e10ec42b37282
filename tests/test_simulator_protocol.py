"""The exchange's control-frame answers and URL rules (sans-I/O)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from gateway.simulator.protocol import TargetError, handle_control, parse_target


def answer(text: str, subs: tuple[str, ...] = (), combined: bool = True) -> Any:
    return handle_control(
        text, subscriptions=dict.fromkeys(subs), combined=combined, max_streams=3,
        max_frame_bytes=4096,
    )  # fmt: skip


def test_subscribe_replies_result_null_with_the_id() -> None:
    out = answer('{"method":"SUBSCRIBE","params":["btcusdt@trade","btcusdt@depth@100ms"],"id":1}')
    assert out.reply == {"result": None, "id": 1}
    assert out.subscribe == ("btcusdt@trade", "btcusdt@depth@100ms")


def test_unsubscribe_and_list() -> None:
    out = answer('{"method":"UNSUBSCRIBE","params":["btcusdt@trade"],"id":312}', ("btcusdt@trade",))
    assert out.reply == {"result": None, "id": 312} and out.unsubscribe == ("btcusdt@trade",)
    out = answer('{"method":"LIST_SUBSCRIPTIONS","id":3}', ("btcusdt@aggTrade",))
    assert out.reply == {"result": ["btcusdt@aggTrade"], "id": 3}


def test_properties() -> None:
    assert answer('{"method":"GET_PROPERTY","params":["combined"],"id":2}').reply == {
        "result": True, "id": 2}  # fmt: skip
    out = answer('{"method":"SET_PROPERTY","params":["combined",false],"id":5}')
    assert out.reply == {"result": None, "id": 5} and out.combined is False


@pytest.mark.parametrize(
    ("text", "code", "msg"),
    [
        ('{"method":"GET_PROPERTY","params":["colour"],"id":1}', 0, "Unknown property"),
        ('{"method":"SET_PROPERTY","params":["combined","yes"],"id":1}', 1,
         "Invalid value type: expected Boolean"),
        ('{"method":"GET_PROPERTY","params":[7],"id":1}', 2,
         "Invalid request: property name must be a string"),
        ('{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":1.5}', 2,
         "Invalid request: request ID must be an unsigned integer"),
        ('{"method":"SUBSCRIBE","params":["btcusdt@trade"]}', 2,
         "Invalid request: request ID must be an unsigned integer"),
        ('{"method":"LIST_SUBSCRIPTIONS","params":["x"],"id":1}', 2,
         "Invalid request: too many parameters"),
        ('{"method":"SUBSCRIBE","params":["btcusdt@nonsense"],"id":1}', 2,
         "Invalid request: invalid stream"),
        ('{"method":"SUBSCRIBE","params":["BTCUSDT@trade"],"id":1}', 2,
         "Invalid request: invalid stream"),
        ('{"method":"SUBSCRIBE","params":["a@trade","b@trade","c@trade","d@trade"],"id":1}', 4,
         "Too many subscriptions"),
    ],
)  # fmt: skip
def test_error_replies_carry_the_documented_code(text: str, code: int, msg: str) -> None:
    reply = answer(text).reply
    assert reply["error"] == {"code": code, "msg": msg}
    assert set(reply) == {"error", "id"}


def test_unknown_method_and_missing_method_and_bad_json() -> None:
    reply = answer('{"method":"SUBSCRIB","params":[],"id":1}').reply
    assert reply["error"]["code"] == 2
    assert reply["error"]["msg"].startswith("Invalid request: unknown variant `SUBSCRIB`, expected")
    assert reply["error"]["msg"].endswith("at line 1 column 20")
    reply = answer('{"params":[],"id":1}').reply
    assert reply["error"]["msg"] == "Invalid request: missing field `method` at line 1 column 20"
    reply = answer("{nope").reply
    assert reply["error"]["code"] == 3 and reply["id"] is None
    assert reply["error"]["msg"].startswith("Invalid JSON: expected value at line 1 column")


def test_ids_may_be_strings_signed_or_null() -> None:
    for rid in ('"abc123"', "-5", "null"):
        reply = answer('{"method":"LIST_SUBSCRIPTIONS","id":' + rid + "}").reply
        assert "result" in reply
    assert "error" in answer('{"method":"LIST_SUBSCRIPTIONS","id":"' + "a" * 37 + '"}').reply


@pytest.mark.parametrize(
    "rid",
    ['"6f1c2b9e-6c1d-4e4a-9a57-3c1f2d9b8e70"', '"req_1-a"', '"a"', str(2**63 - 1),
     str(-(2**63)), "0", "null"],
)  # fmt: skip
def test_production_accepts_uuid_and_64_bit_ids(rid: str) -> None:
    """binance-sdk-spot sends UUID ids (36 chars, hyphens); production answers them."""
    out = answer('{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":' + rid + "}")
    assert out.reply == {"result": None, "id": orjson.loads(rid)}
    assert out.subscribe == ("btcusdt@trade",) and out.rejected == ""


@pytest.mark.parametrize(
    "rid",
    ["1.5", "1e3", '{"a":1}', "[1]", "true", "false", '"' + "a" * 37 + '"', str(2**63),
     str(-(2**63) - 1)],
)  # fmt: skip
def test_other_id_types_get_binances_error(rid: str) -> None:
    out = answer('{"method":"SUBSCRIBE","params":["btcusdt@trade"],"id":' + rid + "}")
    assert out.reply == {"error": {"code": 2, "msg": "Invalid request: request ID must be an "
                                   "unsigned integer"}, "id": None}  # fmt: skip
    assert out.subscribe == () and "request ID" in out.rejected


def test_oversized_control_frames_get_no_reply() -> None:
    names = [f"sym{i}usdt@aggTrade" for i in range(300)]
    text = '{"method":"SUBSCRIBE","params":' + str(names).replace("'", '"') + ',"id":1}'
    assert answer(text).reply is None


def test_parse_target_raw_combined_and_time_unit() -> None:
    t = parse_target("/ws/btcusdt@trade", 1024)
    assert (t.combined, t.streams, t.micros) == (False, ("btcusdt@trade",), False)
    t = parse_target("/stream?streams=btcusdt@trade/ethusdt%40kline_1m&timeUnit=MICROSECOND", 1024)
    assert (t.combined, t.streams, t.micros) == (True, ("btcusdt@trade", "ethusdt@kline_1m"), True)
    assert parse_target("/ws", 1024).streams == ()
    for bad, status in [("/nope", 404), ("/stream?streams=btcusdt@bad", 400),
                        ("/stream?timeUnit=NANO", 400),
                        ("/stream?streams=a@trade/b@trade/c@trade/d@trade", 400)]:  # fmt: skip
        with pytest.raises(TargetError) as info:
            parse_target(bad, 3)
        assert info.value.status == status


@pytest.mark.parametrize(
    ("target", "combined", "streams"),
    [("/ws/0", False, ()), ("/ws/1", False, ()), ("/ws/btcusdt@bad", False, ()),
     ("/ws/anything-at-all", False, ()), ("/ws/btcusdt@trade", False, ("btcusdt@trade",)),
     ("/ws/btcusdt@trade/0", False, ("btcusdt@trade",)), ("/ws/", False, ()),
     ("/ws", False, ()), ("/stream", True, ()), ("/stream?streams=", True, ()),
     ("/stream?streams=btcusdt@trade/ethusdt@aggTrade", True,
      ("btcusdt@trade", "ethusdt@aggTrade"))],
)  # fmt: skip
def test_any_raw_endpoint_name_opens_a_session(
    target: str, combined: bool, streams: tuple[str, ...]
) -> None:
    """ccxt pro opens /ws/0, /ws/1, ... and subscribes later: production accepts the path,
    subscribing the name only if it is a stream."""
    t = parse_target(target, 1024)
    assert (t.combined, t.streams) == (combined, streams)
