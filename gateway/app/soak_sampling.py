"""The soak's measurements: a sample every ``--interval`` s (RSS, live Python blocks,
CPU, events, queues) and one at the end, into the run's ``samples`` for the verdict."""

from __future__ import annotations

import math
import os
import sys
import time
from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from gateway.app.soak import _Run

__all__ = ["sample_at_end", "sample_every_interval"]


def _rss_mb(pid: int | None = None) -> float:
    """Resident memory in MiB of process ``pid`` (this one by default); NaN if unreadable."""
    try:
        with open(f"/proc/{pid or 'self'}/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except OSError:
        return math.nan


def _cpu_s(pid: int) -> float | None:
    """CPU seconds (user + system) of process ``pid`` so far."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return round((int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK"), 2)


async def sample_every_interval(run: _Run, gw: Any, sub: Any) -> None:
    """A sample every ``interval`` s until cancelled; what memory is held where, too."""
    p = run.params
    for k in range(1, 10**9):  # bounded by the run's cancellation
        await trio.sleep_until(run.t0 + k * p.interval)
        stats = gw.stats()
        symbols = stats.symbols.values()
        run.samples.append({
            "t_s": round(trio.current_time() - run.t0, 3),
            "rss_mb": _rss_mb(),
            # live Python memory blocks: back to a level after a burst while RSS stays up
            # is CPython keeping its arenas (a high-water mark), not a leak
            "py_blocks": sys.getallocatedblocks(),
            "exchange_rss_mb": _rss_mb(run.exchange_pid) if run.exchange_pid else None,
            "events": run.rec.events,
            "reconnects": sum(c.reconnects for c in stats.connections),
            "faults": sum(run.injected.values()),
            "cpu_s": round(time.process_time(), 2),
            "exchange_cpu_s": _cpu_s(run.exchange_pid) if run.exchange_pid else None,
            "rest_throttled": stats.rest.throttled if stats.rest is not None else None,
            "held": sum(v.held for v in symbols),
            "subscriber_queued": len(sub),
            "backfill_queued": stats.rest.queued if stats.rest is not None else 0,
        })  # fmt: skip


def sample_at_end(run: _Run, gw: Any) -> None:
    """The last sample, once the window has closed and the run settled (or gave up)."""
    run.samples.append({"t_s": round(trio.current_time() - run.t0, 3), "rss_mb": _rss_mb(),
                        "py_blocks": sys.getallocatedblocks(),
                        "exchange_rss_mb": _rss_mb(run.exchange_pid)
                        if run.exchange_pid else None, "events": run.rec.events,
                        "reconnects": sum(c.reconnects for c in gw.stats().connections),
                        "faults": sum(run.injected.values()), "end": True})  # fmt: skip
