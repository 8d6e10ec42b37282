"""Gap backfill over REST: plain and aggregate trades by id, closed candles, depth snapshots.

Symbol actors detect gaps (ids or candle open times that were skipped, typically
around a reconnect) and queue a `BackfillRequest`; this actor fetches the missing
rows from the exchange's REST API page after page and posts a `BackfillResult` to the
symbol's mailbox: a long trade or aggTrade gap a page at a time (each page a part,
``final`` False; the last result says how the gap ended), so that no gap's rows pile
up here and the symbol publishes them as they come. Each request is retried with
exponential backoff and full jitter on 5xx, timeouts and connection errors, waits out
``Retry-After`` on 429 and 418, and gives up after a bounded number of attempts. One
weight budget per gateway: the ``X-MBX-USED-WEIGHT-1M`` header of every answer is
tracked and requests wait for the next minute before they would pass
``weight_per_minute``. What was not served (the
per-gap id budget, the exchange's history or its errors) is named exactly in the
result (``missing_from``..``request.last``), never silently cut.

A plain-trade gap that ``historicalTrades`` does not serve (or its unserved tail) is
still priced for the stop-loss book: the aggregate trades whose ``f..l`` cover it are
fetched from ``aggTrades`` by the gap's time window and their price range is put on the
result (``stop_prices``); they are never published.

Under a gap storm the weight budget, not the network, is the limit: before a request
starts, and before each of its pages, ``need`` (the symbol's own answer) says whether its
rows are still wanted. A trade gap whose hold already ended unfilled is no longer worth
``historicalTrades`` pages (weight 25 each): it is only priced for the stop-loss book
from ``aggTrades`` (weight 4), or skipped when no stop is armed. The budget goes to gaps
whose rows can still be published in order.

Credentials in the REST URL (``https://user:pass@host``) are sent as HTTP basic auth,
never as part of a URL, so no log line (ours or httpx's) and no error text holds them.

The GET with its retries is `gateway.runtime.rest_client`, the weight budget
`gateway.runtime.rest_weight`, the aggTrades pricing `gateway.runtime.stop_prices`.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import attrs
import httpx
import trio

from actors import Mailbox, Overflow
from gateway.core.backfill_protocol import BackfillRequest, BackfillResult, Need
from gateway.core.backoff import ReconnectPolicy, UniformSource
from gateway.core.candles import kline_from_rest
from gateway.core.events import AggTrade, Kline, Trade
from gateway.core.redact import redact_text
from gateway.core.rest_rows import (
    MAX_PAGE_ROWS,
    agg_trade_from_rest,
    depth_snapshot_from_rest,
    trade_from_rest,
)
from gateway.core.streams import INTERVAL_MS
from gateway.runtime.rest_client import (
    BAD_ANSWER_ERRORS,
    REST_FAILURES,
    RequestShed,
    RestGetter,
    RestUnavailable,
)
from gateway.runtime.rest_weight import WEIGHTS, WeightBudget, depth_weight
from gateway.runtime.stop_prices import with_stop_prices
from gateway.stats import RestStats

# RestUnavailable, WeightBudget, WEIGHTS and depth_weight lived here before the split.
__all__ = ["WEIGHTS", "Backfiller", "RestUnavailable", "WeightBudget", "depth_weight"]

log = logging.getLogger(__name__)

_SHED_PREFIX = "not fetched: the gap already ended unfilled"
#: The ending of a request not sent (or cut short) because its gap already ended, by need.
_SHED: Mapping[Need, str] = MappingProxyType({
    Need.PRICES: f"{_SHED_PREFIX}; priced for the stop-loss book only",
    Need.NOTHING: f"{_SHED_PREFIX} and no stop is armed",
})


class Backfiller:
    """Owns the REST client, the weight budget and the request queue; `run` is the actor."""

    def __init__(
        self,
        rest_url: str,
        deliver: Callable[[str, BackfillResult], None],
        *,
        concurrency: int = 2,
        timeout: float = 10.0,
        queue_size: int = 1000,
        max_ids: int = 100_000,
        weight_per_minute: int = 5000,
        retry: ReconnectPolicy | None = None,
        rng: UniformSource | None = None,
        ca_file: str = "",
        need: Callable[[BackfillRequest], Need] | None = None,
        stop_retry: ReconnectPolicy | None = None,
    ) -> None:
        self._rng: UniformSource = rng if rng is not None else random.Random()
        self.budget = WeightBudget(weight_per_minute)
        #: The GETs with their retries (the policy and the rng are shared with stop re-asks).
        self.rest = RestGetter(
            rest_url, timeout=timeout, budget=self.budget, ca_file=ca_file, rng=self._rng,
            retry=retry if retry is not None else ReconnectPolicy(0.5, 2.0, 30.0, 4),
        )  # fmt: skip
        #: The REST endpoint without its credentials (they travel as basic auth).
        self.rest_url = self.rest.rest_url
        self._deliver = deliver
        self._need = need
        self._limit = trio.CapacityLimiter(concurrency)
        self.requests: Mailbox[BackfillRequest] = Mailbox(queue_size, Overflow.DROP_NEWEST)
        #: Levels per side of a depth snapshot (weight 50 at 1000; see the protocol notes).
        self.depth_limit = 1000
        #: Ids fetched per trade or aggTrade gap at most; the rest is reported unfilled.
        self.max_ids = max_ids
        #: When a trade or aggTrade request failed for good: how long to wait before its
        #: prices are asked for again (while a stop is armed), and how often at most.
        self.stop_retry = (stop_retry if stop_retry is not None
                           else ReconnectPolicy(5.0, 2.0, 60.0, 10))  # fmt: skip
        #: Prices-only re-asks waiting for their turn (bounded like the request queue).
        self.stop_retries_waiting = 0
        self.stop_retries = 0
        self.stop_retries_dropped = 0
        self._nursery: trio.Nursery | None = None  # set while `run` runs
        self.fetched = 0
        self.failed = 0
        #: Requests (or their remaining pages) not sent because their gap already ended.
        self.shed = 0
        self._client: httpx.AsyncClient | None = None  # set while `run` runs

    @property
    def retry(self) -> ReconnectPolicy:
        """The retry policy of every GET (5xx, timeouts, connection errors)."""
        return self.rest.retry

    @property
    def retries(self) -> int:
        """GETs sent again after a failed attempt."""
        return self.rest.retries

    @property
    def requests_sent(self) -> int:
        """GETs sent, retries included."""
        return self.rest.requests_sent

    def snapshot(self) -> RestStats:
        """REST counters for `Gateway.stats`: requests, retries, failures, weight."""
        return RestStats(
            requests=self.requests_sent, retries=self.retries, failed=self.failed,
            fetched=self.fetched, used_weight=self.budget.used,
            weight_per_minute=self.budget.limit, throttled=self.budget.waits, shed=self.shed,
            stop_retries=self.stop_retries, stop_retries_dropped=self.stop_retries_dropped,
            queued=len(self.requests),
        )  # fmt: skip

    def request(self, req: BackfillRequest) -> bool:
        """Queue ``req`` without waiting; False if the queue is full (the symbol then ends
        the gap in `GapUnfilled`)."""
        return self.requests.put_nowait(req)

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve requests until cancelled."""
        async with self.rest.open() as client, trio.open_nursery() as nursery:
            self._client = client
            self._nursery = nursery
            task_status.started()
            async for req in self.requests:
                # A slot before a task: the rest wait in the bounded queue, not as tasks.
                slot = object()
                await self._limit.acquire_on_behalf_of(slot)
                nursery.start_soon(self._serve, client, req, slot)

    def _live_client(self) -> httpx.AsyncClient:
        if self._client is None or self._client.is_closed:
            raise RestUnavailable(f"the REST client for {self.rest_url} is not running")
        return self._client

    async def recent_klines(self, symbol: str, interval: str, count: int) -> list[Kline]:
        """The last ``count`` closed candles of ``symbol`` at ``interval``, oldest first
        (warm-up); raises `RestUnavailable` when REST fails for good."""
        client = self._live_client()
        try:
            time_answer = await self.rest.get(client, "/api/v3/time", {}, WEIGHTS["/api/v3/time"])
            server_ms = int(time_answer["serverTime"])
            rows = await self.rest.get(
                client, "/api/v3/klines",
                {"symbol": symbol, "interval": interval, "limit": min(count + 1, MAX_PAGE_ROWS)},
                WEIGHTS["/api/v3/klines"],
            )  # fmt: skip
            klines = [kline_from_rest(symbol, interval, row, server_ms) for row in rows]
        except BAD_ANSWER_ERRORS as exc:
            raise RestUnavailable(redact_text(f"REST {self.rest_url} klines: {exc!r}")) from None
        self.fetched += len(klines)
        return [k for k in klines if k.is_closed][-count:]

    async def ticker_price(self, symbol: str) -> float:
        """``GET /api/v3/ticker/price?symbol=`` (weight 2): the last price on the exchange;
        raises `RestUnavailable` when REST fails for good."""
        client = self._live_client()
        try:
            body = await self.rest.get(client, "/api/v3/ticker/price", {"symbol": symbol},
                                       WEIGHTS["/api/v3/ticker/price"])  # fmt: skip
            return float(body["price"])
        except BAD_ANSWER_ERRORS as exc:
            text = f"REST {self.rest_url} ticker/price: {exc!r}"
            raise RestUnavailable(redact_text(text)) from None

    def need(self, req: BackfillRequest) -> Need:
        """What ``req``'s symbol still wants of it (always rows for klines and depth)."""
        if self._need is None or req.kind not in ("trade", "aggTrade"):
            return Need.ROWS
        return self._need(req)

    async def _serve(self, client: httpx.AsyncClient, req: BackfillRequest, slot: object) -> None:
        try:
            try:
                if self._shed_rest(req):
                    result = BackfillResult(req, (), _SHED[self.need(req)], req.first)
                else:
                    result = await self._fetch(client, req)
            except REST_FAILURES as exc:
                text = str(exc) or repr(exc)  # the URLs hold no credentials
                error = redact_text(
                    text if self.rest_url in text else f"REST {self.rest_url}: {text}"
                )
                result = BackfillResult(req, (), error, req.first, rest_failed=True)
            except Exception as exc:  # a bug here must not lose a gap's ending
                log.exception("backfill of %s %s %d..%d raised", req.symbol, req.kind,
                              req.first, req.last)  # fmt: skip
                result = BackfillResult(req, (), f"the backfiller raised {exc!r}", req.first)
            if (req.kind == "trade" and result.missing_from is not None
                    and self.need(req) is not Need.NOTHING):
                result = await with_stop_prices(self.rest, client, result, self.max_ids)
        finally:
            self._limit.release_on_behalf_of(slot)
        failed = result.error is not None and not result.error.startswith(_SHED_PREFIX)
        if failed:
            self.failed += 1
            log.warning("backfill of %s %s %d..%d failed (%d..%d not served by %s): %s",
                        req.symbol, req.kind, req.first, req.last, result.missing_from,
                        req.last, self.rest_url, result.error)  # fmt: skip
        self.fetched += len(result.events)
        self._deliver(req.symbol, result)
        if result.rest_failed and result.stop_prices is None and (
            req.kind in ("trade", "aggTrade")
        ):
            self._ask_again_for_stops(req, result)

    def _ask_again_for_stops(self, req: BackfillRequest, result: BackfillResult) -> None:
        """A trade gap REST could not serve may hide a stop's crossing: ask for the
        unserved part's prices again later (while a stop is armed on the symbol; `need`
        decides when its turn comes), with backoff, at most ``stop_retry.max_attempts``
        times. The gap itself has ended unfilled: nothing of this is published."""
        limit = self.stop_retry.max_attempts
        if self._nursery is None or (limit is not None and req.round >= limit):
            return
        if self.stop_retries_waiting >= self.requests.bound:
            self.stop_retries_dropped += 1
            return
        start = result.missing_from if result.missing_from is not None else req.first
        again = attrs.evolve(req, first=start, prices_only=True, round=req.round + 1)
        self.stop_retries_waiting += 1
        self.stop_retries += 1
        self._nursery.start_soon(self._requeue, again, self.stop_retry.delay(req.round, self._rng))

    async def _requeue(self, req: BackfillRequest, wait: float) -> None:
        try:
            await trio.sleep(wait)
        finally:
            self.stop_retries_waiting -= 1
        if self.need(req) is not Need.NOTHING and not self.request(req):
            self.stop_retries_dropped += 1

    async def _fetch(self, client: httpx.AsyncClient, req: BackfillRequest) -> BackfillResult:
        if req.kind == "aggTrade":
            return await self._by_id(client, req, "/api/v3/aggTrades", "a", agg_trade_from_rest)
        if req.kind == "trade":
            return await self._by_id(client, req, "/api/v3/historicalTrades", "id", trade_from_rest)
        if req.kind == "kline" and req.interval is not None:
            return await self._klines(client, req)
        if req.kind == "depth":
            limit = self.depth_limit
            params = {"symbol": req.symbol, "limit": limit}
            body = await self.rest.get(client, "/api/v3/depth", params, depth_weight(limit))
            return BackfillResult(req, (depth_snapshot_from_rest(req.symbol, body),))
        raise ValueError(f"cannot backfill {req.kind!r}")

    async def _by_id(
        self, client: httpx.AsyncClient, req: BackfillRequest, path: str, key: str,
        build: Callable[[str, dict[str, Any]], Trade | AggTrade],
    ) -> BackfillResult:  # fmt: skip
        """Page through ``first..last`` up to ``max_ids`` ids (``key``: the row's id field);
        stop at the first id the exchange does not serve (history too short, or a request
        that failed for good)."""
        out: list[Trade | AggTrade] = []
        end = min(req.last, req.first + self.max_ids - 1)
        next_id = req.first
        error: str | None = None
        failed = False
        pages = (end - req.first) // MAX_PAGE_ROWS + 2  # bounded: each page moves next_id on
        for _ in range(pages):
            if next_id > end:
                break
            try:
                rows = await self.rest.get(
                    client, path,
                    {"symbol": req.symbol, "fromId": next_id, "limit": MAX_PAGE_ROWS},
                    WEIGHTS[path], shed=lambda: self._shed_rest(req),
                )  # fmt: skip
            except RequestShed:
                error = _SHED[self.need(req)]
                break
            except RestUnavailable as exc:
                error = str(exc)
                failed = True
                break
            if not rows or rows[0][key] != next_id:
                error = f"the exchange does not serve {req.kind} id {next_id}"
                break
            for r in rows:
                if r[key] != next_id or next_id > end:
                    break
                out.append(build(req.symbol, r))
                next_id += 1
            if next_id <= end and len(out) > 1:
                # Out as a part; the last row stays for the final result (its trade
                # time starts the aggTrades window of a tail that is not served).
                part, out = out[:-1], out[-1:]
                self.fetched += len(part)
                self._deliver(req.symbol, BackfillResult(req, tuple(part), final=False))
        if next_id <= req.last:
            if error is None:
                error = (f"backfill_max_ids is {self.max_ids}" if next_id > end
                         else "page limit reached")  # fmt: skip
            return BackfillResult(req, tuple(out), error, next_id, rest_failed=failed)
        return BackfillResult(req, tuple(out))

    def _shed_rest(self, req: BackfillRequest) -> bool:
        """True (and counted) if the rest of ``req``'s pages are no longer worth their
        weight: plain trades wanted for prices only, or nothing wanted at all."""
        need = self.need(req)
        if need is Need.NOTHING or (need is Need.PRICES and req.kind == "trade"):
            self.shed += 1
            return True
        return False

    async def _klines(self, client: httpx.AsyncClient, req: BackfillRequest) -> BackfillResult:
        """Closed candles with open times ``first..last``, page after page (bounded)."""
        assert req.interval is not None
        step = INTERVAL_MS.get(req.interval, 2_678_400_000)  # 1M: at most 31 days
        out: list[Kline] = []
        start = req.first
        try:
            server_ms = (await self.rest.get(client, "/api/v3/time", {}, WEIGHTS["/api/v3/time"]))[
                "serverTime"
            ]
            for _ in range((req.last - req.first) // (step * MAX_PAGE_ROWS) + 2):
                if start > req.last:
                    break
                rows = await self.rest.get(
                    client, "/api/v3/klines",
                    {"symbol": req.symbol, "interval": req.interval, "startTime": start,
                     "endTime": req.last, "limit": MAX_PAGE_ROWS},
                    WEIGHTS["/api/v3/klines"],
                )  # fmt: skip
                out.extend(kline_from_rest(req.symbol, req.interval, row, server_ms,
                                           backfilled=True) for row in rows)  # fmt: skip
                if len(rows) < MAX_PAGE_ROWS:
                    return BackfillResult(req, tuple(out))
                start = int(rows[-1][0]) + 1
        except RestUnavailable as exc:
            return BackfillResult(req, tuple(out), str(exc), start)
        return BackfillResult(req, tuple(out))
