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

import attrs
import trio

from gateway.cluster.parent import ClusterParams, open_cluster, write_summary
from gateway.config import read_toml
from gateway.errors import ConfigError, GatewayError

__all__ = [
    "add_cluster_arguments", "add_tail_arguments", "cluster_params", "load_cluster_table",
    "main_cluster", "main_tail",
]  # fmt: skip


def _names(text: str) -> tuple[str, ...]:
    return tuple(s.strip() for s in text.split(",") if s.strip())


#: ``ClusterParams`` fields the command line sets (the rest come from the file or the
#: defaults), with their option's type.
_OPTIONS: dict[str, Any] = {
    "workers": int, "symbols": _names, "streams": _names, "redis_url": str, "url": str,
    "rest_url": str, "rate": float, "prefix": str, "maxlen": int, "max_restarts": int,
    "period": float, "handover": float, "log_dir": Path,
}  # fmt: skip

_HELP = {
    "workers": "worker processes", "symbols": "comma-separated symbols",
    "streams": "streams per symbol (trade, aggTrade, kline_<i>, ticker, bookTicker)",
    "redis_url": "the Redis to publish to (none: a private Redis server, started and "
                 "stopped with the cluster)",
    "url": "the exchange's WebSocket base URL (none: the embedded exchange, in its own "
           "process)",
    "rest_url": "the exchange's REST base URL (with --url)",
    "rate": "the embedded exchange's trades per second, all symbols",
    "prefix": "first part of every stream key", "maxlen": "approximate cap of each stream "
    "(0: none)", "max_restarts": "restarts of one worker allowed within --period before it "
    "is given up", "period": "seconds of the restart intensity",
    "handover": "seconds both owners of a moving symbol run when the cluster is resized",
    "log_dir": "each worker's log, <name>.log (none: discarded)",
}  # fmt: skip


def _shown(value: object) -> str:
    if isinstance(value, tuple):
        return ", ".join(map(str, value))
    return "none" if value is None else str(value)


def add_cluster_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``cluster`` options: each overrides the ``[cluster]`` table of ``--config``."""
    d = ClusterParams()
    add = parser.add_argument
    add("--config", type=Path, default=None,
        help="a TOML file whose [cluster] table sets any option below (options win)")
    for name, kind in _OPTIONS.items():
        add(f"--{name.replace('_', '-')}", dest=name, type=kind, default=None,
            help=f"{_HELP[name]} (default {_shown(getattr(d, name))})")  # fmt: skip
    add("--duration", type=float, default=None, help="seconds to run (default: until Ctrl-C)")
    add("--summary", type=Path, default=None, help="write the summary JSON here")


def cluster_params(args: argparse.Namespace) -> ClusterParams:
    """The `ClusterParams` of the command line over the ``[cluster]`` table of
    ``--config`` over the defaults; `ConfigError` names a bad key or value."""
    values: dict[str, Any] = {}
    if args.config is not None:
        values.update(load_cluster_table(args.config))
    values.update({k: getattr(args, k) for k in _OPTIONS if getattr(args, k) is not None})
    if "symbols" in values:
        values["symbols"] = tuple(str(s).upper() for s in values["symbols"])
    try:
        return ClusterParams(**values)
    except (TypeError, ValueError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"[cluster]: {exc}") from None


def load_cluster_table(path: Path) -> dict[str, Any]:
    """The ``[cluster]`` table of the TOML file at ``path``, its values typed."""
    table = read_toml(path).get("cluster", {})
    if not isinstance(table, dict):
        raise ConfigError("[cluster] must be a table")
    allowed = [f.name for f in attrs.fields(ClusterParams)]
    if unknown := sorted(set(table) - set(allowed)):
        raise ConfigError(f"unknown key cluster.{', '.join(unknown)}; allowed: "
                          f"{', '.join(allowed)}")  # fmt: skip
    out: dict[str, Any] = {}
    for key, value in table.items():
        want: Any = {int: int, float: (int, float), str: str}.get(_OPTIONS.get(key, object))
        if key in ("symbols", "streams", "faults"):
            if not (isinstance(value, list) and all(isinstance(v, str) for v in value)):
                raise ConfigError(f"cluster.{key} must be a list of strings, got {value!r}")
            value = tuple(value)
        elif key == "log_dir":
            value = Path(str(value))
        elif want is not None and (isinstance(value, bool) or not isinstance(value, want)):
            raise ConfigError(f"cluster.{key} must be {_OPTIONS[key].__name__}, got {value!r}")
        out[key] = float(value) if _OPTIONS.get(key) is float else value
    return out


def main_cluster(args: argparse.Namespace) -> int:
    """``gateway cluster``: 0 pass, 1 fail (the summary's verdict), 2 bad option."""
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    try:
        params = cluster_params(args)
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
