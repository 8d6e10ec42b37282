"""The seeded fault schedule of ``gateway soak --chaos``.

`KINDS` lists every fault; `build_schedule` draws ``count`` of them (each kind at
least once, the rest at random) into equal slots between ``start`` and ``end`` seconds,
jittered inside their slot. A `Fault` expands to timed steps: exchange commands
(``("control", method, args, kwargs)``), stop crossings (``("cross", symbol)``: the
exchange trades through the next armed stop of that symbol) and gateway-side actions
(``("gateway", action, symbol)``). The schedule is a pure function of its arguments.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import attrs

__all__ = ["CONNECTION_WIDE", "EXTRA_KINDS", "KINDS", "Fault", "Step", "build_schedule"]

#: Every fault kind; each appears at least once in any schedule.
KINDS = (
    "close_abrupt", "close_1008", "close_1011", "subscribe_1008", "subscribe_reset",
    "stall_silent", "stall_pinging", "zombie", "server_shutdown", "lifetime_close",
    "refuse_connections", "garbage_frames", "wrong_types", "unknown_event",
    "oversized_frame", "duplicate_frames", "gap_small", "gap_large", "rest_5xx",
    "rest_429", "rest_timeout", "rest_down", "actor_crash", "callback_raise",
    "hook_raise", "hook_hang",
)  # fmt: skip

#: Kinds drawn only when asked for (``--kinds``): a symbol actor crashed from the close
#: hook of a stop that just fired (its close in flight while it restarts).
EXTRA_KINDS = ("crash_after_trigger",)

#: Kinds that disturb every connection (so every symbol's streams must come back).
CONNECTION_WIDE = frozenset({
    "close_abrupt", "close_1008", "close_1011", "subscribe_1008", "subscribe_reset",
    "stall_silent", "stall_pinging", "zombie", "server_shutdown", "lifetime_close",
    "refuse_connections", "oversized_frame",
})  # fmt: skip


@attrs.frozen(slots=True)
class Step:
    """One thing to do ``at`` seconds after the run started."""

    at: float
    what: tuple[Any, ...]

    @property
    def label(self) -> str:
        """Short text for logs and the JSON."""
        w = self.what
        if w[0] == "control":
            args = ", ".join(repr(a) for a in w[2])
            kw = ", ".join(f"{k}={v!r}" for k, v in w[3].items())
            return f"{w[1]}({', '.join(x for x in (args, kw) if x)})"
        return " ".join(str(x) for x in w)


@attrs.frozen(slots=True)
class Fault:
    """One fault: its kind, start time, affected symbol (None: every symbol) and steps."""

    index: int
    kind: str
    at: float
    symbol: str | None
    params: dict[str, Any]
    steps: tuple[Step, ...]

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready."""
        return {"index": self.index, "kind": self.kind, "at": round(self.at, 3),
                "symbol": self.symbol, "params": self.params,
                "steps": [(round(s.at, 3), s.label) for s in self.steps]}  # fmt: skip


def _c(method: str, *args: Any, **kwargs: Any) -> tuple[Any, ...]:
    return ("control", method, args, kwargs)


