"""Reconnect backoff: exponential growth, a cap, full jitter and an attempt budget (pure).

The connection actor counts its consecutive failed attempts (``attempt`` 0 is the
first retry after the first failure) and asks the policy how long to wait and
whether to give up; the policy reads no clock and owns no random state.
"""

from __future__ import annotations

from typing import Any, Protocol

import attrs

__all__ = ["ReconnectPolicy", "UniformSource"]


class UniformSource(Protocol):
    """Anything with ``uniform(a, b)``, such as `random.Random` (seed it in tests)."""

    def uniform(self, a: float, b: float) -> float: ...


def _positive(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value > 0:
        raise ValueError(f"ReconnectPolicy.{attribute.name} must be > 0, got {value!r}")


def _at_least_one(instance: object, attribute: attrs.Attribute[float], value: float) -> None:
    if not value >= 1:
        raise ValueError(f"ReconnectPolicy.{attribute.name} must be >= 1, got {value!r}")


def _attempts(instance: object, attribute: attrs.Attribute[Any], value: int | None) -> None:
    if value is not None and value < 0:
        raise ValueError(f"ReconnectPolicy.max_attempts must be >= 0 or None, got {value!r}")


@attrs.frozen(slots=True)
class ReconnectPolicy:
    """Exponential backoff with full jitter.

    ``ceiling(n) = min(cap, initial * factor**n)`` and ``delay(n, rng)`` is uniform
    in ``[0, ceiling(n)]`` (AWS "full jitter": spreads the reconnects of many
    clients that failed together). ``max_attempts=None`` never gives up.
    """

    initial: float = attrs.field(default=0.5, validator=_positive)
    factor: float = attrs.field(default=2.0, validator=_at_least_one)
    cap: float = attrs.field(default=30.0, validator=_positive)
    max_attempts: int | None = attrs.field(default=10, validator=_attempts)

    def ceiling(self, attempt: int) -> float:
        """The largest delay for ``attempt`` (0-based): ``min(cap, initial * factor**attempt)``."""
        if attempt < 0:
            raise ValueError(f"attempt must be >= 0, got {attempt}")
        try:
            grown = self.initial * self.factor**attempt
        except OverflowError:  # factor**attempt beyond float range: long past the cap
            return self.cap
        return min(self.cap, grown)

    def delay(self, attempt: int, rng: UniformSource) -> float:
        """Seconds to wait before retry number ``attempt`` (0-based): uniform(0, ceiling)."""
        return rng.uniform(0.0, self.ceiling(attempt))

    def exhausted(self, attempt: int) -> bool:
        """True when ``attempt`` failed attempts used up the budget: stop and escalate."""
        return self.max_attempts is not None and attempt >= self.max_attempts
