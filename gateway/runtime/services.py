"""The gateway's long-lived services as supervised children: the callback dispatcher,
the close-hook runner, the REST backfiller and the price fallback.

Each service is an object with ``run(task_status)`` that serves its own bounded queue
until cancelled. Its state (the queue, counters) lives in the object, so a crash of
``run`` (a bug: user code and REST failures are caught inside) restarts it with nothing
queued lost, while the symbols and connections stream on. A service that keeps
crashing past the restart intensity ends the gateway with `RestartIntensityExceeded`.

`rest_parts` builds the two REST services from the config: the backfiller (gap
backfills, kline warm-up, the listing check's weight) and the price fallback that
polls through it.
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import trio

from actors import ActorContext, ChildSpec, Mailbox, Restart, Supervisor
from gateway.config import GatewayConfig
from gateway.core.backfill_protocol import BackfillRequest, BackfillResult, Need
from gateway.core.backoff import ReconnectPolicy
from gateway.runtime.backfill import Backfiller
from gateway.runtime.fallback import PriceFallback
from gateway.runtime.publish import Publisher
from gateway.runtime.symbol import SymbolRuntime

__all__ = ["Service", "rest_parts", "service_spec", "services_supervisor"]


class Service(Protocol):
    """Something with a long-lived ``run`` that reports started once it can serve."""

    async def run(self, task_status: trio.TaskStatus[None] = ...) -> None: ...


async def _service_actor(_mailbox: Mailbox[Any], service: Service, ctx: ActorContext) -> None:
    """Run ``service`` until cancelled; its crash propagates to the supervisor."""
    async with trio.open_nursery() as nursery:
        await nursery.start(service.run)
        ctx.started()


def service_spec(name: str, service: Service) -> ChildSpec:
    """A permanent child running ``service`` (the same object on every restart)."""
    return ChildSpec(
        name=name, actor=_service_actor, state_factory=lambda: service, mailbox_bound=1,
        restart=Restart.PERMANENT, waits_for_started=True,
    )  # fmt: skip


def services_supervisor(
    max_restarts: int, period: float, rng: random.Random | None = None
) -> Supervisor:
    """The supervisor of the gateway's services (its own restart intensity)."""
    return Supervisor("services", max_restarts=max_restarts, period=period, rng=rng)


def rest_parts(
    config: GatewayConfig, states: Mapping[str, SymbolRuntime], publisher: Publisher, *,
    deliver: Callable[[str, BackfillResult], None], need: Callable[[BackfillRequest], Need],
    rng: random.Random | None,
) -> tuple[Backfiller | None, PriceFallback | None]:  # fmt: skip
    """The backfiller (None without ``rest_url``) and the price fallback over ``states``
    (None without a backfiller or with ``fallback_after = 0``); neither started yet."""
    backfiller = (
        Backfiller(
            config.rest_url, deliver, timeout=config.rest_timeout,
            max_ids=config.backfill_max_ids, weight_per_minute=config.rest_weight_per_minute,
            retry=ReconnectPolicy(0.5, 2.0, 30.0, config.rest_retries),
            ca_file=config.ca_file, need=need,
            rng=rng,
        )
        if config.rest_url
        else None
    )  # fmt: skip
    fallback = (
        PriceFallback(
            states, backfiller, after=config.fallback_after,
            interval=config.fallback_interval,
            on_error=lambda sym, exc: publisher.report_error("fallback", exc, sym),
        )
        if backfiller is not None and config.fallback_after > 0
        else None
    )  # fmt: skip
    return backfiller, fallback
