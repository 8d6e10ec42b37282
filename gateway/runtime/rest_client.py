"""One REST GET with retries: backoff on 5xx and network errors, ``Retry-After`` on 429/418.

`RestGetter` owns what every request to one REST endpoint shares: the URL without its
credentials (they travel as HTTP basic auth, so no log line or error text holds them), the
TLS trust, the weight budget and the retry policy, and counts requests and retries.
"""

from __future__ import annotations

import logging
import ssl
from collections.abc import Callable
from typing import Any

import httpx
import orjson
import trio

from gateway.core.backoff import ReconnectPolicy, UniformSource
from gateway.core.redact import split_credentials
from gateway.runtime.rest_weight import WeightBudget
from gateway.runtime.tls import client_ssl_context, first_words

__all__ = ["BAD_ANSWER_ERRORS", "REST_FAILURES", "RequestShed", "RestGetter",
           "RestUnavailable"]  # fmt: skip

#: The backfiller's logger: these lines were its own before the module was split.
log = logging.getLogger("gateway.runtime.backfill")

#: A request that failed, or a body of the wrong shape (rows too short, objects for lists).
BAD_ANSWER_ERRORS: tuple[type[Exception], ...] = (
    httpx.HTTPError, ValueError, LookupError, TypeError, AttributeError, ArithmeticError
)
_MAX_WAIT = 120.0  # the longest Retry-After we wait out in one go


class RestUnavailable(Exception):
    """A REST request failed for good: retries used up, or an answer that no retry mends."""


#: Every way a REST request can fail: for good, or with an answer of the wrong shape.
REST_FAILURES: tuple[type[Exception], ...] = (RestUnavailable, *BAD_ANSWER_ERRORS)


class RequestShed(Exception):
    """The rest of a request is no longer wanted (its gap ended unfilled meanwhile)."""


class RestGetter:
    """GETs to one REST endpoint, retried, within a shared weight budget; `open` makes the
    httpx client they go through."""

    def __init__(
        self, rest_url: str, *, timeout: float, budget: WeightBudget, retry: ReconnectPolicy,
        rng: UniformSource, ca_file: str = "",
    ) -> None:  # fmt: skip
        bare, user, password = split_credentials(rest_url.rstrip("/"))
        #: The REST endpoint without its credentials (they travel in ``_auth``).
        self.rest_url = bare
        self._auth = httpx.BasicAuth(user or "", password or "") if user or password else None
        #: httpx's own trust store, or with ``ca_file`` the system's plus its CAs
        self._verify: ssl.SSLContext | bool = client_ssl_context(ca_file) if ca_file else True
        self._timeout = timeout
        self.budget = budget
        self.retry = retry
        self._rng = rng
        self.requests_sent = 0
        self.retries = 0

    def open(self) -> httpx.AsyncClient:
        """A new client for this endpoint (use it as an async context manager)."""
        return httpx.AsyncClient(
            base_url=self.rest_url, auth=self._auth, timeout=self._timeout, verify=self._verify
        )

    async def get(
        self, client: httpx.AsyncClient, path: str, params: dict[str, Any], weight: int,
        shed: Callable[[], bool] | None = None,
    ) -> Any:  # fmt: skip
        """One GET, retried with backoff on 5xx, timeouts and connection errors and after
        ``Retry-After`` on 429/418; raises `RestUnavailable` when the attempts run out, and
        `RequestShed` (its weight given back) if ``shed()`` says, once the budget lets it
        go, that it is no longer wanted."""
        attempts = (self.retry.max_attempts or 0) + 1
        problem = ""
        for attempt in range(attempts):
            if attempt:
                self.retries += 1
            await self.budget.reserve(weight)
            if shed is not None and shed():
                self.budget.used = max(0, self.budget.used - weight)
                raise RequestShed
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
