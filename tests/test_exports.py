"""The public surface, pinned (in the style of trio's test_exports.py): ``gateway.__all__``
is exactly what a user needs, every name in it resolves, nothing public lies outside
it, and a change to it is a deliberate edit of this file."""

from __future__ import annotations

import inspect
import subprocess
import sys
import types

import pytest

import gateway

#: Grouped as the README presents them; a new public name is added here on purpose.
SURFACE = {
    "entry": {"open_gateway", "Gateway", "Subscription", "Callback", "CloseHook",
              "WebSocketLayer", "__version__"},
    "config": {"GatewayConfig", "PositionConfig", "ReconnectConfig", "load_config",
               "Stream", "StreamKind", "parse_stream"},
    "market events": {"AggTrade", "AvgPrice", "BlockTrade", "BookTicker", "DepthUpdate",
                      "Kline", "MiniTicker", "PartialDepth", "ReferencePrice",
                      "RollingTicker", "ServerShutdown", "Ticker", "Trade", "Event",
                      "MarketEvent"},
    "gateway events": {"CandleClosed", "GapDetected", "GapFilled", "GapUnfilled",
                       "GatewayErrorEvent", "StopTriggered", "StreamRefused",
                       "SymbolQuarantined"},
    "positions and books": {"PositionStatus", "Side", "StopState", "OrderBookSync",
                            "SyncState"},
    "errors": {"GatewayError", "ConfigError", "ConnectionFailed", "ConnectionLost",
               "DecodeError", "InternalError", "InvalidStreamName", "PositionError",
               "SubscriptionError", "UnknownSymbol", "SymbolFailed",
               "RestartIntensityExceeded"},
    "stats": {"GatewayStats", "SymbolStats", "ConnectionStats", "RouterStats",
              "RestStats", "HoldStats", "CallbackStats", "LatencyStats", "Percentiles",
              "RefusedStream", "ServiceStats"},
    "embedded exchange": {"open_simulator", "Simulator", "SimulatorConfig"},
}  # fmt: skip


def test_all_is_the_surface_sorted_and_unique() -> None:
    pinned = set().union(*SURFACE.values())
    assert sum(len(group) for group in SURFACE.values()) == len(pinned)  # no name twice
    assert set(gateway.__all__) == pinned
    assert list(gateway.__all__) == sorted(gateway.__all__)
    assert len(gateway.__all__) == len(set(gateway.__all__))


def test_every_exported_name_resolves_to_the_projects_own_object() -> None:
    for name in gateway.__all__:
        obj = getattr(gateway, name)
        if name == "__version__":
            assert isinstance(obj, str)
            continue
        if not (inspect.isclass(obj) or inspect.isfunction(obj)):
            continue  # a type alias (Callback, Event, ...): its parts are checked
        assert obj.__module__.split(".")[0] in ("gateway", "actors"), (name, obj.__module__)


def test_nothing_public_lies_outside_all() -> None:
    public = {n for n in vars(gateway) if not n.startswith("_")}
    submodules = {n for n in public if isinstance(getattr(gateway, n), types.ModuleType)}
    assert public - submodules - set(gateway.__all__) == set()


def test_errors_are_gateway_errors_and_events_are_frozen_values() -> None:
    import attrs

    for name in SURFACE["errors"] - {"RestartIntensityExceeded"}:
        assert issubclass(getattr(gateway, name), gateway.GatewayError), name
    for name in SURFACE["market events"] | SURFACE["gateway events"] | SURFACE["stats"]:
        obj = getattr(gateway, name)
        if inspect.isclass(obj):  # aliases (Event, MarketEvent) are unions of these
            assert attrs.has(obj), name
            blank = object.__new__(obj)
            with pytest.raises(attrs.exceptions.FrozenInstanceError):
                setattr(blank, attrs.fields(obj)[0].name, None)


def test_importing_gateway_does_not_import_the_embedded_exchange() -> None:
    """Its REST side is heavy: it loads on first use of ``gateway.open_simulator``."""
    code = ("import sys, gateway; print('gateway.simulator' in sys.modules); "
            "gateway.open_simulator; print('gateway.simulator' in sys.modules)")  # fmt: skip
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60, check=True)  # fmt: skip
    assert out.stdout.split() == ["False", "True"], out
