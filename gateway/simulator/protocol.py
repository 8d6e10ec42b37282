"""The exchange's side of the stream protocol, sans-I/O: connection URLs and control frames.

`parse_target` reads ``/ws/<streams>`` / ``/stream?streams=…&timeUnit=…`` URLs;
`handle_control` answers one incoming text frame (SUBSCRIBE, UNSUBSCRIBE,
LIST_SUBSCRIPTIONS, GET_PROPERTY, SET_PROPERTY) with the documented replies and error
codes (binance-market-streams.md section 3), and says what to change.
"""

from __future__ import annotations

import urllib.parse
from collections.abc import Mapping
from typing import Any

import attrs
import orjson

from gateway.core.streams import parse_stream
from gateway.errors import InvalidStreamName

__all__ = ["ControlOutcome", "Target", "TargetError", "handle_control", "parse_target",
           "valid_stream"]  # fmt: skip

_METHODS = ("SUBSCRIBE", "UNSUBSCRIBE", "LIST_SUBSCRIPTIONS", "SET_PROPERTY", "GET_PROPERTY")
#: Longest string id production answers (a UUID, hyphens included: binance-sdk-spot's ids).
_ID_MAX_CHARS = 36
_I64 = (-(2**63), 2**63 - 1)


class TargetError(ValueError):
    """A connection URL the exchange refuses (HTTP status and message attached)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@attrs.frozen(slots=True)
class Target:
    """What a connection URL asks for."""

    combined: bool
    streams: tuple[str, ...]
    micros: bool


def valid_stream(name: object) -> bool:
    """True if ``name`` is an exact, lowercase-symbol wire name the exchange serves."""
    if not isinstance(name, str):
        return False
    try:
        return parse_stream(name).name == name
    except InvalidStreamName:
        return False


def parse_target(target: str, max_streams: int) -> Target:
    """Parse a request target; raises `TargetError` for a path or stream the exchange rejects."""
    parts = urllib.parse.urlsplit(target)
    path = urllib.parse.unquote(parts.path)
    query = urllib.parse.parse_qs(parts.query, keep_blank_values=True)
    unit = query.get("timeUnit", ["MILLISECOND"])[-1]
    if unit not in ("MILLISECOND", "millisecond", "MICROSECOND", "microsecond"):
        raise TargetError(400, f"Invalid timeUnit {unit!r}")
    if path in ("/ws", "/ws/"):
        combined, names = False, []
    elif path.startswith("/ws/"):
        # Production opens a raw session for any name (ccxt pro opens /ws/0, /ws/1, ...
        # and subscribes later): names that are streams are subscribed, others ignored.
        combined = False
        names = [n for n in path[len("/ws/") :].split("/") if valid_stream(n)]
    elif path in ("/stream", "/stream/"):
        combined = True
        joined = query.get("streams", [""])[-1]
        names = joined.split("/") if joined else []
    else:
        raise TargetError(404, f"Unknown path {path!r}: use /ws/<stream> or /stream?streams=")
    names = [n for n in names if n]
    for n in names:
        if not valid_stream(n):
            raise TargetError(400, f"Invalid stream name {n!r}")
    names = list(dict.fromkeys(names))
    if len(names) > max_streams:
        raise TargetError(400, f"Too many streams: {len(names)} > {max_streams}")
    return Target(combined, tuple(names), unit.upper() == "MICROSECOND")


@attrs.frozen(slots=True)
class ControlOutcome:
    """The reply to send (None: stay silent) and the changes to apply."""

    reply: dict[str, Any] | None
    subscribe: tuple[str, ...] = ()
    unsubscribe: tuple[str, ...] = ()
    combined: bool | None = None
    #: Why the request was refused ("" if it was not), for the server's log.
    rejected: str = ""


def _error(code: int, msg: str, rid: Any = None) -> ControlOutcome:
    return ControlOutcome({"error": {"code": code, "msg": msg}, "id": rid}, rejected=msg)


def _valid_id(rid: object) -> bool:
    """What production answers: null, a signed 64-bit integer, a string of <= 36 chars."""
    if rid is None:
        return True
    if type(rid) is int:  # not bool, not float
        return _I64[0] <= rid <= _I64[1]
    return type(rid) is str and len(rid) <= _ID_MAX_CHARS


def handle_control(
    text: str | bytes, *, subscriptions: dict[str, None], combined: bool,
    max_streams: int, max_frame_bytes: int,
    refused: Mapping[str, tuple[int, str]] | None = None,
) -> ControlOutcome:  # fmt: skip
    """Answer one control frame, given the connection's subscriptions and ``combined``.

    A SUBSCRIBE naming a stream in ``refused`` gets that stream's error (code, message)
    for the whole request, as the exchange answers one invalid name.
    """
    size = len(text.encode() if isinstance(text, str) else text)
    if size > max_frame_bytes:  # observed: oversized control frames get no reply
        return ControlOutcome(None, rejected=f"control frame of {size} bytes is over "
                                             f"{max_frame_bytes}: no reply")  # fmt: skip
    try:
        req = orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        return _error(3, f"Invalid JSON: expected value at line {exc.lineno} column {exc.colno}")
    body = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    if type(req) is not dict:
        return _error(2, f"Invalid request: invalid type: expected struct Request at line 1 "
                         f"column {len(body)}")  # fmt: skip
    if "method" not in req:
        return _error(2, f"Invalid request: missing field `method` at line 1 column {len(body)}")
    method = req["method"]
    if method not in _METHODS:
        col = body.find(orjson.dumps(method).decode()) + len(orjson.dumps(method))
        return _error(
            2,
            f"Invalid request: unknown variant `{method}`, expected one of "
            + ", ".join(f"`{m}`" for m in _METHODS)
            + f" at line 1 column {col}",
        )
    if "id" not in req or not _valid_id(req["id"]):
        return _error(2, "Invalid request: request ID must be an unsigned integer")
    rid = req["id"]
    params = req.get("params")
    if method == "LIST_SUBSCRIPTIONS":
        if params:
            return _error(2, "Invalid request: too many parameters", rid)
        return ControlOutcome({"result": list(subscriptions), "id": rid})
    if method in ("SUBSCRIBE", "UNSUBSCRIBE"):
        if type(params) is not list:
            return _error(2, "Invalid request: missing field `params`", rid)
        if not all(valid_stream(p) for p in params):
            return _error(2, "Invalid request: invalid stream", rid)
        names = tuple(dict.fromkeys(params))
        if refused and method == "SUBSCRIBE":
            for name in names:
                if name in refused:
                    return _error(*refused[name], rid)
        if method == "UNSUBSCRIBE":
            return ControlOutcome({"result": None, "id": rid}, unsubscribe=names)
        new = [n for n in names if n not in subscriptions]
        if len(subscriptions) + len(new) > max_streams:
            return _error(4, "Too many subscriptions", rid)
        return ControlOutcome({"result": None, "id": rid}, subscribe=names)
    # GET_PROPERTY / SET_PROPERTY
    if type(params) is not list or not params or not isinstance(params[0], str):
        return _error(2, "Invalid request: property name must be a string", rid)
    want = 1 if method == "GET_PROPERTY" else 2
    if len(params) > want:
        return _error(2, "Invalid request: too many parameters", rid)
    if params[0] != "combined":
        return _error(0, "Unknown property", rid)
    if method == "GET_PROPERTY":
        return ControlOutcome({"result": combined, "id": rid})
    if len(params) < 2 or type(params[1]) is not bool:
        return _error(1, "Invalid value type: expected Boolean", rid)
    return ControlOutcome({"result": None, "id": rid}, combined=params[1])
