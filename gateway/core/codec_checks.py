"""The codec's field checks and their error text: types, decimal-string rules, messages.

Shared by `decode_frame` and the per-kind builders; the rules are in `gateway.core.codec`'s
docstring. Only the slow path (a field already failed) calls `_bad` and `_bad_level`.
"""

from __future__ import annotations

import math
from typing import Any

_INF = math.inf
_NUMBER_ERRORS = (TypeError, ValueError, OverflowError)

# The three rules for decimal-string fields (see the codec's docstring), as error text.
_POSITIVE = "a positive decimal string"
_NON_NEGATIVE = "a non-negative decimal string"
_SIGNED = "a decimal string"
_Fields = tuple[tuple[str, str], ...]


class _Invalid(Exception):
    """Internal: a field has the wrong type or value; turned into DecodeError at the edge."""


def _ints(*values: object) -> None:
    for v in values:
        if type(v) is not int:
            raise _Invalid(f"expected an integer, got {v!r}")


def _str(v: object) -> str:
    if type(v) is not str:
        raise _Invalid(f"expected a string, got {v!r}")
    return v


def _bool(v: object) -> bool:
    if type(v) is not bool:
        raise _Invalid(f"expected a boolean, got {v!r}")
    return v


# Decimal strings (rules in the module docstring). The builders check every field
# inline (the hot path: one comparison chain, which CPython specialises inside an `if`)
# and only when that fails ask `_bad` which field broke which rule. ``s > "/"`` is the
# first-character test: false for a leading space, sign, '+' or '.', a TypeError for
# anything but a str (JSON numbers, booleans, null). The range is still compared in
# full (NaN fails every comparison): float() skips a leading non-ASCII space, which
# passes ``s > "/"``, and then reads a sign.


def _decimal_ok(value: object, rule: str) -> bool:
    """One field against its rule: the same test the builders make inline."""
    if type(value) is not str or not (value > "/" or (rule is _SIGNED and value[:1] == "-")):
        return False
    try:
        v = float(value)
    except ValueError:
        return False
    if rule is _POSITIVE:
        return 0.0 < v < _INF
    if rule is _NON_NEGATIVE:
        return 0.0 <= v < _INF
    return -_INF < v < _INF


def _signed(text: object, value: float) -> bool:
    """Inline test of a _SIGNED field (on the cold kinds only: tickers)."""
    return type(text) is str and (text > "/" or text[:1] == "-") and -_INF < value < _INF


def _show(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "…"


def _bad(d: dict[str, Any], fields: _Fields, prefix: str = "") -> _Invalid:
    """The error naming the first field of ``fields`` in ``d`` that breaks its rule."""
    for key, rule in fields:
        if not _decimal_ok(d[key], rule):
            return _Invalid(f"field {prefix + key!r} must be {rule}, got {_show(d[key])}")
    return _Invalid(f"one of the fields {[k for k, _ in fields]} is invalid")  # not reached


def _bad_level(side: str, index: int, price: object, quantity: object) -> _Invalid:
    where = f"field {side!r} level {index}"
    if not _decimal_ok(price, _POSITIVE):
        return _Invalid(f"{where} price must be {_POSITIVE}, got {_show(price)}")
    return _Invalid(f"{where} quantity must be {_NON_NEGATIVE}, got {_show(quantity)}")


_TRADE_FIELDS: _Fields = (("p", _POSITIVE), ("q", _POSITIVE))
_KLINE_FIELDS: _Fields = (
    ("o", _POSITIVE), ("h", _POSITIVE), ("l", _POSITIVE), ("c", _POSITIVE),
    ("v", _NON_NEGATIVE), ("q", _NON_NEGATIVE), ("V", _NON_NEGATIVE), ("Q", _NON_NEGATIVE),
)  # fmt: skip
_TICKER_FIELDS: _Fields = (
    ("p", _SIGNED), ("P", _SIGNED),
    *((k, _NON_NEGATIVE) for k in ("w", "x", "c", "Q", "b", "B", "a", "A", "o", "h", "l")),
    ("v", _NON_NEGATIVE), ("q", _NON_NEGATIVE),
)  # fmt: skip
_ROLLING_FIELDS: _Fields = (
    ("p", _SIGNED), ("P", _SIGNED),
    *((k, _NON_NEGATIVE) for k in ("o", "h", "l", "c", "w", "v", "q")),
)  # fmt: skip
_MINI_FIELDS: _Fields = tuple((k, _NON_NEGATIVE) for k in ("c", "o", "h", "l", "v", "q"))
_BOOK_FIELDS: _Fields = tuple((k, _NON_NEGATIVE) for k in ("b", "B", "a", "A"))
_AVG_FIELDS: _Fields = (("w", _POSITIVE),)
_REFERENCE_FIELDS: _Fields = (("r", _POSITIVE),)


def _describe(exc: BaseException) -> str:
    if isinstance(exc, KeyError):
        return f"missing field {exc.args[0]!r}"
    return str(exc) or type(exc).__name__