def _fault(index: int, kind: str, at: float, rng: random.Random, symbols: Sequence[str],
           big_gap: int) -> Fault:  # fmt: skip
    steps: list[Step] = []
    params: dict[str, Any] = {}
    sym: str | None = None

    def step(dt: float, *what: Any) -> None:
        steps.append(Step(at + dt, what))

    def one() -> str:
        return rng.choice(list(symbols))

    if kind == "close_abrupt":
        step(0, *_c("close_connections", abrupt=True))
        step(0.01, "cross", one())
    elif kind in ("close_1008", "close_1011"):
        code = int(kind[-4:])
        step(0, *_c("close_connections", code, "chaos"))
    elif kind == "subscribe_1008":
        step(0, *_c("close_on_subscribe", 1008, "Too many requests"))
        step(0.01, *_c("close_connections", 1000, "chaos"))
    elif kind == "subscribe_reset":
        step(0, *_c("reset_on_subscribe"))
        step(0.01, *_c("close_connections", 1000, "chaos"))
    elif kind in ("stall_silent", "stall_pinging"):
        d = params["seconds"] = round(rng.uniform(2.0, 9.0), 2)
        step(0, *_c("stall", d, pings=kind == "stall_pinging"))
        step(d / 2, "cross", one())  # a crossing nobody sees live
    elif kind == "zombie":
        step(0, *_c("zombie"))
        step(0.5, "cross", one())
    elif kind == "server_shutdown":
        step(0, *_c("send_server_shutdown"))
        step(1.0, *_c("expire_connections"))
    elif kind == "lifetime_close":
        step(0, *_c("expire_connections"))
    elif kind == "refuse_connections":
        d = params["seconds"] = round(rng.uniform(1.0, 5.0), 2)
        step(0, *_c("refuse_connections", d, 503))
        step(0.01, *_c("close_connections", abrupt=True))
        step(d / 2, "cross", one())  # an outage
    elif kind == "garbage_frames":
        step(0, *_c("send_malformed"))
        step(0.001, *_c("send_raw", "\x00\xff not json at all {{{"))
    elif kind == "wrong_types":
        sym = one()
        step(0, *_c("send_wrong_types", sym))
    elif kind == "unknown_event":
        sym = one()
        step(0, *_c("send_unknown_event", sym))
    elif kind == "oversized_frame":
        step(0, *_c("send_oversized"))
    elif kind == "duplicate_frames":
        n = params["count"] = rng.randint(50, 2000)
        step(0, *_c("duplicate_frames", n))
    elif kind in ("gap_small", "gap_large"):
        sym = one()
        n = params["count"] = (rng.randint(5, 500) if kind == "gap_small"
                               else rng.randint(big_gap // 2, big_gap))  # fmt: skip
        step(0, *_c("drop_trades", sym, n))
        step(0.001, "cross", sym)  # the crossing is inside the gap
        step(0.002, *_c("generate", n, sym))  # the gap at once, not over minutes
    elif kind in ("rest_5xx", "rest_429", "rest_timeout", "rest_down"):
        if kind == "rest_5xx":
            status, n = rng.choice((500, 502, 503)), rng.randint(1, 3)
            params.update(status=status, count=n)
            step(0, *_c("fail_rest", status, n))
        elif kind == "rest_429":
            wait = params["retry_after"] = float(rng.randint(1, 5))
            step(0, *_c("fail_rest", 429, 1, retry_after=wait))
        elif kind == "rest_timeout":
            step(0, *_c("hang_rest", 1))
        else:
            d = params["seconds"] = round(rng.uniform(3.0, 15.0), 2)
            step(0, *_c("rest_down", d))
        sym = one()
        n = params["gap"] = rng.randint(20, 2000)
        step(0.01, *_c("drop_trades", sym, n))  # makes the gateway use REST now
        step(0.011, "cross", sym)
        step(0.012, *_c("generate", n, sym))
    elif kind == "actor_crash":
        sym = one()
        step(0, "gateway", "crash", sym)
    elif kind == "crash_after_trigger":
        sym = one()
        step(0, "gateway", "crash_after_trigger", sym)
        step(0.01, "cross", sym)  # the stop fires; its close hook kills the actor
    elif kind == "callback_raise":
        step(0, "gateway", "callback_raise", "-")
    elif kind in ("hook_raise", "hook_hang"):
        sym = one()
        step(0, "gateway", kind, sym)  # the next stop to fire on sym meets a bad hook
        step(0.01, "cross", sym)
    else:
        raise ValueError(f"unknown fault kind {kind!r}")
    return Fault(index, kind, at, sym, params, tuple(sorted(steps, key=lambda s: s.at)))


def build_schedule(
    seed: int, start: float, end: float, symbols: Sequence[str], count: int,
    big_gap: int = 25_000, kinds: Sequence[str] = KINDS,
) -> list[Fault]:  # fmt: skip
    """``count`` faults (every one of ``kinds`` at least once) between ``start`` and
    ``end`` s, one per slot; ``big_gap``: the most ids a large gap drops."""
    unknown = sorted(set(kinds) - set(KINDS) - set(EXTRA_KINDS))
    if unknown or not kinds:
        raise ValueError(f"unknown fault kinds {unknown}; known: {', '.join(KINDS)}")
    if count < len(kinds):
        raise ValueError(f"at least {len(kinds)} faults are needed (every kind once)")
    rng = random.Random(f"chaos-soak:{seed}")
    pool = tuple(kinds)
    drawn = list(pool) + [rng.choice(pool) for _ in range(count - len(pool))]
    kinds = drawn
    rng.shuffle(kinds)
    slot = (end - start) / len(kinds)
    return [_fault(i, kind, start + i * slot + rng.uniform(0, slot / 3), rng, symbols, big_gap)
            for i, kind in enumerate(kinds)]  # fmt: skip
