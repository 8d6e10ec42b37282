"""``gateway cluster`` (N worker processes publishing to Redis Streams) and ``gateway
tail`` (a live remote feed read from them); docs/cluster.md."""

from __future__ import annotations

import argparse
import logging
import math
import signal
import sys
from pathlib import Path
from typing import Any

import trio

from gateway.cluster.parent import ClusterParams, open_cluster, write_summary
from gateway.errors import ConfigError, GatewayError

__all__ = ["add_cluster_arguments", "add_tail_arguments", "main_cluster", "main_tail"]


def _names(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``cluster`` options."""
    d = ClusterParams()
    add = parser.add_argument
    add("--workers", type=int, default=d.workers, help="worker processes")
    # String defaults: argparse passes them through ``type`` too, and --help shows them.
    add("--symbols", type=_names, default=", ".join(d.symbols), help="comma-separated symbols")
    add("--streams", type=_names, default=", ".join(d.streams), help="streams per symbol")
    add("--redis-url", default=None,
        help="the Redis to publish to (default: a private Redis server, started and "
             "stopped with the cluster)")  # fmt: skip
    add("--url", default=None, help="the exchange's WebSocket base URL (default: the "
        "embedded exchange, in its own process)")
    add("--rest-url", default=None, help="the exchange's REST base URL (with --url)")
    add("--rate", type=float, default=d.rate, help="the embedded exchange's trades per second")
    add("--prefix", default=d.prefix, help="first part of every stream key")
    add("--maxlen", type=int, default=d.maxlen, help="approximate cap of each stream (0: none)")
    add("--max-restarts", type=int, default=d.max_restarts,
        help="restarts of one worker allowed within --period before it is given up")  # fmt: skip
    add("--period", type=float, default=d.period, help="seconds of the restart intensity")
    add("--duration", type=float, default=None, help="seconds to run (default: until Ctrl-C)")
    add("--summary", type=Path, default=None, help="write the summary JSON here")
    add("--log-dir", type=Path, default=None, help="each worker's log, <name>.log")


def main_cluster(args: argparse.Namespace) -> int:
    """``gateway cluster``: 0 pass, 1 fail (the summary's verdict), 2 bad option."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    try:
        params = ClusterParams(
            workers=args.workers, symbols=tuple(s.upper() for s in args.symbols),
            streams=args.streams, redis_url=args.redis_url, url=args.url,
            rest_url=args.rest_url, rate=args.rate, prefix=args.prefix, maxlen=args.maxlen,
            max_restarts=args.max_restarts, period=args.period, log_dir=args.log_dir,
        )  # fmt: skip
        summary = trio.run(_until_signal, params, args.duration)
    except (ConfigError, GatewayError) as exc:
        print(f"gateway cluster: {exc}", file=sys.stderr)
        return 2
    if args.summary is not None:
        write_summary(args.summary, summary)
    _print_summary(summary)
    return 0 if summary["verdict"] == "pass" else 1


async def _until_signal(params: ClusterParams, duration: float | None) -> dict[str, Any]:
    """The cluster for ``duration`` s or until SIGINT/SIGTERM; then its summary."""
    async with open_cluster(params) as cluster:
        with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            with trio.move_on_after(math.inf if duration is None else duration):
                async for _ in signals:
                    break
        return await cluster.summary()


def _print_summary(summary: dict[str, Any]) -> None:
    for name, w in summary["workers"].items():
        print(f"{name}: {len(w['symbols'])} symbols, {w['events_published']} published, "
              f"{w['restarts']} restarts, {w['state']}")  # fmt: skip
    c = summary["consumer"]
    print(f"consumer: {c['events']} events, {c['duplicates']} duplicates, {c['gaps']} gaps")
    redis = summary["redis"]
    print(f"redis: {redis['url']} ({'private' if redis['private'] else 'given'})")
    print(f"verdict: {summary['verdict']}")


def add_tail_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``tail`` options."""
    add = parser.add_argument
    add("--redis-url", required=True, help="the cluster's Redis")
    add("--symbols", type=_names, required=True, help="comma-separated symbols")
    add("--kinds", type=_names, default="trade",
        help="trade, aggTrade, kline_<interval>, ticker, bookTicker, stop")  # fmt: skip
    add("--prefix", default="gateway", help="the cluster's key prefix")
    add("--from-start", action="store_true", help="from the first entry kept, not from now")
    add("--group", default=None, help="read as a consumer of this consumer group")
    add("--consumer", default=None, help="this consumer's name in --group")
    add("--count", type=int, default=None, help="stop after this many events")


def main_tail(args: argparse.Namespace) -> int:
    """``gateway tail``: print the live remote feed; 0 at --count or Ctrl-C, 2 bad option."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    try:
        trio.run(_tail, args)
    except ConfigError as exc:
        print(f"gateway tail: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    return 0


async def _tail(args: argparse.Namespace) -> None:
    from gateway.cluster.consumer import open_remote_feed

    seen = 0
    async with open_remote_feed(args.redis_url, args.symbols, args.kinds, prefix=args.prefix,
                                start="0" if args.from_start else "$", group=args.group,
                                consumer=args.consumer) as feed:  # fmt: skip
        async for event in feed:
            print(event, flush=True)
            seen += 1
            if args.count is not None and seen >= args.count:
                return
