"""Where event times come from: the wall clock, or a virtual clock on trio's clock."""

from __future__ import annotations

import time
from typing import Protocol

import trio

from gateway.simulator.config import ClockKind

__all__ = ["EventClock", "VirtualClock", "WallClock", "make_clock"]


class EventClock(Protocol):
    """Supplies "now" for event times, in microseconds since the Unix epoch."""

    def now_us(self) -> int:
        """Current event time in microseconds."""
        ...


class WallClock:
    """``time.time()``-based event times (benchmarks, the command line)."""

    def now_us(self) -> int:
        """Wall-clock time in microseconds."""
        return time.time_ns() // 1000


class VirtualClock:
    """A fixed epoch plus the trio clock's progress since creation (deterministic under
    ``MockClock``); must be created and read inside ``trio.run``."""

    def __init__(self, epoch_s: float) -> None:
        self._epoch_us = round(epoch_s * 1_000_000)
        self._start = trio.current_time()

    def now_us(self) -> int:
        """Epoch + elapsed trio time, in microseconds."""
        return self._epoch_us + round((trio.current_time() - self._start) * 1_000_000)


def make_clock(kind: ClockKind, epoch_s: float) -> EventClock:
    """The clock for a config's ``clock`` option."""
    return VirtualClock(epoch_s) if kind is ClockKind.VIRTUAL else WallClock()
