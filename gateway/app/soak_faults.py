"""The soak's faults played at their times: exchange-side steps as commands to the
exchange, gateway-side ones (`GatewayFaults`) through the gateway's public seams. The
schedule itself is built by `gateway.app.chaos_faults`."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import trio

from gateway import StopTriggered
from gateway.app.chaos_faults import Fault, Step
from gateway.app.soak_exchange import Exchange

if TYPE_CHECKING:
    from gateway.app.soak import _Run

__all__ = ["GatewayFaults", "play_schedule"]


class GatewayFaults:
    """The faults injected inside the gateway through its public seams: a trade callback
    that raises, a close hook that raises or hangs (on chosen positions, once each), and
    a symbol actor crashed on purpose (`Gateway.kill_symbol`: the supervisor restarts it
    with its state), now or from the close hook of its next stop."""

    def __init__(self) -> None:
        self.raise_next = 0
        self.callback_raised_at: list[tuple[int, float]] = []
        self.callback_recovery: dict[int, float] = {}
        self.callback_calls = 0
        self.bad_hooks: dict[str, tuple[str, int]] = {}  # position id -> (how, fault index)
        self.hook_failed_at: dict[str, float] = {}
        self.hook_recovery: dict[int, float] = {}
        self.hook_calls = 0
        self.crashes = 0
        self.kill_on_close: set[str] = set()  # symbols armed by crash_after_trigger
        self._gw: Any = None

    def on_trade(self, ev: Any) -> None:
        """The user callback: raises when a fault asked for it, else counts."""
        self.callback_calls += 1
        if self.raise_next:
            self.raise_next -= 1
            raise RuntimeError("chaos: the user's trade callback raises")
        if self.callback_raised_at:
            now = trio.current_time()
            for idx, at in self.callback_raised_at:
                self.callback_recovery[idx] = now - at
            self.callback_raised_at.clear()

    async def close_hook(self, ev: StopTriggered) -> None:
        """The user close hook: a chosen position's first call raises or hangs; an armed
        symbol's actor is killed first (crash_after_trigger)."""
        self.hook_calls += 1
        if ev.symbol in self.kill_on_close:
            self.kill_on_close.discard(ev.symbol)
            if self._gw.kill_symbol(ev.symbol, "chaos: crash after a trigger"):
                self.crashes += 1
        bad = self.bad_hooks.get(ev.position_id)
        pid = ev.position_id
        if bad is not None and pid not in self.hook_failed_at:
            self.hook_failed_at[pid] = trio.current_time()
            if bad[0] == "hook_raise":
                raise RuntimeError(f"chaos: close hook raises for {pid}")
            await trio.sleep_forever()  # the gateway's close_hook_timeout ends it
        if bad is not None and bad[1] not in self.hook_recovery:
            self.hook_recovery[bad[1]] = trio.current_time() - self.hook_failed_at[pid]

    def crash(self, gw: Any, symbol: str) -> None:
        """Crash ``symbol``'s actor now, through the public lever (`Gateway.kill_symbol`):
        restarted by its supervisor, what arrives meanwhile queued, nothing lost."""
        if gw.kill_symbol(symbol, "chaos: actor_crash"):
            self.crashes += 1

    def crash_after_trigger(self, gw: Any, symbol: str) -> None:
        """Crash ``symbol``'s actor from the close hook of its next stop to fire: the
        trigger is kept, its close is in flight while the actor restarts (once)."""
        self._gw = gw
        self.kill_on_close.add(symbol)


async def _play_step(run: _Run, ex: Exchange, gw: Any, fault: Fault, step: Step) -> dict[str, int]:
    """Play one step; returns the exchange's next trade ids (the recovery marks)."""
    what = step.what
    reply: dict[str, Any]
    if what[0] == "control":
        reply = await ex.call({"op": "control", "method": what[1], "args": list(what[2]),
                               "kwargs": what[3]})  # fmt: skip
    elif what[0] == "cross":
        sym = what[1]
        order = run.crossers.get(sym)
        if not order:
            reply = await ex.call({"op": "mark"})
            run.crossings.append({"fault": fault.index, "symbol": sym, "skipped": True})
        else:
            pid, ticks = order.popleft()
            reply = await ex.call({"op": "cross", "symbol": sym, "ticks": ticks})
            run.crossings.append({"fault": fault.index, "kind": fault.kind, "symbol": sym,
                                  "position": pid, "ids": reply.get("result"),
                                  "at": round(trio.current_time() - run.t0, 3)})  # fmt: skip
    else:
        action, sym = what[1], what[2]
        reply = await ex.call({"op": "mark"})
        if action == "crash":
            run.gf.crash(gw, sym)
        elif action == "crash_after_trigger":
            run.gf.crash_after_trigger(gw, sym)
        elif action == "callback_raise":
            run.gf.raise_next += 1
            run.gf.callback_raised_at.append((fault.index, trio.current_time()))
        elif action in ("hook_raise", "hook_hang"):
            order = run.crossers.get(sym)
            if order:
                run.gf.bad_hooks[order[0][0]] = (action, fault.index)
    run.applied.append({"fault": fault.index, "at": round(trio.current_time() - run.t0, 3),
                        "step": step.label, "ok": reply.get("ok"),
                        "error": reply.get("error")})  # fmt: skip
    marks: dict[str, int] = reply.get("next", {})
    return marks


async def play_schedule(run: _Run, ex: Exchange, gw: Any) -> None:
    """Play the schedule: every step at its time (from the run's start)."""
    steps = sorted(((s.at, f.index, n, f, s) for f in run.schedule
                    for n, s in enumerate(f.steps)), key=lambda x: (x[0], x[1], x[2]))  # fmt: skip
    for _, _, n, fault, step in steps:
        await trio.sleep_until(run.t0 + step.at)
        marks = await _play_step(run, ex, gw, fault, step)
        if n == 0:
            run.injected[fault.kind] += 1
            if fault.kind == "callback_raise" or fault.kind.startswith("hook_"):
                continue  # measured by the callback / the hook themselves
            wanted = [fault.symbol] if fault.symbol else run.names
            run.rec.expect(fault.index, {s: marks[s] for s in wanted if s in marks},
                           trio.current_time())  # fmt: skip
