"""`Gateway.stats` is a frozen, typed value (`gateway.stats`), and its ``to_dict()`` is the
JSON form the run summary and the benchmarks write. How `Gateway.stats` assembles it from
the gateway's parts: test_gateway_stats.py."""

from __future__ import annotations

import json

import attrs
import pytest

from gateway import (
    ConnectionStats,
    GatewayStats,
    HoldStats,
    RouterStats,
)


def test_a_run_that_never_started_has_stats_too() -> None:
    """What the CLI reports for a run that never went live: the same types, empty."""
    stats = GatewayStats(symbols={}, connections=(ConnectionStats(id="conn-1", state="idle",
                                                                  streams=2),),
                         router=RouterStats())  # fmt: skip
    assert stats.to_dict()["connections"][0] == {
        "id": "conn-1", "state": "idle", "streams": 2, "connects": 0, "reconnects": 0,
        "rotations": 0, "frames": 0, "control_frames": 0, "control_pace": "",
        "rate_penalties": 0, "zombie_replacements": 0, "stream_resubscribes": 0,
        "stream_checks": 0, "refused": {}, "refusal_retries": 0, "last_error": None,
        "restarts": 0,
    }  # fmt: skip
    assert stats.rest is None and stats.holds == HoldStats()


def test_stats_values_are_frozen_and_their_json_form_is_plain_data() -> None:
    stats = GatewayStats(symbols={}, connections=(), router=RouterStats(frames=3))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        stats.router.frames = 0  # type: ignore[misc]
    plain = json.loads(json.dumps(stats.to_dict()))
    assert set(plain) == {"symbols", "connections", "router", "refused", "rest", "holds",
                          "callbacks", "services"}  # fmt: skip
    assert plain["router"]["frames"] == 3 and plain["rest"] is None
