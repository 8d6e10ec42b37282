"""pytest plugin: the ``binance_simulator`` fixture (a running embedded exchange).

Registered through the ``pytest11`` entry point, so installing the package is enough::

    async def test_my_bot(binance_simulator):
        url = binance_simulator.stream_url(["btcusdt@trade"])
        ...

Default configuration: `DEFAULT_FIXTURE_OPTIONS` (symbols BTCUSDT and ETHUSDT, seed 0,
100 trades/s, the virtual clock so that runs under ``autojump_clock`` are
deterministic, every limit at the exchange's value). Change it for a module or a test by
overriding the ``binance_simulator_config`` fixture, or per test with an indirect
parameter holding option overrides::

    @pytest.mark.parametrize("binance_simulator", [{"pacing": "manual"}], indirect=True)
    async def test_quiet_market(binance_simulator): ...

``{"tls": True}`` serves ``wss://`` / ``https://``; trust ``binance_simulator.ca_file``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest

from gateway.simulator.config import SimulatorConfig
from gateway.simulator.server import Simulator, open_simulator

__all__ = ["DEFAULT_FIXTURE_OPTIONS", "binance_simulator", "binance_simulator_config"]

#: What the fixture runs with unless told otherwise.
DEFAULT_FIXTURE_OPTIONS: dict[str, Any] = {
    "symbols": ("BTCUSDT", "ETHUSDT"),
    "seed": 0,
    "rate": 100.0,
    "clock": "virtual",
}


@pytest.fixture
def binance_simulator_config() -> SimulatorConfig:
    """The configuration ``binance_simulator`` starts from; override it to change defaults."""
    return SimulatorConfig.from_kwargs(**DEFAULT_FIXTURE_OPTIONS)


@pytest.fixture
async def binance_simulator(
    request: pytest.FixtureRequest, binance_simulator_config: SimulatorConfig
) -> AsyncIterator[Simulator]:
    """A running simulator; an indirect parameter (a dict of options, or a whole
    `SimulatorConfig`) overrides ``binance_simulator_config``."""
    param = getattr(request, "param", None)
    config = binance_simulator_config
    if isinstance(param, SimulatorConfig):
        config = param
    elif isinstance(param, dict):
        SimulatorConfig.from_kwargs(**{**attrs.asdict(config, recurse=False), **param})
        config = attrs.evolve(config, **param)
    elif param is not None:
        raise TypeError(
            f"binance_simulator parameter must be a dict of options or a SimulatorConfig, "
            f"got {param!r}"
        )
    async with open_simulator(config) as sim:
        yield sim
