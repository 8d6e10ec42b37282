"""The seeded fault schedule of ``python -m benchmarks lossless``: every fault the embedded
exchange can inject (`SimulatorControl`), at least once, at recorded times.

A `Fault` is one kind with its drawn parameters; it expands to timed `Action` calls on
the control (a stall and its resume, a REST fault and the trade gap that makes the
gateway use REST, a subscribe fault and the close that makes the gateway subscribe
again). The schedule is a pure function of the seed, the run length and the symbols.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence
from typing import Any

import attrs

from gateway.simulator import SimulatorControl

__all__ = ["KINDS", "Action", "Fault", "build_schedule"]

#: Every fault kind the schedule draws from; each appears at least once per run.
KINDS = (
    "close_connections", "close_abrupt", "stall", "delay_frames", "duplicate_frames",
    "drop_trades", "close_on_subscribe", "reset_on_subscribe", "ignore_subscribe",
    "refuse_streams", "ping_before_close_reply", "deafen", "zombie", "forget_stream",
    "refuse_connections", "fail_rest_5xx", "fail_rest_429", "corrupt_rest", "hang_rest",
    "rest_down", "send_malformed", "send_unknown_event",
)  # fmt: skip

Call = Callable[[SimulatorControl], object]


@attrs.frozen(slots=True)
class Action:
    """One call on the exchange's control at ``at`` seconds into the faulted phase."""

    at: float
    label: str
    call: Call = attrs.field(eq=False, repr=False)


@attrs.frozen(slots=True)
class Fault:
    """One injected fault: its kind, when (s into the faulted phase), its parameters and
    the actions that play it."""

    kind: str
    at: float
    params: dict[str, Any]
    actions: tuple[Action, ...] = attrs.field(eq=False, repr=False)

    def as_dict(self) -> dict[str, Any]:
        """Kind, time, parameters and action labels, for the JSON."""
        return {"kind": self.kind, "at": round(self.at, 3), "params": self.params,
                "actions": [(round(a.at, 3), a.label) for a in self.actions]}  # fmt: skip


def _gap(rng: random.Random, at: float, symbols: Sequence[str]) -> tuple[Action, dict[str, Any]]:
    """A trade gap right after a REST fault, so the gateway meets the fault."""
    sym, count = rng.choice(symbols), rng.randint(5, 300)
    return (Action(at + 0.05, f"drop_trades({sym}, {count})",
                   lambda c: c.drop_trades(sym, count)),
            {"gap_symbol": sym, "gap_trades": count})  # fmt: skip


def _stream(rng: random.Random, symbols: Sequence[str], suffixes: Sequence[str]) -> str:
    return f"{rng.choice(symbols).lower()}@{rng.choice(suffixes)}"


