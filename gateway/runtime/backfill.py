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
"""

from __future__ import annotations

import logging
import math
import random
import ssl
from collections.abc import Callable
from typing import Any

import attrs
import httpx
import orjson
import trio

from actors import Mailbox, Overflow
from gateway.core.backfill_protocol import (
    BackfillRequest,
    BackfillResult,
    DepthSnapshot,
    Need,
)
from gateway.core.backoff import ReconnectPolicy, UniformSource
from gateway.core.candles import kline_from_rest
from gateway.core.events import AggTrade, Kline, Trade
from gateway.core.redact import redact_text, split_credentials
from gateway.core.streams import INTERVAL_MS
from gateway.runtime.tls import client_ssl_context, first_words
from gateway.stats import RestStats

log = logging.getLogger(__name__)

#: A request that failed, or a body of the wrong shape (rows too short, objects for lists).
_BAD_ANSWER: tuple[type[Exception], ...] = (
    httpx.HTTPError, ValueError, LookupError, TypeError, AttributeError, ArithmeticError
)
_MAX_ROWS = 1000  # the exchange's page size for aggTrades, historicalTrades and klines
_MAX_WAIT = 120.0  # the longest Retry-After we wait out in one go
_WINDOW = 60.0  # REQUEST_WEIGHT is counted per minute
_HOUR_MS = 3_600_000  # one aggTrades time window at most (the exchange's old rule; harmless)
_MAX_WINDOWS = 24  # empty hour windows tried before the first aggregate trade is found
#: Request weights (binance-market-streams.md 5.2): aggTrades 4, historicalTrades 25,
#: klines 2, time 1, ticker/price (one symbol) 2.
WEIGHTS = {"/api/v3/aggTrades": 4, "/api/v3/historicalTrades": 25, "/api/v3/klines": 2,
           "/api/v3/time": 1, "/api/v3/ticker/price": 2}  # fmt: skip


def depth_weight(limit: int) -> int:
    """The weight of ``GET /api/v3/depth?limit=`` (5 / 25 / 50 / 250 by limit)."""
    return 5 if limit <= 100 else 25 if limit <= 500 else 50 if limit <= 1000 else 250


class RestUnavailable(Exception):
    """A REST request failed for good: retries used up, or an answer that no retry mends."""


_FAILED: tuple[type[Exception], ...] = (RestUnavailable, *_BAD_ANSWER)


class _Shed(Exception):
    """The rest of a request is no longer wanted (its gap ended unfilled meanwhile)."""


class WeightBudget:
    """The REST weight used this minute, shared by every request of one gateway.

    `reserve` waits until ``weight`` more fits under ``limit`` (the next minute at worst)
    and until a ``Retry-After`` ban ends; `observe` takes the exchange's own count.
    """

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.window_start = -math.inf
        self.blocked_until = -math.inf
        self.waits = 0

    def _roll(self, now: float) -> None:
        if now - self.window_start >= _WINDOW:
            self.window_start, self.used = now, 0

    async def reserve(self, weight: int) -> None:
        """Wait until ``weight`` fits this minute (bounded: a fresh minute always fits)."""
        for _ in range(10):
            now = trio.current_time()
            if now < self.blocked_until:
                self.waits += 1
                await trio.sleep_until(self.blocked_until)
                continue
            self._roll(now)
            if self.used + weight <= self.limit or self.used == 0:
                self.used += weight
                return
            self.waits += 1
            log.info("REST weight %d/%d used this minute: waiting", self.used, self.limit)
            await trio.sleep_until(self.window_start + _WINDOW)
        self._roll(trio.current_time())
        self.used += weight

    def observe(self, header: str | None) -> None:
        """Take ``X-MBX-USED-WEIGHT-1M`` as the truth for this minute (ours may lag)."""
        if header is not None and header.isdigit():
            self._roll(trio.current_time())
            self.used = max(self.used, int(header))

    def ban(self, seconds: float) -> None:
        """A 429/418 with ``Retry-After``: no request goes out for ``seconds``."""
        self.blocked_until = max(self.blocked_until, trio.current_time() + seconds)


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
        bare, user, password = split_credentials(rest_url.rstrip("/"))
        #: The REST endpoint without its credentials (they travel in ``_auth``).
        self.rest_url = bare
        self._auth = httpx.BasicAuth(user or "", password or "") if user or password else None
        #: httpx's own trust store, or with ``ca_file`` the system's plus its CAs
        self._verify: ssl.SSLContext | bool = client_ssl_context(ca_file) if ca_file else True
        self._deliver = deliver
        self._need = need
        self._limit = trio.CapacityLimiter(concurrency)
        self._timeout = timeout
        self.requests: Mailbox[BackfillRequest] = Mailbox(queue_size, Overflow.DROP_NEWEST)
        #: Levels per side of a depth snapshot (weight 50 at 1000; see the protocol notes).
        self.depth_limit = 1000
        #: Ids fetched per trade or aggTrade gap at most; the rest is reported unfilled.
        self.max_ids = max_ids
        self.budget = WeightBudget(weight_per_minute)
        self.retry = retry if retry is not None else ReconnectPolicy(0.5, 2.0, 30.0, 4)
        #: When a trade or aggTrade request failed for good: how long to wait before its
        #: prices are asked for again (while a stop is armed), and how often at most.
        self.stop_retry = (stop_retry if stop_retry is not None
                           else ReconnectPolicy(5.0, 2.0, 60.0, 10))  # fmt: skip
        #: Prices-only re-asks waiting for their turn (bounded like the request queue).
        self.stop_retries_waiting = 0
        self.stop_retries = 0
        self.stop_retries_dropped = 0
        self._nursery: trio.Nursery | None = None  # set while `run` runs
        self._rng: UniformSource = rng if rng is not None else random.Random()
        self.fetched = 0
        self.failed = 0
        self.retries = 0
        self.requests_sent = 0
        #: Requests (or their remaining pages) not sent because their gap already ended.
        self.shed = 0
        self._client: httpx.AsyncClient | None = None  # set while `run` runs

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
        async with (
            httpx.AsyncClient(
                base_url=self.rest_url, auth=self._auth, timeout=self._timeout, verify=self._verify
            ) as client,
            trio.open_nursery() as nursery,
        ):
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
            server_ms = int((await self._get(client, "/api/v3/time", {},
                                             WEIGHTS["/api/v3/time"]))["serverTime"])  # fmt: skip
            rows = await self._get(
                client, "/api/v3/klines",
                {"symbol": symbol, "interval": interval, "limit": min(count + 1, _MAX_ROWS)},
                WEIGHTS["/api/v3/klines"],
            )  # fmt: skip
            klines = [kline_from_rest(symbol, interval, row, server_ms) for row in rows]
        except _BAD_ANSWER as exc:
            raise RestUnavailable(redact_text(f"REST {self.rest_url} klines: {exc!r}")) from None
        self.fetched += len(klines)
        return [k for k in klines if k.is_closed][-count:]

    async def ticker_price(self, symbol: str) -> float:
        """``GET /api/v3/ticker/price?symbol=`` (weight 2): the last price on the exchange;
        raises `RestUnavailable` when REST fails for good."""
        client = self._live_client()
        try:
            body = await self._get(client, "/api/v3/ticker/price", {"symbol": symbol},
                                   WEIGHTS["/api/v3/ticker/price"])  # fmt: skip
            return float(body["price"])
        except _BAD_ANSWER as exc:
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
            except _FAILED as exc:
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
                result = await self._agg_prices(client, result)
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

    async def _get(
        self, client: httpx.AsyncClient, path: str, params: dict[str, Any], weight: int,
        shed: Callable[[], bool] | None = None,
    ) -> Any:  # fmt: skip
        """One GET, retried with backoff on 5xx, timeouts and connection errors and after
        ``Retry-After`` on 429/418; raises `RestUnavailable` when the attempts run out, and
        `_Shed` (its weight given back) if ``shed()`` says, once the budget lets it go,
        that it is no longer wanted."""
        attempts = (self.retry.max_attempts or 0) + 1
        problem = ""
        for attempt in range(attempts):
            if attempt:
                self.retries += 1
            await self.budget.reserve(weight)
            if shed is not None and shed():
                self.budget.used = max(0, self.budget.used - weight)
                raise _Shed
            self.requests_sent += 1
            try:
                resp = await client.get(path, params=params)
            except httpx.TransportError as exc:  # timeouts, refused or reset connections
                problem = f"{type(exc).__name__}: {first_words(exc)}"
                wait = self.retry.delay(attempt, self._rng)
            else:
                self.budget.observe(resp.headers.get("X-MBX-USED-WEIGHT-1M"))
                status = resp.status_code
                if status in (429, 418):
                    raw = resp.headers.get("Retry-After", "1")
                    wait = min(float(raw) if raw.replace(".", "", 1).isdigit() else 1.0,
                               _MAX_WAIT)  # fmt: skip
                    self.budget.ban(wait)
                    problem = f"HTTP {status} (Retry-After {raw})"
                elif status >= 500:
                    problem = f"HTTP {status}"
                    wait = self.retry.delay(attempt, self._rng)
                elif status >= 400:
                    url = resp.request.url  # no credentials: they travel as basic auth
                    raise RestUnavailable(f"REST {url}: HTTP {status}: {resp.text[:200]}")
                else:
                    return orjson.loads(resp.content)  # a ValueError if it is not JSON
            if attempt + 1 < attempts:
                log.warning("REST %s%s: %s; retry %d in %.2fs", self.rest_url, path, problem,
                            attempt + 1, wait)  # fmt: skip
                await trio.sleep(wait)
        raise RestUnavailable(f"REST {self.rest_url}{path}: {problem} after {attempts} attempts")

    async def _fetch(self, client: httpx.AsyncClient, req: BackfillRequest) -> BackfillResult:
        if req.kind == "aggTrade":
            return await self._by_id(client, req, "/api/v3/aggTrades", "a", _agg_trade)
        if req.kind == "trade":
            return await self._by_id(client, req, "/api/v3/historicalTrades", "id", _trade)
        if req.kind == "kline" and req.interval is not None:
            return await self._klines(client, req)
        if req.kind == "depth":
            limit = self.depth_limit
            params = {"symbol": req.symbol, "limit": limit}
            body = await self._get(client, "/api/v3/depth", params, depth_weight(limit))
            snap = DepthSnapshot(
                req.symbol, int(body["lastUpdateId"]),
                tuple((float(p), float(q)) for p, q in body["bids"]),
                tuple((float(p), float(q)) for p, q in body["asks"]),
            )  # fmt: skip
            return BackfillResult(req, (snap,))
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
        pages = (end - req.first) // _MAX_ROWS + 2  # bounded: each page moves next_id on
        for _ in range(pages):
            if next_id > end:
                break
            try:
                rows = await self._get(
                    client, path,
                    {"symbol": req.symbol, "fromId": next_id, "limit": _MAX_ROWS},
                    WEIGHTS[path], shed=lambda: self._shed_rest(req),
                )  # fmt: skip
            except _Shed:
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

    async def _agg_prices(
        self, client: httpx.AsyncClient, result: BackfillResult
    ) -> BackfillResult:
        """``result`` with the price range of the aggregate trades covering its unserved
        plain trade ids (``aggTrades`` by time window, then by ``fromId``); never raises
        on a REST failure: it is added to ``error`` instead."""
        req = result.request
        first = result.missing_from
        if first is None or req.after_time is None or req.before_time is None:
            return result
        after = req.after_time
        served = result.events[-1] if result.events else None
        if isinstance(served, Trade):  # the tail starts after the last trade served
            after = max(after, served.trade_time)
        end_id = min(req.last, first + self.max_ids - 1)
        path = "/api/v3/aggTrades"
        low, high, kept = math.inf, -math.inf, 0
        cover_lo, cover_hi = math.inf, -math.inf
        start, window_end, from_id = after, after, None
        note = "page limit reached"
        failed = False
        try:
            for _ in range((end_id - first) // _MAX_ROWS + _MAX_WINDOWS + 4):  # bounded
                params: dict[str, Any] = {"symbol": req.symbol, "limit": _MAX_ROWS}
                if from_id is None:  # find the first page by time, at most an hour each
                    if start > req.before_time:
                        note = "no aggregate trade in the gap's time window"
                        break
                    window_end = min(req.before_time, start + _HOUR_MS - 1)
                    params.update(startTime=start, endTime=window_end)
                else:  # fromId must not be combined with startTime/endTime
                    params["fromId"] = from_id
                rows = await self._get(client, path, params, WEIGHTS[path])
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
                if from_id is not None and len(rows) < _MAX_ROWS:
                    note = "the exchange has no later aggregate trade"
                    break
                from_id = int(rows[-1]["a"]) + 1
        except _FAILED as exc:
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

    async def _klines(self, client: httpx.AsyncClient, req: BackfillRequest) -> BackfillResult:
        """Closed candles with open times ``first..last``, page after page (bounded)."""
        assert req.interval is not None
        step = INTERVAL_MS.get(req.interval, 2_678_400_000)  # 1M: at most 31 days
        out: list[Kline] = []
        start = req.first
        try:
            server_ms = (await self._get(client, "/api/v3/time", {}, WEIGHTS["/api/v3/time"]))[
                "serverTime"
            ]
            for _ in range((req.last - req.first) // (step * _MAX_ROWS) + 2):
                if start > req.last:
                    break
                rows = await self._get(
                    client, "/api/v3/klines",
                    {"symbol": req.symbol, "interval": req.interval, "startTime": start,
                     "endTime": req.last, "limit": _MAX_ROWS},
                    WEIGHTS["/api/v3/klines"],
                )  # fmt: skip
                out.extend(kline_from_rest(req.symbol, req.interval, row, server_ms,
                                           backfilled=True) for row in rows)  # fmt: skip
                if len(rows) < _MAX_ROWS:
                    return BackfillResult(req, tuple(out))
                start = int(rows[-1][0]) + 1
        except RestUnavailable as exc:
            return BackfillResult(req, tuple(out), str(exc), start)
        return BackfillResult(req, tuple(out))


_SHED_PREFIX = "not fetched: the gap already ended unfilled"
_SHED = {
    Need.PRICES: f"{_SHED_PREFIX}; priced for the stop-loss book only",
    Need.NOTHING: f"{_SHED_PREFIX} and no stop is armed",
}


def _agg_trade(symbol: str, r: dict[str, Any]) -> AggTrade:
    """One ``GET /api/v3/aggTrades`` row as a backfilled `AggTrade`."""
    t = r["T"]
    return AggTrade(symbol, r["a"], float(r["p"]), float(r["q"]), r["f"], r["l"], t,
                    bool(r["m"]), t, 0, True)  # fmt: skip


def _trade(symbol: str, r: dict[str, Any]) -> Trade:
    """One ``GET /api/v3/historicalTrades`` row as a backfilled `Trade`."""
    t = r["time"]
    return Trade(symbol, r["id"], float(r["price"]), float(r["qty"]), t,
                 bool(r["isBuyerMaker"]), t, 0, True)  # fmt: skip
