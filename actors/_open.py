"""`open_supervisor`: a supervisor whose lifetime is an ``async with`` block."""

from __future__ import annotations

import random
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager

import trio

from ._groups import raise_single
from ._spec import ChildSpec
from ._supervisor import Supervisor


@asynccontextmanager
async def open_supervisor(
    name: str,
    children: Iterable[ChildSpec] = (),
    *,
    stop_timeout: float | None = None,
    max_restarts: int = 3,
    period: float = 5.0,
    rng: random.Random | None = None,
    dead_letter_limit: int = 1000,
) -> AsyncIterator[Supervisor]:
    """Run a `Supervisor` for the duration of an ``async with`` block.

    Enters once ``children`` have started; on exit (normal, error or
    cancellation), stops it with `Supervisor.stop` (``stop_timeout``).
    If the supervisor gives up, the block is cancelled and
    `RestartIntensityExceeded` is raised from the ``async with``, bare.
    An exception from the block is re-raised bare as well; several at
    once come out as an exception group.
    """
    sup = Supervisor(
        name,
        children=children,
        max_restarts=max_restarts,
        period=period,
        rng=rng,
        dead_letter_limit=dead_letter_limit,
    )
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(sup.run)
            try:
                yield sup
            finally:
                await sup.stop(stop_timeout)
    except BaseExceptionGroup as group:
        raise_single(group)
