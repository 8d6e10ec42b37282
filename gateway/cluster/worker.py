"""One cluster worker: a full gateway for its share of the symbols, publishing to Redis.

`run_worker` is the whole worker (the `gateway cluster` parent runs each in its own
process, ``python -m gateway.cluster.worker``); in-process it serves the tests and anyone
who wants one gateway that publishes. As a process it also writes its figures to the
Redis hash ``<prefix>:cluster:worker:<name>`` twice a second, where the parent reads
them (Redis is the only channel between the processes).
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import time
from collections.abc import Sequence
from typing import Any

import trio

from gateway._open import open_gateway
from gateway.cluster.keeper import FAULTS, PositionKeeper
from gateway.cluster.positions import CloseAction
from gateway.cluster.publisher import RedisPublisher
from gateway.cluster.redis_client import REDIS_ERRORS, redis_client
from gateway.cluster.wire import PUBLISHED_TYPES
from gateway.core.events import StopTriggered

__all__ = ["main", "run_worker", "worker_key"]

log = logging.getLogger(__name__)

#: Events a worker may queue for Redis while it is unreachable (then the oldest go).
DEFAULT_BUFFER = 100_000


async def run_worker(
    *, redis_url: str, symbols: Sequence[str], name: str = "w0", prefix: str = "gateway",
    maxlen: int = 100_000, buffer: int = DEFAULT_BUFFER, faults: Sequence[str] = (),
    close_action: CloseAction | None = None,
    task_status: trio.TaskStatus[Any] = trio.TASK_STATUS_IGNORED, **gateway_options: Any,
) -> None:  # fmt: skip
    """Run a gateway for ``symbols`` (``gateway_options``: `open_gateway`'s) and publish
    its events to ``redis_url`` until cancelled, with the cluster's positions of those
    symbols armed in it (`PositionKeeper`; ``close_action`` runs for each fired stop).
    ``task_status.started`` gets ``(gateway, publisher, keeper)`` once the gateway is
    live, the positions are armed and publishing has begun."""
    keeper = PositionKeeper(redis_url, prefix, name, symbols, close_action=close_action,
                            faults=faults)  # fmt: skip
    async with open_gateway(symbols=tuple(symbols), close_hook=keeper.close_hook,
                            **gateway_options) as gw:  # fmt: skip
        publisher = RedisPublisher(redis_url, prefix=prefix, maxlen=maxlen)
        # Stops are published by the keeper's atomic transition, not as plain entries.
        kinds = [k for k in PUBLISHED_TYPES.values() if k is not StopTriggered]
        with gw.subscribe(kinds=kinds, buffer=buffer) as events:
            async with trio.open_nursery() as nursery:
                await nursery.start(publisher.run, events)
                await nursery.start(keeper.run, gw)
                task_status.started((gw, publisher, keeper))
                await trio.sleep_forever()


def worker_key(prefix: str, name: str) -> str:
    """The Redis hash where worker ``name`` reports its figures."""
    return f"{prefix}:cluster:worker:{name}"


async def _report(name: str, redis_url: str, prefix: str, gw: Any, publisher: RedisPublisher,
                  events: Any) -> None:  # fmt: skip
    """Write this worker's figures to its hash every 0.5 s (while Redis answers)."""
    key = worker_key(prefix, name)
    started = time.time()
    while True:
        try:
            async with redis_client(redis_url, stream_timeout=5.0) as client:
                while True:
                    s = publisher.stats
                    await client.hset(key, {
                        "pid": os.getpid(), "started": started, "updated": time.time(),
                        "symbols": ",".join(gw.config.all_symbols()),
                        "published": s.published, "duplicates": s.duplicates,
                        "failed": s.failed, "dropped": events.dropped, "outages": s.outages,
                        "state": s.state,
                    })  # fmt: skip
                    await trio.sleep(0.5)
        except* REDIS_ERRORS:
            pass  # the publisher says so; the figures wait for Redis
        await trio.sleep(0.5)


async def _serve(args: argparse.Namespace) -> None:
    symbols = [s for s in args.symbols.split(",") if s]
    streams = tuple(s for s in args.streams.split(",") if s)
    options: dict[str, Any] = {"url": args.url, "streams": streams}
    options["rest_url"] = args.rest_url or ""
    if not args.rest_url:
        options["check_symbols"] = False
    async with trio.open_nursery() as nursery:
        gw, publisher, _keeper = await nursery.start(partial_worker(args, symbols, options))
        print(f"live pid={os.getpid()}", flush=True)  # the parent waits for this line
        nursery.start_soon(_report, args.name, args.redis_url, args.prefix, gw, publisher,
                           publisher.events)  # fmt: skip
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                log.info("worker %s: stopping on a signal", args.name)
                nursery.cancel_scope.cancel()
                break


def partial_worker(args: argparse.Namespace, symbols: list[str], options: dict[str, Any]) -> Any:
    """`run_worker` with this process's arguments, for `trio.Nursery.start`."""

    async def run(task_status: trio.TaskStatus[Any]) -> None:
        await run_worker(redis_url=args.redis_url, symbols=symbols, name=args.name,
                         prefix=args.prefix, maxlen=args.maxlen, faults=args.fault,
                         task_status=task_status, **options)  # fmt: skip

    return run


def main(argv: list[str] | None = None) -> int:
    """``python -m gateway.cluster.worker``: one worker process of `gateway cluster`."""
    parser = argparse.ArgumentParser(prog="gateway.cluster.worker")
    add = parser.add_argument
    add("--name", required=True)
    add("--redis-url", required=True)
    add("--url", required=True, help="the exchange's WebSocket base URL")
    add("--rest-url", default="")
    add("--symbols", required=True)
    add("--streams", default="trade")
    add("--prefix", default="gateway")
    add("--maxlen", type=int, default=100_000)
    add("--fault", action="append", default=[], choices=FAULTS,
        help="a fault to inject (tests): die-before-close kills the worker once a stop "
             "has fired in Redis, before its close")  # fmt: skip
    add("--log-level", default="WARNING")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(),
                        format=f"%(asctime)s worker {args.name} %(name)s %(message)s")  # fmt: skip
    trio.run(_serve, args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
