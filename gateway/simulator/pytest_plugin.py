"""pytest plugin: the ``binance_simulator`` fixture (a running embedded exchange).

Registered through the ``pytest11`` entry point. ``pip install 'trio-market-gateway[pytest]'``
brings pytest and pytest-trio, and nothing needs configuring: an ``async def`` test that uses
the fixture is marked for trio here (as ``trio_mode = true`` would do), so this runs as is::

    async def test_my_bot(binance_simulator):
        url = binance_simulator.stream_url(["btcusdt@trade"])
        ...

Without pytest-trio active (not installed, or ``-p no:trio``) such a test fails with
`MISSING_PYTEST_TRIO`, which says what to install; a plain ``def`` test that asks for the
fixture fails with `SYNC_TEST`.

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

import inspect
from collections.abc import AsyncIterator
from typing import Any

import attrs
import pytest

from gateway.simulator.config import SimulatorConfig
from gateway.simulator.server import Simulator, open_simulator

__all__ = [
    "DEFAULT_FIXTURE_OPTIONS",
    "MISSING_PYTEST_TRIO",
    "SYNC_TEST",
    "binance_simulator",
    "binance_simulator_config",
]

#: The failure of a test using the fixture while pytest-trio is not active.
MISSING_PYTEST_TRIO = (
    "the binance_simulator fixture runs under trio and needs the pytest-trio plugin, "
    "which is not active: pip install 'trio-market-gateway[pytest]' "
    "(or pip install 'pytest-trio>=0.8'); no pytest configuration is needed"
)
#: The failure of a plain ``def`` test using the fixture.
SYNC_TEST = (
    "the binance_simulator fixture is async: use it from an `async def` test "
    "(no pytest configuration is needed)"
)

_FIXTURE = "binance_simulator"

#: What the fixture runs with unless told otherwise.
DEFAULT_FIXTURE_OPTIONS: dict[str, Any] = {
    "symbols": ("BTCUSDT", "ETHUSDT"),
    "seed": 0,
    "rate": 100.0,
    "clock": "virtual",
}


def _uses_fixture(item: pytest.Item) -> bool:
    return isinstance(item, pytest.Function) and _FIXTURE in item.fixturenames


def _is_async_test(item: pytest.Function) -> bool:
    hypothesis = getattr(item.obj, "hypothesis", None)
    func = getattr(hypothesis, "inner_test", item.obj)
    return inspect.iscoroutinefunction(func)


def _trio_active(config: pytest.Config) -> bool:
    return config.pluginmanager.has_plugin("trio")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the ``async def`` tests using the fixture for pytest-trio, so that users need
    neither ``trio_mode = true`` nor ``@pytest.mark.trio``."""
    if not _trio_active(config):
        return
    for item in items:
        if (
            _uses_fixture(item)
            and isinstance(item, pytest.Function)
            and _is_async_test(item)
            and item.get_closest_marker("trio") is None
        ):
            item.add_marker(pytest.mark.trio)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    """Fail a test using the fixture with what to do, before pytest's own less helpful
    errors about async functions and fixtures."""
    if not _uses_fixture(item) or not isinstance(item, pytest.Function):
        return
    if not _trio_active(item.config):
        pytest.fail(MISSING_PYTEST_TRIO, pytrace=False)
    if not _is_async_test(item):
        pytest.fail(SYNC_TEST, pytrace=False)


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
