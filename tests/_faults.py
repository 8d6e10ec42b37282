"""A bug the tests put in a symbol's handler: production code has no hook for it."""

from __future__ import annotations

from gateway.runtime.symbol import SymbolState


def crash_after_triggers(state: SymbolState, crashes: int = 1) -> list[float]:
    """Make ``state`` raise right after a stop-loss fired and before its close is
    requested (in its ``request_due_closes``), the first ``crashes`` times; returns the
    last prices it crashed at, filled as it happens. Later calls behave as before."""
    raised: list[float] = []
    request_due_closes = state.request_due_closes
    seen = state.stops.fired

    def bug() -> None:
        nonlocal seen
        fired, seen = state.stops.fired > seen, state.stops.fired
        if fired and len(raised) < crashes:
            raised.append(state.last_price or 0.0)
            raise RuntimeError(f"injected crash after a trigger, price {state.last_price}")
        request_due_closes()

    state.request_due_closes = bug  # type: ignore[method-assign]
    return raised
