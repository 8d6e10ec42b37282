"""`Gateway.stats` assembled: every part's own snapshot gathered into one frozen
`GatewayStats` (the parts own their counters; this only reads them)."""

from __future__ import annotations

import attrs

from actors import Supervisor
from gateway.core.holds import HoldBudget
from gateway.runtime.backfill import Backfiller
from gateway.runtime.connections import Connections
from gateway.runtime.fallback import PriceFallback
from gateway.runtime.publish import Publisher
from gateway.runtime.router import Router
from gateway.runtime.symbol_tree import SymbolTree
from gateway.stats import (
    CallbackStats,
    GatewayStats,
    RefusedStream,
    RouterStats,
    ServiceStats,
)

__all__ = ["collect_stats"]


def collect_stats(
    *, symbols: SymbolTree, fallback: PriceFallback | None, links: Connections,
    router: Router, backfiller: Backfiller | None, hold_budget: HoldBudget,
    publisher: Publisher, services: Supervisor,
) -> GatewayStats:  # fmt: skip
    """One `GatewayStats` of the gateway's parts now: per-symbol counters with their
    actor's restarts and status, connections, router, REST, holds, callbacks, services."""
    per_symbol = {}
    for sym, state in symbols.states.items():
        snap = state.snapshot()
        child = symbols.report(sym)
        if child is not None:
            snap = attrs.evolve(snap, restarts=child.restarts,
                                status=child.status.value,  # "failed" once quarantined
                                dead_letters=len(child.dead_letters))  # fmt: skip
        if fallback is not None:
            polls, active = fallback.snapshot(sym)
            snap = attrs.evolve(snap, fallback_polls=polls, fallback_active=active)
        per_symbol[sym] = snap
    return GatewayStats(
        symbols=per_symbol,
        connections=tuple(c.snapshot(links.restarts(c)) for c in links.all),
        router=RouterStats(
            frames=router.frames, malformed=router.malformed,
            unknown=router.unknown, unrouted=router.unrouted,
            tap_errors=router.tap_errors,
        ),
        refused={
            name: RefusedStream(code=code, message=msg, connection=c.conn_id)
            for c in links.all
            for name, (code, msg) in c.refused.items()
        },
        rest=backfiller.snapshot() if backfiller is not None else None,
        holds=hold_budget.snapshot(),
        callbacks=CallbackStats(
            calls=publisher.callback_calls, errors=publisher.callback_errors,
            dropped=publisher.callback_queue.dropped,
        ),
        services={
            name: ServiceStats(status=r.status.value, restarts=r.restarts,
                               last_error=r.last_error)
            for name, r in services.report().items()
        },
    )  # fmt: skip
