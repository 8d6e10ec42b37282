"""A bug the tests put in a symbol's machine: production code has no hook for it."""

from __future__ import annotations

from gateway.runtime.symbol import SymbolRuntime


def crash_after_triggers(state: SymbolRuntime, crashes: int = 1) -> list[float]:
    """Make ``state`` raise right after a stop-loss fired and before its close is
    requested (in its ``request_due_closes``), the first ``crashes`` times; returns the
    last prices it crashed at, filled as it happens. Later calls behave as before."""
    raised: list[float] = []
    machine = state.machine
    request_due_closes = machine.request_due_closes
    seen = machine.stops.fired

    def bug(now: float) -> bool:
        nonlocal seen
        fired, seen = machine.stops.fired > seen, machine.stops.fired
        if fired and len(raised) < crashes:
            raised.append(machine.last_price or 0.0)
            raise RuntimeError(f"injected crash after a trigger, price {machine.last_price}")
        return request_due_closes(now)

    machine.request_due_closes = bug  # type: ignore[method-assign]
    return raised
