"""The throughput benchmark's recorded feed (`benchmarks.recorded_feed`): the real
recordings, looped over the benchmark's symbols, decode to what a live exchange sends:
every symbol's ids contiguous across frames and passes, candles one after the other and
each closed, nothing a gateway would count as a gap or a duplicate."""

from __future__ import annotations

from collections import defaultdict
from itertools import pairwise
from typing import Any

from benchmarks.recorded_feed import Recorded, recorded_rows
from gateway.core.codec import decode_frame
from gateway.core.events import AggTrade, BookTicker, DepthUpdate, GapDetected, Kline
from gateway.core.symbol_machine import SymbolMachine

_TOKEN_US = 1_111_111_111_111_111


def _events(feed: Recorded, passes: int) -> list[Any]:
    out = []
    for loop in range(passes):
        for i in range(len(feed)):
            out.append(decode_frame(feed.text(i, loop), 1))
    return out


def test_every_symbols_ids_continue_across_frames_and_passes() -> None:
    names = [f"s{i:04d}usdt" for i in range(40)]
    rows = len(recorded_rows())
    feed = Recorded(names, 3 * rows + 17, _TOKEN_US, micros=True)  # passes cut mid-round
    last: dict[tuple[str, type], int] = {}
    opens: dict[str, list[tuple[int, bool]]] = defaultdict(list)
    kinds = set()
    for ev in _events(feed, 3):
        kinds.add(type(ev))
        key = (ev.symbol, type(ev))
        if type(ev) is AggTrade:
            assert last.get(key, 0) + 1 == ev.agg_trade_id
            last[key] = ev.agg_trade_id
        elif type(ev) is DepthUpdate:
            assert last.get(key, 0) + 1 == ev.first_update_id
            last[key] = ev.final_update_id
        elif type(ev) is BookTicker:
            assert last.get(key, 0) + 1 == ev.update_id
            last[key] = ev.update_id
        else:
            assert type(ev) is Kline
            opens[ev.symbol].append((ev.open_time, ev.is_closed))
    assert kinds == {AggTrade, DepthUpdate, BookTicker, Kline}
    assert {s for s, _ in last} == {n.upper() for n in names}  # every symbol gets traffic
    for seq in opens.values():
        for (t0, closed0), (t1, _) in pairwise(seq):
            assert t1 in (t0, t0 + 60_000_000)  # the same candle or the next minute (µs)
            assert closed0 == (t1 != t0)  # a candle closes on its last update


def test_a_symbol_machine_finds_no_gap_and_no_duplicate_in_it() -> None:
    names = [f"s{i:04d}usdt" for i in range(7)]
    feed = Recorded(names, 2 * len(recorded_rows()), _TOKEN_US, micros=True)
    machines = {n.upper(): SymbolMachine(n.upper(), event_time_unit_ns=1000) for n in names}
    for ev in _events(feed, 2):
        machine = machines[ev.symbol]
        machine.on_event(ev, 0.0, 0)
        assert not any(type(out) is GapDetected for out in machine.out)
        machine.out.clear()
        machine.requests.clear()
    assert sum(m.handled for m in machines.values()) == 4 * len(recorded_rows())
    assert all(m.gaps == 0 and m.duplicates == 0 for m in machines.values())
