"""Gap backfill over REST: aggregate trades by id, closed candles, depth snapshots.

Symbol actors detect gaps (ids or candle open times that were skipped, typically
around a reconnect) and queue a `BackfillRequest`; this actor fetches the missing
rows from the exchange's REST API (a few at a time, honouring ``Retry-After`` on 429
and 418) and posts a `BackfillResult` to the symbol's mailbox. A gap it cannot fill
stays reported (`GapDetected`), never silently papered over.

Credentials in the REST URL (``https://user:pass@host``) are sent as HTTP basic auth,
never as part of a URL, so no log line (ours or httpx's) and no error text holds them.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import attrs
import httpx
import trio

from actors import Mailbox, Overflow
from gateway.core.candles import kline_from_rest
from gateway.core.events import AggTrade, Kline
from gateway.core.redact import redact_text, split_credentials

log = logging.getLogger(__name__)

_MAX_ROWS = 1000  # the exchange's page size for aggTrades and klines
_MAX_PAGES = 20  # a bigger gap is reported, not fetched


@attrs.frozen(slots=True)
class DepthSnapshot:
    """``GET /api/v3/depth``: the order book at ``last_update_id``."""

    symbol: str
    last_update_id: int
    bids: tuple[tuple[float, float], ...]
    asks: tuple[tuple[float, float], ...]


@attrs.frozen(slots=True)
class BackfillRequest:
    """Fetch ``first..last`` (ids for aggTrade; open times in ms for a kline interval;
    ignored for a ``depth`` snapshot)."""

    symbol: str
    kind: str  # "aggTrade", "kline" or "depth"
    first: int
    last: int
    interval: str | None = None


@attrs.frozen(slots=True)
class BackfillResult:
    """What REST returned for a request (``events`` oldest first), or the error."""

    request: BackfillRequest
    events: tuple[AggTrade | Kline | DepthSnapshot, ...]
    error: str | None = None


class Backfiller:
    """Owns the REST client and the request queue; `run` is the actor."""

    def __init__(
        self,
        rest_url: str,
        deliver: Callable[[str, BackfillResult], None],
        *,
        concurrency: int = 2,
        timeout: float = 10.0,
        queue_size: int = 1000,
    ) -> None:
        bare, user, password = split_credentials(rest_url.rstrip("/"))
        #: The REST endpoint without its credentials (they travel in ``_auth``).
        self.rest_url = bare
        self._auth = httpx.BasicAuth(user or "", password or "") if user or password else None
        self._deliver = deliver
        self._limit = trio.CapacityLimiter(concurrency)
        self._timeout = timeout
        self.requests: Mailbox[BackfillRequest] = Mailbox(queue_size, Overflow.DROP_NEWEST)
        #: Levels per side of a depth snapshot (weight 50 at 1000; see the protocol notes).
        self.depth_limit = 1000
        self.fetched = 0
        self.failed = 0

    def request(self, req: BackfillRequest) -> bool:
        """Queue ``req`` without waiting; False if the queue is full (the gap stays reported)."""
        return self.requests.put_nowait(req)

    async def run(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Serve requests until cancelled."""
        async with (
            httpx.AsyncClient(
                base_url=self.rest_url, auth=self._auth, timeout=self._timeout
            ) as client,
            trio.open_nursery() as nursery,
        ):
            task_status.started()
            async for req in self.requests:
                nursery.start_soon(self._serve, client, req)

    async def _serve(self, client: httpx.AsyncClient, req: BackfillRequest) -> None:
        async with self._limit:
            try:
                events = await self._fetch(client, req)
            except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
                self.failed += 1
                error = redact_text(repr(exc))  # the URLs hold no credentials; be sure
                log.warning("backfill of %s %s %d..%d failed: %s",
                            req.symbol, req.kind, req.first, req.last, error)  # fmt: skip
                self._deliver(req.symbol, BackfillResult(req, (), error))
                return
        self.fetched += len(events)
        self._deliver(req.symbol, BackfillResult(req, tuple(events)))

    async def _get(self, client: httpx.AsyncClient, path: str, params: dict[str, Any]) -> Any:
        for _ in range(5):
            resp = await client.get(path, params=params)
            if resp.status_code in (429, 418):
                wait = float(resp.headers.get("Retry-After", "1"))
                log.warning("REST %s: HTTP %d, waiting %.0fs", path, resp.status_code, wait)
                await trio.sleep(min(wait, 120.0))
                continue
            resp.raise_for_status()
            return resp.json()
        raise httpx.HTTPError(f"REST {path}: still rate limited after 5 tries")

    async def _fetch(self, client: httpx.AsyncClient, req: BackfillRequest) -> list[Any]:
        if req.kind == "aggTrade":
            return await self._agg_trades(client, req)
        if req.kind == "kline" and req.interval is not None:
            return await self._klines(client, req)
        if req.kind == "depth":
            body = await self._get(
                client, "/api/v3/depth", {"symbol": req.symbol, "limit": self.depth_limit}
            )
            return [
                DepthSnapshot(
                    req.symbol, int(body["lastUpdateId"]),
                    tuple((float(p), float(q)) for p, q in body["bids"]),
                    tuple((float(p), float(q)) for p, q in body["asks"]),
                )
            ]  # fmt: skip
        raise ValueError(f"cannot backfill {req.kind!r}")

    async def _agg_trades(self, client: httpx.AsyncClient, req: BackfillRequest) -> list[AggTrade]:
        out: list[AggTrade] = []
        next_id = req.first
        for _ in range(_MAX_PAGES):
            rows = await self._get(
                client, "/api/v3/aggTrades",
                {"symbol": req.symbol, "fromId": next_id, "limit": _MAX_ROWS},
            )  # fmt: skip
            for r in rows:
                if r["a"] > req.last:
                    return out
                out.append(
                    AggTrade(
                        req.symbol, r["a"], float(r["p"]), float(r["q"]), r["f"], r["l"],
                        r["T"], bool(r["m"]), r["T"], 0,
                    )
                )  # fmt: skip
            if len(rows) < _MAX_ROWS or not out:
                return out
            next_id = out[-1].agg_trade_id + 1
        return out

    async def _klines(self, client: httpx.AsyncClient, req: BackfillRequest) -> list[Kline]:
        assert req.interval is not None
        rows = await self._get(
            client, "/api/v3/klines",
            {"symbol": req.symbol, "interval": req.interval, "startTime": req.first,
             "endTime": req.last, "limit": _MAX_ROWS},
        )  # fmt: skip
        server_ms = (await self._get(client, "/api/v3/time", {}))["serverTime"]
        return [kline_from_rest(req.symbol, req.interval, row, server_ms) for row in rows]
