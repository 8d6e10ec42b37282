"""The router: bad input is counted and skipped, and its counters stay bounded."""

from __future__ import annotations

from gateway.runtime.router import ControlSink, Router


def test_router_counts_unknown_kinds_without_growing_without_bound() -> None:
    router = Router()
    for i in range(500):
        router.route(f'{{"e":"invented{i}","E":1}}', 1, ControlSink())
    router.route("not json", 1, ControlSink())
    assert (router.unknown, router.malformed) == (500, 1)
    assert len(router.unknown_kinds) == 101 and router.unknown_kinds["(other)"] == 400
