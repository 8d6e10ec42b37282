"""Symbols checked against the exchange's listing (``GET /api/v3/exchangeInfo``).

A symbol the exchange does not list streams nothing, silently; so `open_gateway` and
`Gateway.add_symbols` ask first. Unknown symbols are a `ConfigError` naming them (with
close matches); a status other than ``TRADING`` is a warning. When the listing cannot
be had (no ``rest_url``, REST down, no answer within ``timeout``) the check warns and
lets the gateway go on: it never blocks a start for longer than ``rest_timeout``.
"""

from __future__ import annotations

import difflib
import json
import logging
import ssl
from collections.abc import Callable, Sequence
from typing import Any

import httpx
import trio

from gateway.core.redact import redact_text, split_credentials
from gateway.errors import ConfigError
from gateway.runtime.tls import client_ssl_context

__all__ = ["check_symbols", "listing_problems"]

log = logging.getLogger(__name__)

_PATH = "/api/v3/exchangeInfo"
#: More symbols than this: the whole listing is fetched instead of ``symbols=[...]``
#: (a URL of a few kilobytes at most).
_MAX_NAMED = 100
#: Unknown symbols named in the error at most (the rest are counted).
_MAX_SHOWN = 10
#: ``-1121 Invalid symbol``: one of ``symbols=[...]`` is not listed (not which one).
_INVALID_SYMBOL = -1121


def listing_problems(
    symbols: Sequence[str], statuses: dict[str, str], key: str, where: str
) -> tuple[ConfigError | None, list[str]]:
    """The error for symbols missing from ``statuses`` (None if all are listed) and one
    warning per listed symbol whose status is not ``TRADING``."""
    unknown = [s for s in symbols if s not in statuses]
    error = None
    if unknown:
        parts = []
        for sym in unknown[:_MAX_SHOWN]:
            close = difflib.get_close_matches(sym, list(statuses), n=3, cutoff=0.75)
            hint = f" (close matches: {', '.join(close)})" if close else ""
            parts.append(f"{sym!r}{hint}")
        if len(unknown) > _MAX_SHOWN:
            parts.append(f"and {len(unknown) - _MAX_SHOWN} more")
        error = ConfigError(
            f"{key}: not listed on {where} (GET {_PATH}): {', '.join(parts)}; symbols are "
            "spelt like BTCUSDT (btcusdt, BTC/USDT, BTC-USDT and btc_usdt are read as that)"
        )
    warnings = [
        f"{sym}: status {statuses[sym]} on {where}, not TRADING: it may stream nothing"
        for sym in symbols
        if sym in statuses and statuses[sym] != "TRADING"
    ]
    return error, warnings


async def check_symbols(
    rest_url: str,
    symbols: Sequence[str],
    *,
    limit: float,
    key: str = "symbols",
    observe_weight: Callable[[str | None], None] | None = None,
    ca_file: str = "",
) -> None:
    """Raise `ConfigError` if the exchange at ``rest_url`` does not list every one of
    ``symbols`` (canonical spellings); warn for those not ``TRADING``; warn and return
    if the listing cannot be fetched within ``limit`` seconds (or ``rest_url`` is
    empty). ``observe_weight`` gets each answer's ``X-MBX-USED-WEIGHT-1M``; ``ca_file``:
    CAs trusted for ``https://`` on top of the system's (as the backfill client does)."""
    if not symbols:
        return
    if not rest_url:
        log.warning("symbols not checked against the exchange (no REST endpoint: rest_url "
                    "is empty): %s", ", ".join(symbols))  # fmt: skip
        return
    bare, user, password = split_credentials(rest_url.rstrip("/"))
    where = bare
    statuses: dict[str, str] | None = None
    problem = f"no answer within {limit:g} s (rest_timeout)"
    with trio.move_on_after(limit):
        try:
            verify = client_ssl_context(ca_file) if ca_file else True
            statuses = await _fetch(bare, user, password, verify, symbols, limit, observe_weight)
        except (httpx.HTTPError, OSError, ValueError, LookupError, TypeError,
                AttributeError) as exc:  # fmt: skip
            problem = redact_text(f"{type(exc).__name__}: {exc}")
    if statuses is None:
        named = ", ".join(symbols[:10]) + (f" and {len(symbols) - 10} more"
                                           if len(symbols) > 10 else "")  # fmt: skip
        log.warning("symbols not checked against the exchange: GET %s%s failed (%s); "
                    "going on with %s", where, _PATH, problem, named)  # fmt: skip
        return
    error, warnings = listing_problems(symbols, statuses, key, where)
    for text in warnings:
        log.warning("%s", text)
    if error is not None:
        raise error


async def _fetch(
    bare: str, user: str | None, password: str | None, verify: ssl.SSLContext | bool,
    symbols: Sequence[str], per_request: float,
    observe_weight: Callable[[str | None], None] | None,
) -> dict[str, str]:  # fmt: skip
    """Symbol -> status of ``symbols`` (just those if all are listed, else the whole
    listing, to name the missing ones); raises on a failed request or a bad body."""
    auth = httpx.BasicAuth(user or "", password or "") if user or password else None
    async with httpx.AsyncClient(
        base_url=bare, auth=auth, timeout=per_request, verify=verify
    ) as client:
        body: Any = None
        if len(symbols) <= _MAX_NAMED:
            named = json.dumps(list(symbols), separators=(",", ":"), ensure_ascii=False)
            resp = await client.get(_PATH, params={"symbols": named})
            if observe_weight is not None:
                observe_weight(resp.headers.get("X-MBX-USED-WEIGHT-1M"))
            if resp.status_code == 200:
                body = resp.json()
            elif not (resp.status_code == 400 and _code(resp) == _INVALID_SYMBOL):
                raise ValueError(f"HTTP {resp.status_code}: {resp.text[:200]}")
        if body is None:
            resp = await client.get(_PATH)
            if observe_weight is not None:
                observe_weight(resp.headers.get("X-MBX-USED-WEIGHT-1M"))
            if resp.status_code != 200:
                raise ValueError(f"HTTP {resp.status_code}: {resp.text[:200]}")
            body = resp.json()
    return {str(s["symbol"]): str(s["status"]) for s in body["symbols"]}


def _code(resp: httpx.Response) -> object:
    """The exchange's error code in ``{"code": ..., "msg": ...}``, or None."""
    try:
        body = resp.json()
    except ValueError:
        return None
    return body.get("code") if isinstance(body, dict) else None
