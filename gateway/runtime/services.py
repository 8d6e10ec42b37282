"""The gateway's long-lived services as supervised children: the callback dispatcher,
the close-hook runner, the REST backfiller and the price fallback.

Each service is an object with ``run(task_status)`` that serves its own bounded queue
until cancelled. Its state (the queue, counters) lives in the object, so a crash of
``run`` (a bug: user code and REST failures are caught inside) restarts it with nothing
queued lost, while the symbols and connections stream on. A service that keeps
crashing past the restart intensity ends the gateway with `RestartIntensityExceeded`.
"""

from __future__ import annotations

import random
from typing import Any, Protocol

import trio

from actors import ActorContext, ChildSpec, Mailbox, Restart, Supervisor

__all__ = ["Service", "service_spec", "services_supervisor"]


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
