"""The demonstration: the embedded exchange's defaults and a stop-loss that fires.

The embedded exchange runs in the same trio run as the gateway (it is a demo and a
test target; ``gateway simulate`` serves it alone, in its own process). Its market is
on the wall clock, so 1m candles close once a minute; the demo streams add
``kline_1s`` so that candles visibly close every second.

The demonstration position is a LONG on the first symbol, entered at its first trade
price with a tight stop (`DEMO_STOP_PCT`). The random walk usually crosses it within
seconds; if it has not after `DEMO_STOP_DEADLINE` seconds, the demo injects one trade
just below the stop through the exchange's control (``inject_trade``), so the stop-loss
fires within the first few seconds of every demo run, whatever the seed.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import trio

from gateway.api import Gateway
from gateway.core.events import AggTrade, Trade
from gateway.core.positions import StopState
from gateway.simulator import SimulatorControl

__all__ = [
    "DEMO_POSITION_ID",
    "DEMO_RATE",
    "DEMO_SEED",
    "DEMO_STOP_DEADLINE",
    "DEMO_STOP_PCT",
    "DEMO_STREAMS",
    "DEMO_SYMBOLS",
    "run_demo_position",
]

DEMO_SYMBOLS: tuple[str, ...] = ("BTCUSDT", "ETHUSDT", "BNBUSDT", "SOLUSDT", "XRPUSDT")
DEMO_STREAMS: tuple[str, ...] = ("trade", "kline_1s", "kline_1m", "ticker")
DEMO_SEED = 0
DEMO_RATE = 200.0  #: trades per second over all symbols
DEMO_POSITION_ID = "demo-1"
DEMO_STOP_PCT = 0.002  #: 0.2 % below entry
DEMO_STOP_DEADLINE = 2.0  #: seconds after entry before the demo pushes the price through
_TICK = 0.01  #: the embedded exchange's default tick size


async def run_demo_position(
    gw: Gateway,
    control: SimulatorControl,
    symbol: str,
    announce: Callable[[str], None],
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Open the demo position at ``symbol``'s first trade, then make sure its stop fires.

    Reports what it does through ``announce`` (one line each). Returns once the stop
    has fired (by the market or by the injected trade); cancel it to stop earlier.
    """
    task_status.started()
    with gw.subscribe(symbol, (Trade, AggTrade), buffer=16) as trades:
        first = await trades.receive()
    pid = gw.open_position(symbol, "LONG", first.price, stop_pct=DEMO_STOP_PCT, id=DEMO_POSITION_ID)
    stop = next(p.position.stop_level for p in gw.positions(symbol) if p.position.id == pid)
    announce(
        f"demo: position {pid} LONG {symbol} entry {first.price:.2f} "
        f"stop {stop:.2f} ({DEMO_STOP_PCT:.1%} below)"
    )
    await trio.sleep(DEMO_STOP_DEADLINE)
    if _armed(gw, symbol, pid):
        price = math.floor(stop / _TICK - 1) * _TICK
        control.inject_trade(symbol, round(price, 2), 0.01)
        announce(f"demo: market did not reach the stop; injected a trade at {price:.2f}")


def _armed(gw: Gateway, symbol: str, pid: str) -> bool:
    return any(p.position.id == pid and p.state is StopState.ARMED for p in gw.positions(symbol))
