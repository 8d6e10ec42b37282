"""Strict rolling-window rate limiting (pure: the caller passes ``now``).

The exchange counts every frame a client sends on a connection (pings, pongs
and JSON control frames) against 5 per second, and connection attempts against
300 per 5 minutes per IP (binance-market-streams.md, section 2.3). A
`RollingWindowLimiter` guarantees that **any half-open interval of length
``window`` holds at most ``limit`` recorded events**: equivalently, for the
recorded times ``t``, ``t[i + limit] >= t[i] + window``. The defaults keep a
margin (4 frames a second).

Usage from trio code::

    while not limiter.try_acquire(trio.current_time()):
        await trio.sleep_until(limiter.next_free_time(trio.current_time()))
    await ws.send_message(frame)

``next_free_time`` is the exact instant a slot frees, so sleeping until it
never wakes an ulp too early (``now + delay_until_free(now)`` can round down).
"""

from __future__ import annotations

from collections import deque

from gateway.errors import RateLimitExceeded

__all__ = [
    "CONNECT_ATTEMPTS_LIMIT",
    "CONNECT_ATTEMPTS_WINDOW",
    "CONTROL_FRAMES_LIMIT",
    "CONTROL_FRAMES_WINDOW",
    "RollingWindowLimiter",
    "connect_attempt_limiter",
    "control_frame_limiter",
]

#: Our share of the exchange's 5 incoming frames per second per connection.
CONTROL_FRAMES_LIMIT = 4
CONTROL_FRAMES_WINDOW = 1.0
#: The exchange's 300 connection attempts per 5 minutes per IP (shared by all connections).
CONNECT_ATTEMPTS_LIMIT = 300
CONNECT_ATTEMPTS_WINDOW = 300.0


class RollingWindowLimiter:
    """At most ``limit`` events in any half-open time window of ``window`` seconds.

    Keeps the times of the last ``limit`` events (a deque bounded by ``limit``), so
    every method is O(1). ``now`` must never decrease between calls (a monotonic
    clock such as ``trio.current_time()``); a decreasing ``now`` raises `ValueError`.
    """

    __slots__ = ("_last", "_times", "limit", "window")

    def __init__(
        self, limit: int = CONTROL_FRAMES_LIMIT, window: float = CONTROL_FRAMES_WINDOW
    ) -> None:
        if limit < 1:
            raise ValueError(f"limit must be >= 1, got {limit!r}")
        if not window > 0:
            raise ValueError(f"window must be > 0, got {window!r}")
        self.limit = limit
        self.window = window
        self._times: deque[float] = deque(maxlen=limit)
        self._last = float("-inf")

    def next_free_time(self, now: float) -> float:
        """The earliest instant (>= ``now``) at which `try_acquire` will succeed."""
        self._check_clock(now)
        times = self._times
        if len(times) < self.limit:
            return now
        return max(now, times[0] + self.window)

    def delay_until_free(self, now: float) -> float:
        """Seconds from ``now`` until a slot is free; 0.0 if one is free now."""
        self._check_clock(now)
        times = self._times
        if len(times) < self.limit:
            return 0.0
        free_at = times[0] + self.window
        return free_at - now if free_at > now else 0.0

    def try_acquire(self, now: float) -> bool:
        """Record an event at ``now`` if a slot is free and return True; else change nothing."""
        self._check_clock(now)
        times = self._times
        if len(times) == self.limit and now < times[0] + self.window:
            return False
        times.append(now)  # the deque's maxlen drops the oldest, now out of the window
        self._last = now
        return True

    def record(self, now: float) -> None:
        """Record an event at ``now``; raises `RateLimitExceeded` if no slot is free."""
        if not self.try_acquire(now):
            raise RateLimitExceeded(self.limit, self.window, self.delay_until_free(now))

    def in_window(self, now: float) -> int:
        """How many recorded events still count at ``now`` (those newer than ``now - window``)."""
        self._check_clock(now)
        return sum(1 for t in self._times if now < t + self.window)

    def _check_clock(self, now: float) -> None:
        if now < self._last:
            raise ValueError(
                f"time went backwards: now={now!r} is before the last event at {self._last!r}; "
                "pass a monotonic clock"
            )

    def __repr__(self) -> str:
        return f"RollingWindowLimiter(limit={self.limit}, window={self.window})"


def control_frame_limiter() -> RollingWindowLimiter:
    """A limiter for the frames one connection sends: 4 per 1 s (the exchange allows 5)."""
    return RollingWindowLimiter(CONTROL_FRAMES_LIMIT, CONTROL_FRAMES_WINDOW)


def connect_attempt_limiter() -> RollingWindowLimiter:
    """A limiter for connection attempts, shared by every connection: 300 per 300 s."""
    return RollingWindowLimiter(CONNECT_ATTEMPTS_LIMIT, CONNECT_ATTEMPTS_WINDOW)
