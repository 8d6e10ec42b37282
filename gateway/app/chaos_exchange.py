"""The exchange side of ``gateway soak --chaos``: the embedded exchange plus its ledger,
driven by one JSON command at a time.

`ChaosExchange` wraps a running `Simulator`: a task reads every new aggregate trade
into the `ExchangeLedger` ten times a second (and after every command), and `handle`
runs one command. The same object serves two transports:

- in its own process (``python -m gateway.app.chaos_exchange --symbols 50 ...``), the
  control channel is stdin/stdout, one JSON object per line each way: the first line out
  is ``{"ready": true, "ws_url": ..., "rest_url": ...}``, then one reply per command.
  Nothing listens anywhere but the exchange's own loopback ports: the channel is the
  pipe of the process that started it.
- in the soak's own process (``--clock mock``), `LocalExchange` calls `handle` directly.

Commands (``{"op": ...}``): ``control`` (a whitelisted `SimulatorControl` method with
``args``/``kwargs``), ``start`` (open the ledger's window), ``arm`` (judge a position),
``cross`` (one trade at a stop's price, then one back at the price before it: a
crossing at a known trade id), ``ledger`` (hand over the ledger and the exchange's
figures), ``mark`` (nothing: just the reply's ``next``) and ``quit``. Every reply
carries ``next``: each symbol's next trade id, the mark from which the soak measures
recovery.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import trio

from gateway.app.chaos_ledger import ExchangeLedger, PositionRecord
from gateway.simulator import Simulator, SimulatorConfig, open_simulator

__all__ = ["CONTROL_METHODS", "ChaosExchange", "LocalExchange", "exchange_config", "main",
           "open_chaos_exchange"]  # fmt: skip

log = logging.getLogger(__name__)

#: The `SimulatorControl` methods the ``control`` command may call.
CONTROL_METHODS = frozenset({
    "close_connections", "stall", "resume", "delay_frames", "duplicate_frames",
    "drop_trades", "close_on_subscribe", "reset_on_subscribe", "ignore_subscribe",
    "zombie", "deafen", "refuse_connections", "fail_rest", "hang_rest", "corrupt_rest",
    "rest_down", "rest_up", "send_malformed", "send_raw", "send_unknown_event",
    "send_wrong_types", "send_oversized", "send_server_shutdown", "expire_connections",
    "clear_faults", "generate", "tick",
})  # fmt: skip
_READ_EVERY = 0.1  # seconds between ledger reads
_MAX_READS = round(7 * 86400 / _READ_EVERY)  # the reader's bound: a week of reads
_MAX_CHUNKS = 10**9  # the command loop's bound (a command is at least one chunk)
_E8 = 100_000_000


def exchange_config(
    symbols: tuple[str, ...], seed: int, rate: float, *, clock: str = "wall",
    history: int = 40_000, ping_interval: float = 3.0,
) -> SimulatorConfig:  # fmt: skip
    """The soak's exchange: a calm random walk (stops far from it are crossed only by
    the soak's own trades), ``history`` trades and aggregate trades per symbol served
    over REST (deeper than the largest gap injected), pings every ``ping_interval``."""
    return SimulatorConfig(
        symbols=symbols, seed=seed, rate=rate, clock=clock, volatility=0.00003,
        agg_history=history, trade_history=history, ping_interval=ping_interval,
        pong_timeout=10.0,
    )  # fmt: skip


def _plain(value: Any) -> Any:
    """A control method's result as JSON (ranges as [first, last])."""
    if isinstance(value, range):
        return [value.start, value.stop - 1]
    if isinstance(value, int | float | str | bool) or value is None:
        return value
    return repr(value)


