"""`gateway cluster`: a parent that supervises N worker processes and checks their feed.

The parent starts (unless given URLs) a private ``redis-server`` and the embedded
exchange in its own process; splits the symbols between the workers by rendezvous
hashing (`gateway.cluster.hashing`); runs each worker as ``python -m
gateway.cluster.worker``; and restarts a worker that exits for any reason (``kill -9``
included) after a backoff, with the in-process supervisor's intensity rule: more than
``max_restarts`` restarts within ``period`` seconds and that worker is given up (the
verdict then fails). It also reads the whole feed back from Redis as a remote consumer
would, counting events per symbol and kind, duplicates and gaps, for the summary.

`Cluster.resize` changes the number of workers make-before-break: the new owners of the
moving symbols start first, then the old owners restart without them, so the symbols
are published twice for a moment, and Redis refuses the second copies (entry ids are the
exchange's own: `gateway.cluster.wire`). Nothing is lost and nothing doubled.
"""

from __future__ import annotations

import json
import logging
import random
import subprocess
import sys
import time
from collections import deque
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import attrs
import trio

from gateway.cluster.consumer import RemoteFeed, open_remote_feed
from gateway.cluster.hashing import assign, worker_names
from gateway.cluster.redis_client import REDIS_ERRORS, redis_client
from gateway.cluster.redis_server import PrivateRedis, stop_process
from gateway.cluster.worker import worker_key
from gateway.core.backoff import ReconnectPolicy
from gateway.errors import ConfigError, GatewayError

__all__ = [
    "Cluster", "ClusterParams", "WorkerSlot", "open_cluster", "write_summary",
]  # fmt: skip

log = logging.getLogger(__name__)


@attrs.frozen
class ClusterParams:
    """What `gateway cluster` runs (see its ``--help``)."""

    workers: int = 2
    symbols: tuple[str, ...] = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT",
                                "ADAUSDT", "DOGEUSDT", "LTCUSDT")  # fmt: skip
    streams: tuple[str, ...] = ("trade", "kline_1m", "bookTicker")
    redis_url: str | None = None  # None: a private redis-server of the parent's
    url: str | None = None  # the exchange; None: the embedded one, in its own process
    rest_url: str | None = None
    rate: float = 200.0  # the embedded exchange's trades per second, all symbols
    prefix: str = "gateway"
    maxlen: int = 100_000
    max_restarts: int = 5
    period: float = 30.0
    handover: float = 1.0  # s both owners of a moving symbol run (make-before-break)
    faults: tuple[str, ...] = ()  # "<worker>:<fault>" for a first life (tests)
    log_dir: Path | None = None  # each worker's stderr, appended (None: discarded)

    def __attrs_post_init__(self) -> None:
        if self.workers < 1:
            raise ConfigError(f"workers must be >= 1, got {self.workers}")
        if not self.symbols:
            raise ConfigError("symbols: a cluster needs at least one symbol")
        if self.max_restarts < 0 or not self.period > 0 or self.handover < 0:
            raise ConfigError("max_restarts must be >= 0, period > 0 and handover >= 0")


@attrs.define
class WorkerSlot:
    """One worker as the parent sees it: its symbols, process, exits and restarts."""

    name: str
    symbols: list[str]
    pid: int | None = None
    restarts: int = 0
    exits: list[int] = attrs.field(factory=list)
    state: str = "starting"  # starting | running | restarting | gave up | stopped | idle
    _scope: trio.CancelScope | None = attrs.field(default=None, repr=False)
    _history: deque[float] = attrs.field(factory=deque, repr=False)


