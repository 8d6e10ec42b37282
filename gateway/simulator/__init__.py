"""A Binance-compatible market-stream exchange on loopback (WS + REST).

``async with open_simulator(symbols=["BTCUSDT"], seed=1) as sim:`` serves the raw and
combined stream endpoints at ``sim.ws_url`` and the REST side at ``sim.rest_url``;
``sim.control`` drives it (faults, exact trades, stats). See docs/simulator.md.
"""

from gateway.simulator.config import ClockKind, Pacing, SimulatorConfig, TimeUnit
from gateway.simulator.control import SimulatorControl
from gateway.simulator.hub import SimulatorStats
from gateway.simulator.market import Market
from gateway.simulator.server import Simulator, open_simulator

__all__ = [
    "ClockKind",
    "Market",
    "Pacing",
    "Simulator",
    "SimulatorConfig",
    "SimulatorControl",
    "SimulatorStats",
    "TimeUnit",
    "open_simulator",
]
