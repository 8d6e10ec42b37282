"""Restart backoff: how long a supervisor waits before restarting a child.

Pure arithmetic (no trio, no clock); the supervisor passes the attempt number
and its own seedable `random.Random`, so tests get exact delays.
"""

from __future__ import annotations

import random

import attrs


def _non_negative(_inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value >= 0:
        raise ValueError(f"Backoff.{attribute.name} must be >= 0, got {value!r}")


def _at_least_one(_inst: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value >= 1:
        raise ValueError(f"Backoff.{attribute.name} must be >= 1, got {value!r}")


@attrs.frozen
class Backoff:
    """Exponential backoff with a cap and optional full jitter.

    The ceiling for attempt ``n`` (0 for the first restart) is
    ``min(cap, initial * factor ** n)``. With ``jitter`` the delay is drawn
    uniformly from ``[0, ceiling]`` ("full jitter", which spreads restarts of
    many children that failed together); without it the delay is the ceiling.
    """

    initial: float = attrs.field(default=0.1, validator=_non_negative)
    factor: float = attrs.field(default=2.0, validator=_at_least_one)
    cap: float = attrs.field(default=10.0, validator=_non_negative)
    jitter: bool = True

    def ceiling(self, attempt: int) -> float:
        """The largest delay attempt ``attempt`` (>= 0) can get."""
        if attempt < 0:
            raise ValueError(f"attempt must be >= 0, got {attempt}")
        try:
            return min(self.cap, self.initial * self.factor**attempt)
        except OverflowError:  # factor ** attempt beyond float range: long past the cap
            return self.cap

    def delay(self, attempt: int, rng: random.Random) -> float:
        """The delay in seconds before restart number ``attempt`` (0-based)."""
        ceiling = self.ceiling(attempt)
        return rng.uniform(0.0, ceiling) if self.jitter else ceiling


#: The default restart backoff (frozen, so one shared instance is safe).
DEFAULT_BACKOFF = Backoff()