def _fault(
    kind: str, at: float, rng: random.Random, symbols: Sequence[str], suffixes: Sequence[str]
) -> Fault:
    """Draw the parameters of one ``kind`` at ``at`` and build its actions."""
    acts: list[Action] = []
    params: dict[str, Any] = {}

    def act(when: float, label: str, call: Call) -> None:
        acts.append(Action(when, label, call))

    def close_after() -> None:  # makes the gateway reconnect and subscribe again
        act(at + 0.05, "close_connections()", lambda c: c.close_connections())

    if kind == "close_connections":
        act(at, "close_connections(1000)", lambda c: c.close_connections(1000, "judge"))
    elif kind == "close_abrupt":
        act(at, "close_connections(abrupt)", lambda c: c.close_connections(abrupt=True))
    elif kind == "stall":
        d = params["seconds"] = round(rng.uniform(1.0, 4.0), 2)
        act(at, "stall()", lambda c: c.stall(math.inf))
        act(at + d, "resume()", lambda c: c.resume())
    elif kind == "delay_frames":
        d = params["seconds"] = round(rng.uniform(0.5, 2.5), 2)
        act(at, f"delay_frames({d})", lambda c: c.delay_frames(d))
    elif kind == "duplicate_frames":
        n = params["count"] = rng.randint(20, 400)
        act(at, f"duplicate_frames({n})", lambda c: c.duplicate_frames(n))
    elif kind == "drop_trades":
        sym, n = rng.choice(symbols), rng.randint(5, 300)
        params.update(symbol=sym, count=n)
        act(at, f"drop_trades({sym}, {n})", lambda c: c.drop_trades(sym, n))
    elif kind in ("close_on_subscribe", "reset_on_subscribe", "ignore_subscribe"):
        method = getattr(SimulatorControl, kind)
        act(at, f"{kind}()", lambda c: method(c))
        close_after()
    elif kind == "refuse_streams":
        name = params["stream"] = _stream(rng, symbols, suffixes)
        d = params["seconds"] = round(rng.uniform(2.0, 5.0), 2)
        act(at, f"refuse_streams([{name}])", lambda c: c.refuse_streams([name]))
        close_after()
        act(at + d, f"accept_streams([{name}])", lambda c: c.accept_streams([name]))
    elif kind == "ping_before_close_reply":
        # pings race the reply to the gateway's own close: make it close a zombie
        act(at, "ping_before_close_reply(3)", lambda c: c.ping_before_close_reply(3))
        act(at + 0.05, "zombie()", lambda c: c.zombie())
        act(at + 45.0, "ping_before_close_reply(0)", lambda c: c.ping_before_close_reply(0))
    elif kind == "deafen":
        act(at, "deafen()", lambda c: c.deafen())
    elif kind == "zombie":
        act(at, "zombie()", lambda c: c.zombie())
    elif kind == "forget_stream":
        name = params["stream"] = _stream(rng, symbols, suffixes)
        act(at, f"forget_stream({name})", lambda c: c.forget_stream(name))
    elif kind == "refuse_connections":
        d = params["seconds"] = round(rng.uniform(1.0, 4.0), 2)
        act(at, f"refuse_connections({d}, 503)", lambda c: c.refuse_connections(d, 503))
        close_after()
    elif kind == "fail_rest_5xx":
        status, n = rng.choice((500, 502, 503)), rng.randint(1, 3)
        params.update(status=status, count=n)
        act(at, f"fail_rest({status}, {n})", lambda c: c.fail_rest(status, n))
    elif kind == "fail_rest_429":
        wait = params["retry_after"] = float(rng.randint(1, 8))
        act(at, f"fail_rest(429, Retry-After {wait:g})",
            lambda c: c.fail_rest(429, 1, retry_after=wait))  # fmt: skip
    elif kind == "corrupt_rest":
        n = params["count"] = rng.randint(1, 2)
        act(at, f"corrupt_rest({n})", lambda c: c.corrupt_rest(n))
    elif kind == "hang_rest":
        act(at, "hang_rest(1)", lambda c: c.hang_rest(1))
    elif kind == "rest_down":
        d = params["seconds"] = round(rng.uniform(3.0, 12.0), 2)
        act(at, "rest_down()", lambda c: c.rest_down(math.inf))
        act(at + d, "rest_up()", lambda c: c.rest_up())
    elif kind == "send_malformed":
        act(at, "send_malformed()", lambda c: c.send_malformed())
    elif kind == "send_unknown_event":
        sym = params["symbol"] = rng.choice(symbols)
        act(at, f"send_unknown_event({sym})", lambda c: c.send_unknown_event(sym))
    else:
        raise ValueError(f"unknown fault kind {kind!r}; known: {', '.join(KINDS)}")
    if kind.endswith("_rest") or kind.startswith(("fail_rest", "rest_")):
        action, extra = _gap(rng, at, symbols)
        acts.append(action)
        params.update(extra)
    return Fault(kind, at, params, tuple(sorted(acts, key=lambda a: a.at)))


def build_schedule(
    seed: int, seconds: float, symbols: Sequence[str], suffixes: Sequence[str], count: int
) -> list[Fault]:
    """``count`` faults (at least one of every kind in `KINDS`) over ``seconds``, in one
    slot each (shuffled, jittered within the slot), after a 2 s lead; oldest first."""
    rng = random.Random(f"lossless:{seed}")
    kinds = list(KINDS) + [rng.choice(KINDS) for _ in range(max(0, count - len(KINDS)))]
    rng.shuffle(kinds)
    lead = min(2.0, seconds / 10)
    slot = max(seconds - lead - 1.0, 1.0) / len(kinds)
    return [_fault(kind, lead + i * slot + rng.uniform(0, slot / 2), rng, symbols, suffixes)
            for i, kind in enumerate(kinds)]  # fmt: skip
