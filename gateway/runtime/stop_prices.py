"""Prices for the stop-loss book of plain trades that ``historicalTrades`` did not serve.

The aggregate trades whose ``f..l`` cover the unserved trade ids are fetched from
``aggTrades`` (by the gap's time window, then by ``fromId``) and their price range is put
on the result (``stop_prices``); they are never published.
"""

from __future__ import annotations

import logging
import math
from typing import Any

import attrs
import httpx

from gateway.core.backfill_protocol import BackfillResult
from gateway.core.events import Trade
from gateway.core.redact import redact_text
from gateway.core.rest_rows import MAX_PAGE_ROWS
from gateway.runtime.rest_client import REST_FAILURES, RestGetter
from gateway.runtime.rest_weight import WEIGHTS

__all__ = ["with_stop_prices"]

#: The backfiller's logger: these lines were its own before the module was split.
log = logging.getLogger("gateway.runtime.backfill")

_HOUR_MS = 3_600_000  # one aggTrades time window at most (the exchange's old rule; harmless)
_MAX_WINDOWS = 24  # empty hour windows tried before the first aggregate trade is found


async def with_stop_prices(
    rest: RestGetter, client: httpx.AsyncClient, result: BackfillResult, max_ids: int
) -> BackfillResult:
    """``result`` with the price range of the aggregate trades covering its unserved
    plain trade ids (at most ``max_ids`` of them); never raises on a REST failure: it is
    added to ``error`` instead."""
    req = result.request
    first = result.missing_from
    if first is None or req.after_time is None or req.before_time is None:
        return result
    after = req.after_time
    served = result.events[-1] if result.events else None
    if isinstance(served, Trade):  # the tail starts after the last trade served
        after = max(after, served.trade_time)
    end_id = min(req.last, first + max_ids - 1)
    path = "/api/v3/aggTrades"
    low, high, kept = math.inf, -math.inf, 0
    cover_lo, cover_hi = math.inf, -math.inf
    start, window_end, from_id = after, after, None
    note = "page limit reached"
    failed = False
    try:
        for _ in range((end_id - first) // MAX_PAGE_ROWS + _MAX_WINDOWS + 4):  # bounded
            params: dict[str, Any] = {"symbol": req.symbol, "limit": MAX_PAGE_ROWS}
            if from_id is None:  # find the first page by time, at most an hour each
                if start > req.before_time:
                    note = "no aggregate trade in the gap's time window"
                    break
                window_end = min(req.before_time, start + _HOUR_MS - 1)
                params.update(startTime=start, endTime=window_end)
            else:  # fromId must not be combined with startTime/endTime
                params["fromId"] = from_id
            rows = await rest.get(client, path, params, WEIGHTS[path])
            if not rows:
                if from_id is not None:
                    note = "the exchange has no later aggregate trade"
                    break
                start = window_end + 1
                continue
            past = False
            for r in rows:
                f, last = int(r["f"]), int(r["l"])
                if f > end_id:
                    past = True
                    break
                if last >= first:
                    price = float(r["p"])
                    low, high, kept = min(low, price), max(high, price), kept + 1
                    cover_lo, cover_hi = min(cover_lo, f), max(cover_hi, last)
            if past:
                note = ""
                break
            if from_id is not None and len(rows) < MAX_PAGE_ROWS:
                note = "the exchange has no later aggregate trade"
                break
            from_id = int(rows[-1]["a"]) + 1
    except REST_FAILURES as exc:
        note = redact_text(str(exc) or repr(exc))
        failed = True
    if not kept and not note:
        note = "no aggregate trade covers them"
    if kept and (cover_lo > first or cover_hi < req.last):
        covered = f"{max(first, int(cover_lo))}..{min(end_id, int(cover_hi))}"
        note = (f"{note}; " if note else "") + f"they cover trade ids {covered} only"
    if note:
        log.warning("aggTrades for %s trade ids %d..%d: %s", req.symbol, first, req.last,
                    note)  # fmt: skip
    error = result.error or "not served"
    if note:
        error = f"{error}; aggTrades: {note}"
    prices = (low, high) if kept else None
    return attrs.evolve(result, error=error, stop_prices=prices, stop_rows=kept,
                        rest_failed=failed or result.rest_failed)  # fmt: skip
