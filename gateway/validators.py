"""attrs field validators shared by the configuration classes; errors name the field.

URL validators show the bad value with its credentials masked (`redact_url`).
"""

from __future__ import annotations

import math
import urllib.parse
from collections.abc import Callable
from typing import Any

import attrs

from gateway.core.redact import mask_to_last_at, redact_url
from gateway.errors import ConfigError

_WS_ALLOWED = "a ws:// or wss:// URL with a host, e.g. wss://stream.binance.com:9443"
_HTTP_ALLOWED = (
    "an http:// or https:// URL with a host, e.g. https://api.binance.com, or empty for no REST"
)
_HTTP_AUTO_ALLOWED = (
    "an http:// or https:// URL with a host, e.g. https://api.binance.com, 'auto' to "
    "follow the stream url, or empty for no REST"
)
#: What the wrong scheme probably meant, per kind of field.
_SCHEME_HINTS = {
    ("ws", "wss"): {"https": "for TLS write wss://", "http": "write ws://"},
    ("http", "https"): {"wss": "for TLS write https://", "ws": "write http://"},
}


def positive(_inst: object, attribute: attrs.Attribute[Any], value: float) -> None:
    """A finite number above zero."""
    if not (isinstance(value, int | float) and math.isfinite(value) and value > 0):
        raise ConfigError(f"{attribute.name} must be a positive number, got {value!r}")


def non_negative(_inst: object, attribute: attrs.Attribute[Any], value: float) -> None:
    """A finite number, zero or above."""
    if not (isinstance(value, int | float) and math.isfinite(value) and value >= 0):
        raise ConfigError(f"{attribute.name} must be a number >= 0, got {value!r}")


def positive_int(_inst: object, attribute: attrs.Attribute[Any], value: int) -> None:
    """An integer of at least one."""
    if type(value) is not int or value < 1:
        raise ConfigError(f"{attribute.name} must be an integer >= 1, got {value!r}")


def one_of(*choices: str) -> Callable[[object, attrs.Attribute[Any], str], None]:
    """A validator: the value is one of ``choices`` (named in the error)."""

    def check(_inst: object, attribute: attrs.Attribute[Any], value: str) -> None:
        if value not in choices:
            raise ConfigError(
                f"{attribute.name} must be one of {', '.join(map(repr, choices))}, got {value!r}"
            )

    return check


def non_negative_int(_inst: object, attribute: attrs.Attribute[Any], value: int) -> None:
    """An integer of zero or more."""
    if type(value) is not int or value < 0:
        raise ConfigError(f"{attribute.name} must be an integer >= 0, got {value!r}")


def ws_url(_inst: object, attribute: attrs.Attribute[Any], value: str) -> None:
    """A ``ws://`` or ``wss://`` URL with a host (the scheme alone decides TLS)."""
    _check_url(attribute.name, value, ("ws", "wss"), _WS_ALLOWED)


def http_url_or_empty(_inst: object, attribute: attrs.Attribute[Any], value: str) -> None:
    """An ``http://`` or ``https://`` URL with a host, or empty (no REST: gaps stay reported)."""
    if value != "":
        _check_url(attribute.name, value, ("http", "https"), _HTTP_ALLOWED)


def http_url_auto_or_empty(_inst: object, attribute: attrs.Attribute[Any], value: str) -> None:
    """`http_url_or_empty`, or ``"auto"``: the REST endpoint follows the stream URL."""
    if value not in ("", "auto"):
        _check_url(attribute.name, value, ("http", "https"), _HTTP_AUTO_ALLOWED)


def _check_url(name: str, value: object, schemes: tuple[str, str], allowed: str) -> None:
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be {allowed}; got {value!r} (not a string)")
    problem = url_problem(value, schemes)
    if problem is not None:
        shown = mask_to_last_at(value) if problem is _AT_AFTER_HOST else redact_url(value)
        raise ConfigError(f"{name} must be {allowed}; got {shown!r} ({problem})")


_AT_AFTER_HOST = (
    "an '@' after the host: a stream path does not belong here, and a user name or password "
    "must have '/', '?', '#' and '@' percent-encoded (%2F, %3F, %23, %40)"
)


def url_problem(url: str, schemes: tuple[str, ...]) -> str | None:
    """What keeps ``url`` from being a ``schemes`` URL with a host, or None if nothing does.

    The reason never quotes a part of the URL, which may hold a credential.
    """
    if any(c.isspace() or not c.isprintable() for c in url):
        return "it contains whitespace or control characters"
    scheme, sep, _ = url.partition("://")
    if not sep:
        return "no scheme"
    scheme = scheme.lower()
    if scheme not in schemes:
        hint = _SCHEME_HINTS.get((schemes[0], schemes[-1]), {}).get(scheme)
        return f"{scheme}:// is not allowed" + (f"; {hint}" if hint else "")
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return (
            _AT_AFTER_HOST if "@" in url else "unbalanced brackets: an IPv6 host is written [::1]"
        )
    if "@" in parts.path + parts.query + parts.fragment:
        return _AT_AFTER_HOST
    try:
        port = parts.port
    except ValueError:
        port = 0
    if not parts.hostname:
        return "no host"
    try:
        parts.hostname.encode("idna")  # what the resolver will do with it
    except UnicodeError:
        return "the host is not a valid DNS name (empty or over-long label)"
    if port is not None and not 1 <= port <= 65535:
        return "the port must be a number 1..65535"
    if parts.query or parts.fragment or url.endswith(("?", "#")):
        return "a query or fragment: give the bare endpoint, the gateway adds its own"
    return None