class Cluster:
    """The running cluster (`open_cluster`): its workers, Redis, exchange and consumer."""

    def __init__(self, params: ClusterParams, redis_url: str, redis_private: bool,
                 ws_url: str, rest_url: str, nursery: trio.Nursery) -> None:  # fmt: skip
        self.params = params
        self.redis_url = redis_url
        self.redis_private = redis_private
        self.ws_url = ws_url
        self.rest_url = rest_url
        self.slots: dict[str, WorkerSlot] = {}
        self.feed: RemoteFeed | None = None
        self.received: dict[str, dict[str, int]] = {}
        self.last_price: dict[str, float] = {}  # of the last trade read back, per symbol
        self._nursery = nursery
        self._changed = trio.Event()
        self._progress = trio.Event()
        self._rng = random.Random()
        self.started_at = time.time()

    # Workers ------------------------------------------------------------------------

    async def start_worker(self, name: str, symbols: list[str]) -> WorkerSlot:
        """Start worker ``name``, or replace it by one with ``symbols``: the new process
        first, then (``handover`` s after it is live, time for the old one to publish
        what it had) the old one stops. Returns once the new one is live."""
        old = self.slots.get(name)
        slot = WorkerSlot(name, symbols)
        if old is not None:
            slot.restarts = old.restarts
        if symbols:
            await self._nursery.start(self._supervise, slot)
        else:  # the hashing gave it nothing (few symbols): no process to run
            slot.state = "idle"
        self.slots[name] = slot
        if old is not None and old._scope is not None:
            await trio.sleep(self.params.handover)
            old._scope.cancel()
        return slot

    async def resize(self, workers: int) -> dict[str, list[str]]:
        """Split the symbols over ``workers`` workers, make-before-break (module
        docstring); returns the symbols that moved, by their new worker."""
        if workers < 1:
            raise ConfigError(f"workers must be >= 1, got {workers}")
        names = worker_names(workers)
        shares = assign(self.params.symbols, names)
        moved: dict[str, list[str]] = {}
        for name, share in shares.items():
            old = self.slots.get(name)
            gained = [s for s in share if old is None or s not in old.symbols]
            if gained:
                moved[name] = gained
                await self.start_worker(name, share)  # the new owners first
        for name, slot in list(self.slots.items()):
            if name not in shares:
                await self.stop_worker(name)
            elif set(slot.symbols) != set(shares[name]):
                await self.start_worker(name, shares[name])  # then without what moved
        return moved

    async def stop_worker(self, name: str) -> None:
        """Stop worker ``name`` for good (no restart)."""
        slot = self.slots.pop(name)
        slot.state = "stopped"
        if slot._scope is not None:
            slot._scope.cancel()

    async def wait_restarted(self, name: str, restarts: int) -> WorkerSlot:
        """Return once worker ``name`` has restarted ``restarts`` times and runs again."""
        while True:
            slot = self.slots.get(name)
            if slot is not None and slot.restarts >= restarts and slot.state == "running":
                return slot
            changed = self._changed
            await changed.wait()

    def _note_change(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    def _argv(self, slot: WorkerSlot) -> list[str]:
        p = self.params
        return [
            sys.executable, "-m", "gateway.cluster.worker", "--name", slot.name,
            "--redis-url", self.redis_url, "--url", self.ws_url, "--rest-url", self.rest_url,
            "--symbols", ",".join(slot.symbols), "--streams", ",".join(p.streams),
            "--prefix", p.prefix, "--maxlen", str(p.maxlen),
            *(arg for fault in self._faults_of(slot) for arg in ("--fault", fault)),
        ]  # fmt: skip

    def _faults_of(self, slot: WorkerSlot) -> list[str]:
        """The faults ``params.faults`` gives ``slot`` ("w0:die-before-close"): its first
        life only, so that the restarted worker shows the recovery."""
        if slot.restarts or slot.exits:
            return []
        return [f.split(":", 1)[1] for f in self.params.faults
                if f.split(":", 1)[0] == slot.name]  # fmt: skip

    async def _supervise(self, slot: WorkerSlot, task_status: trio.TaskStatus[None]) -> None:
        """Run ``slot``'s process; restart it when it exits, within the intensity."""
        p = self.params
        policy = ReconnectPolicy(initial=0.2, cap=5.0, max_attempts=None)
        started = False

        def live() -> None:  # the first life that goes live (or the end) starts the slot
            nonlocal started
            if not started:
                started = True
                task_status.started()

        with trio.CancelScope() as scope:
            slot._scope = scope
            while True:
                code = await self._run_process(slot, live)
                slot.exits.append(code)
                now = trio.current_time()
                slot._history.append(now)
                while slot._history and slot._history[0] < now - p.period:
                    slot._history.popleft()
                if len(slot._history) > p.max_restarts:
                    slot.state = "gave up"
                    log.error("worker %s exited %d times within %gs (last code %d): given up",
                              slot.name, len(slot._history), p.period, code)  # fmt: skip
                    self._note_change()
                    live()
                    return
                slot.state = "restarting"
                self._note_change()
                log.warning("worker %s exited with code %d; restarting", slot.name, code)
                await trio.sleep(policy.delay(len(slot._history) - 1, self._rng))
                slot.restarts += 1

    async def _run_process(self, slot: WorkerSlot, live: Callable[[], None]) -> int:
        """One life of ``slot``'s process, from start to exit; its exit code (negative: the
        signal that ended it). ``live`` is called once the worker says it is live."""
        stderr = _log_file(self.params.log_dir, slot.name)
        try:
            proc = await trio.lowlevel.open_process(
                self._argv(slot), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                stderr=stderr,
            )  # fmt: skip
        finally:
            if stderr is not subprocess.DEVNULL:
                stderr.close()
        slot.pid = proc.pid
        try:
            if await _said_live(proc):
                slot.state = "running"
                self._note_change()
                live()
            else:  # silent, or it said something else: an exit, for the restart rule
                log.warning("worker %s did not say it was live; killing it", slot.name)
                proc.kill()
            return await proc.wait()
        finally:
            await stop_process(proc)  # cancelled: stop it, SIGTERM then SIGKILL
            if proc.stdout is not None:
                with trio.CancelScope(shield=True):
                    await proc.stdout.aclose()

    # The consumer and the summary ------------------------------------------------------

    async def consume(self, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Read every stream of every symbol back from Redis, counting (see `summary`)."""
        kinds = sorted(_kinds_of(self.params.streams) | {"stop"})
        async with open_remote_feed(self.redis_url, self.params.symbols, kinds,
                                    prefix=self.params.prefix, start="0") as feed:  # fmt: skip
            self.feed = feed
            task_status.started()
            while True:
                key, _entry, event = await feed.receive_entry()
                kind = key.rsplit(":", 1)[1]
                per = self.received.setdefault(event.symbol, {})
                per[kind] = per.get(kind, 0) + 1
                if kind == "trade":
                    self.last_price[event.symbol] = event.price
                self._progress.set()
                self._progress = trio.Event()

    async def wait_received(self, done: Callable[[dict[str, dict[str, int]]], bool]) -> None:
        """Return once ``done(received)`` is true (``received``: events read back from
        Redis per symbol and kind); checked after every event."""
        while not done(self.received):
            progress = self._progress
            await progress.wait()

    async def worker_figures(self) -> dict[str, dict[str, str]]:
        """What each worker last wrote to its hash (empty when Redis does not answer)."""
        out: dict[str, dict[str, str]] = {}
        try:
            async with redis_client(self.redis_url, stream_timeout=5.0) as client:
                for name in self.slots:
                    out[name] = dict(await client.hgetall(worker_key(self.params.prefix, name)))
        except* REDIS_ERRORS as group:
            log.warning("cluster: worker figures unreadable: %r", group.exceptions[0])
        return out

    async def summary(self) -> dict[str, Any]:
        """The summary `gateway cluster --summary` writes (docs/cluster.md)."""
        figures = await self.worker_figures()
        feed = self.feed
        workers = {
            name: {
                "symbols": slot.symbols, "state": slot.state, "pid": slot.pid,
                "restarts": slot.restarts, "exits": slot.exits,
                "events_published": int(figures.get(name, {}).get("published", 0)),
                "duplicates_refused": int(figures.get(name, {}).get("duplicates", 0)),
                "dropped": int(figures.get(name, {}).get("dropped", 0)),
                "redis_state": figures.get(name, {}).get("state", "unknown"),
            }
            for name, slot in self.slots.items()
        }  # fmt: skip
        consumer = {
            "received": self.received,
            "events": sum(sum(k.values()) for k in self.received.values()),
            "duplicates": feed.stats.duplicates if feed else 0,
            "gaps": feed.stats.gaps if feed else 0,
            "undecodable": feed.stats.undecodable if feed else 0,
            "reconnects": feed.stats.reconnects if feed else 0,
        }
        problems = []
        if given_up := [n for n, s in self.slots.items() if s.state == "gave up"]:
            problems.append(f"workers given up: {', '.join(given_up)}")
        if consumer["duplicates"]:
            problems.append(f"{consumer['duplicates']} duplicate events")
        if silent := [s for s in self.params.symbols if not self.received.get(s)]:
            problems.append(f"no events for {', '.join(silent[:10])}")
        return {
            "workers": workers, "consumer": consumer,
            "redis": {"url": self.redis_url, "private": self.redis_private},
            "exchange": {"url": self.ws_url, "embedded": self.params.url is None},
            "duration_s": round(time.time() - self.started_at, 3),
            "verdict": "pass" if not problems else "fail: " + "; ".join(problems),
        }  # fmt: skip


async def _said_live(proc: trio.Process, limit: float = 60.0) -> bool:
    """Wait for a worker's one stdout line, ``live pid=...`` (it prints it once its
    gateway is live and publishing); False if it exits or stays silent ``limit`` s."""
    assert proc.stdout is not None
    buf = b""
    with trio.move_on_after(limit):
        while b"\n" not in buf:
            chunk = await proc.stdout.receive_some(256)
            if not chunk:
                return False
            buf += chunk
        return buf.startswith(b"live")
    return False


def _log_file(log_dir: Path | None, name: str) -> Any:
    """Where worker ``name``'s stderr goes: ``<log_dir>/<name>.log``, appended."""
    if log_dir is None:
        return subprocess.DEVNULL
    log_dir.mkdir(parents=True, exist_ok=True)
    return open(log_dir / f"{name}.log", "ab")  # closed by the caller once the child has it


def _kinds_of(streams: Sequence[str]) -> set[str]:
    """The published kinds the gateway's ``streams`` give (depth and others give none)."""
    out = set()
    for s in streams:
        if s in ("trade", "aggTrade", "ticker", "bookTicker") or s.startswith("kline_"):
            out.add(s)
    return out


def _ready_line(buf: bytes) -> str:
    """The ``ws_url=... rest_url=...`` line ``gateway simulate`` prints once it listens
    ("" until a whole one has arrived)."""
    for line in buf.decode(errors="replace").splitlines(keepends=True):
        if line.startswith("ws_url=") and line.endswith("\n"):
            return line.strip()
    return ""


@asynccontextmanager
async def _embedded_exchange(params: ClusterParams) -> AsyncIterator[tuple[str, str]]:
    """``gateway simulate`` in its own process; its (ws_url, rest_url)."""
    argv = [sys.executable, "-m", "gateway", "simulate", "--symbols", ",".join(params.symbols),
            "--rate", str(params.rate), "--port", "0", "--rest-port", "0"]  # fmt: skip
    proc = await trio.lowlevel.open_process(
        argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    try:
        assert proc.stdout is not None
        buf = b""
        with trio.fail_after(30):
            while not (line := _ready_line(buf)):
                chunk = await proc.stdout.receive_some(4096)
                if not chunk:
                    raise GatewayError(f"the embedded exchange exited: {buf[-300:]!r}")
                buf += chunk
        fields = dict(part.split("=", 1) for part in line.split() if "=" in part)
        rest = fields.get("rest_url", "-")
        yield fields["ws_url"], "" if rest == "-" else rest
    finally:
        await stop_process(proc)


@asynccontextmanager
async def open_cluster(params: ClusterParams, *, consume: bool = True) -> AsyncIterator[Cluster]:
    """A running cluster (Redis, exchange, workers, and unless not ``consume`` the
    checking consumer); all stopped on exit."""
    async with AsyncExitStack() as stack:
        private = params.redis_url is None
        if private:
            server = PrivateRedis()
            stack.callback(server.cleanup)
            stack.push_async_callback(server.stop)  # before start: a cancelled start too
            await server.start()
            redis_url = server.url
        else:
            assert params.redis_url is not None
            redis_url = params.redis_url
        if params.url is None:
            ws_url, rest_url = await stack.enter_async_context(_embedded_exchange(params))
        else:
            ws_url, rest_url = params.url, params.rest_url or ""
        nursery = await stack.enter_async_context(trio.open_nursery())
        cluster = Cluster(params, redis_url, private, ws_url, rest_url, nursery)
        if consume:
            await nursery.start(cluster.consume)
        for name, share in assign(params.symbols, worker_names(params.workers)).items():
            await cluster.start_worker(name, share)
        try:
            yield cluster
        finally:
            nursery.cancel_scope.cancel()


def write_summary(path: Path, summary: dict[str, Any]) -> None:
    """``summary`` as indented JSON at ``path`` (its folder made if needed)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
