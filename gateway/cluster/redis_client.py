"""How the cluster talks to Redis: one way to open a client, one tuple of its failures."""

from __future__ import annotations

from typing import Any

import coredis
import coredis.exceptions

__all__ = ["REDIS_ERRORS", "redis_client"]

#: What a lost, refused or unreachable Redis raises (coredis raises them inside groups:
#: catch with ``except*``).
REDIS_ERRORS: tuple[type[Exception], ...] = (coredis.exceptions.RedisError, OSError)


def redis_client(url: str, *, stream_timeout: float = 10.0) -> Any:
    """A `coredis.Redis` for ``url`` answering in text, to be used as ``async with``; a
    connect takes at most 2 s, a reply at most ``stream_timeout`` s."""
    return coredis.Redis.from_url(url, decode_responses=True, connect_timeout=2.0,
                                  stream_timeout=stream_timeout)  # fmt: skip
