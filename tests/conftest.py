"""Fixtures shared by the suite: a private ``redis-server`` (tests of `gateway.cluster`)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from gateway.cluster.redis_server import PrivateRedis, open_private_redis


@pytest.fixture
async def private_redis() -> AsyncIterator[PrivateRedis]:
    """A ``redis-server`` of this test's own on a free loopback port, in a temporary
    directory, stopped and removed after it (``.ci/run`` installs Debian's package)."""
    async with open_private_redis() as server:
        yield server
