"""Control frames of the codec: requests written by `ControlEncoder`, replies decoded."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import orjson

from gateway.core.codec_checks import _Invalid
from gateway.core.frames import ControlError, ControlReply


def _decode_control(obj: dict[str, Any], rns: int) -> ControlReply | ControlError:
    rid = obj["id"]
    if rid is not None and type(rid) not in (int, str):
        raise _Invalid("control reply 'id' must be an integer, a string or null")
    if "error" in obj or "code" in obj:
        err = obj.get("error", obj)
        if type(err) is not dict:
            raise _Invalid("control 'error' must be an object")
        code = err.get("code")
        if code is not None and type(code) is not int:
            raise _Invalid("error 'code' must be an integer")
        return ControlError(rid, code, str(err.get("msg", "")), rns)
    return ControlReply(rid, obj["result"], rns)


class ControlEncoder:
    """Writes control requests with increasing positive integer ids (sans-I/O)."""

    def __init__(self, first_id: int = 1) -> None:
        self._next_id = first_id

    def _frame(self, method: str, params: list[Any] | None) -> tuple[int, str]:
        rid = self._next_id
        self._next_id += 1
        body: dict[str, Any] = {"method": method}
        if params is not None:
            body["params"] = params
        body["id"] = rid
        return rid, orjson.dumps(body).decode()

    def subscribe(self, streams: Iterable[str]) -> tuple[int, str]:
        """A SUBSCRIBE request for ``streams``; returns ``(id, frame_text)``."""
        return self._frame("SUBSCRIBE", list(streams))

    def unsubscribe(self, streams: Iterable[str]) -> tuple[int, str]:
        """An UNSUBSCRIBE request for ``streams``; returns ``(id, frame_text)``."""
        return self._frame("UNSUBSCRIBE", list(streams))

    def list_subscriptions(self) -> tuple[int, str]:
        """A LIST_SUBSCRIPTIONS request; returns ``(id, frame_text)``."""
        return self._frame("LIST_SUBSCRIPTIONS", None)

    def set_property(self, name: str, value: bool) -> tuple[int, str]:
        """A SET_PROPERTY request (``combined`` is the only documented property)."""
        return self._frame("SET_PROPERTY", [name, value])

    def get_property(self, name: str) -> tuple[int, str]:
        """A GET_PROPERTY request."""
        return self._frame("GET_PROPERTY", [name])