class ChaosExchange:
    """A running simulator, its ledger, and the command handler (module docstring)."""

    def __init__(self, sim: Simulator) -> None:
        self.sim = sim
        self.market = sim.market
        self.ledger = ExchangeLedger(self.market.tick_e8)
        self.commands = 0

    def read(self) -> None:
        """Read every symbol's new aggregate trades into the ledger."""
        for sym in self.market.active:
            self.ledger.read(sym.name, sym.aggs)

    async def run_reader(self) -> None:
        """Read the ledger every `_READ_EVERY` s until cancelled (at most a week)."""
        for _ in range(_MAX_READS):
            self.read()
            await trio.sleep(_READ_EVERY)

    def next_ids(self) -> dict[str, int]:
        """Each symbol's next trade id."""
        return {s.name: s.next_trade_id for s in self.market.active}

    def handle(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Run one command; the reply always has ``ok`` and ``next``."""
        self.commands += 1
        op = cmd.get("op")
        try:
            result = self._run(op, cmd)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            self.read()
            return {"ok": False, "error": f"{op}: {exc!r}", "next": self.next_ids()}
        self.read()
        return {"ok": True, "result": result, "next": self.next_ids()}

    def _run(self, op: Any, cmd: dict[str, Any]) -> Any:
        control, market = self.sim.control, self.market
        if op == "control":
            method = cmd["method"]
            if method not in CONTROL_METHODS:
                raise ValueError(f"{method!r} is not a control method the soak may call")
            return _plain(getattr(control, method)(*cmd.get("args", ()), **cmd.get("kwargs", {})))
        if op == "start":
            self.read()
            for sym in market.active:
                self.ledger.start(sym.name, sym.next_agg_id, sym.next_trade_id)
            return {s.name: s.book.best_bid for s in market.active}
        if op == "arm":
            sym = market.symbol(cmd["symbol"])
            self.read()  # what was generated before the arm does not count for it
            pos = PositionRecord(cmd["id"], sym.name, cmd["side"], int(cmd["stop"]),
                                 sym.next_trade_id)  # fmt: skip
            self.ledger.arm(pos)
            return pos.from_id
        if op == "cross":
            sym = market.symbol(cmd["symbol"])
            back = sym.trades[-1][1] // sym.tick_e8 if sym.trades else sym.book.best_bid
            qty = 0.001
            tid = control.inject_trade(sym.name, int(cmd["ticks"]) * sym.tick_e8 / _E8, qty)
            back_id = control.inject_trade(sym.name, back * sym.tick_e8 / _E8, qty)
            return [tid, back_id]
        if op == "ledger":
            self.read()
            stats = self.sim.control.stats()
            return {
                "symbols": self.ledger.snapshot(),
                "trades_total": market.trades_total,
                "frames_sent": stats.frames_sent,
                "frames_dropped": stats.frames_dropped,
                "connections_total": stats.connections_total,
                "rss_mb": _rss_mb(),
                "commands": self.commands,
            }
        if op in ("mark", "quit"):
            return None
        raise ValueError(f"unknown op {op!r}")


def _rss_mb() -> float:
    """This process's resident set (MB)."""
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class LocalExchange:
    """The exchange in the soak's own process (one trio run: MockClock-deterministic)."""

    def __init__(self, core: ChaosExchange) -> None:
        self.core = core
        self.ws_url = core.sim.ws_url
        self.rest_url = core.sim.rest_url or ""
        self.pid: int | None = None

    async def call(self, cmd: dict[str, Any]) -> dict[str, Any]:
        """Run ``cmd`` now (a checkpoint first, as a round trip would have)."""
        await trio.lowlevel.checkpoint()
        return self.core.handle(cmd)


@asynccontextmanager
async def open_chaos_exchange(config: SimulatorConfig) -> AsyncIterator[ChaosExchange]:
    """Run the simulator with its ledger reader for the duration of the block."""
    async with open_simulator(config) as sim, trio.open_nursery() as nursery:
        core = ChaosExchange(sim)
        nursery.start_soon(core.run_reader)
        try:
            yield core
        finally:
            nursery.cancel_scope.cancel()


# --- its own process -------------------------------------------------------------------


def _reply(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


async def _serve(config: SimulatorConfig) -> None:
    async with open_chaos_exchange(config) as core:
        _reply({"ready": True, "ws_url": core.sim.ws_url, "rest_url": core.sim.rest_url,
                "pid": os.getpid()})  # fmt: skip
        stdin = trio.lowlevel.FdStream(os.dup(sys.stdin.fileno()))
        buf = b""
        async with stdin:
            for _ in range(_MAX_CHUNKS):  # ends at end of input or on "quit"
                chunk = await stdin.receive_some(65536)
                if not chunk:
                    return
                buf += chunk
                *lines, buf = buf.split(b"\n")
                for line in lines:
                    if not line.strip():
                        continue
                    try:
                        cmd = json.loads(line)
                    except ValueError as exc:
                        _reply({"ok": False, "error": f"not JSON: {exc}", "next": {}})
                        continue
                    _reply(core.handle(cmd))
                    if cmd.get("op") == "quit":
                        return


def main(argv: list[str] | None = None) -> int:
    """``python -m gateway.app.chaos_exchange``: serve until ``quit`` or end of stdin."""
    p = argparse.ArgumentParser(prog="python -m gateway.app.chaos_exchange")
    p.add_argument("--symbols", required=True, help="comma-separated")
    p.add_argument("--seed", type=int, default=1)
    p.add_argument("--rate", type=float, default=1000.0)
    p.add_argument("--history", type=int, default=40_000)
    p.add_argument("--log-level", default="WARNING")
    args = p.parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), stream=sys.stderr,
                        format="%(asctime)s exchange %(name)s %(message)s")  # fmt: skip
    cfg = exchange_config(tuple(args.symbols.split(",")), args.seed, args.rate,
                          history=args.history)  # fmt: skip
    try:
        trio.run(_serve, cfg)
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
