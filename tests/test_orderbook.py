"""OrderBookSync: section 5.1 of binance-market-streams.md, on synthetic and recorded data."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from gateway.core.events import BookTicker, DepthUpdate, Level
from gateway.core.orderbook import OrderBookSync, SyncState
from tests.recorded_data import RECORDINGS, snapshots, stream_frames

BUFFERING, SYNCED, NEEDS = SyncState.BUFFERING, SyncState.SYNCED, SyncState.NEEDS_SNAPSHOT


def diff(first: int, last: int, bids: tuple[Level, ...] = (),
         asks: tuple[Level, ...] = ()) -> DepthUpdate:  # fmt: skip
    return DepthUpdate("BTCUSDT", first, last, bids, asks, 0)


SNAP_BIDS = ((100.0, 1.0), (99.0, 2.0), (98.0, 3.0))
SNAP_ASKS = ((101.0, 1.0), (102.0, 2.0))


def synced(last_update_id: int = 100) -> OrderBookSync:
    book = OrderBookSync("BTCUSDT")
    assert book.on_snapshot(last_update_id, SNAP_BIDS, SNAP_ASKS) is SYNCED
    return book


def test_diffs_are_buffered_until_a_snapshot_arrives() -> None:
    book = OrderBookSync("BTCUSDT")
    assert book.state is BUFFERING
    assert book.on_diff(diff(95, 99)) is BUFFERING
    assert book.on_diff(diff(100, 103, bids=((100.0, 5.0),))) is BUFFERING
    assert (book.buffered, book.first_buffered_id) == (2, 95)
    assert book.best_bid() is None
    assert book.on_snapshot(101, SNAP_BIDS, SNAP_ASKS) is SYNCED
    assert book.last_update_id == 103  # 95..99 dropped (u <= 101), 100..103 bridges 102
    assert book.best_bid() == (100.0, 5.0)
    assert book.buffered == 0 and book.stale == 1


def test_snapshot_older_than_the_buffered_stream_needs_another() -> None:
    book = OrderBookSync("BTCUSDT")
    book.on_diff(diff(105, 110))
    assert book.on_snapshot(103, SNAP_BIDS, SNAP_ASKS) is NEEDS  # 104 was never seen
    assert book.old_snapshots == 1 and book.best_bid() is None
    book.snapshot_requested()
    assert book.state is BUFFERING
    assert book.on_snapshot(104, SNAP_BIDS, SNAP_ASKS) is SYNCED  # U <= 104 + 1 <= u
    assert book.last_update_id == 110


def test_steady_state_applies_each_next_diff() -> None:
    book = synced(100)
    assert book.on_diff(diff(101, 105, bids=((100.5, 1.5),), asks=((101.0, 0.0),))) is SYNCED
    assert book.best_bid() == (100.5, 1.5)
    assert book.best_ask() == (102.0, 2.0)
    assert book.last_update_id == 105 and book.applied == 1


def test_stale_diff_is_ignored() -> None:
    book = synced(100)
    assert book.on_diff(diff(90, 100, bids=((100.0, 0.0),))) is SYNCED
    assert book.best_bid() == (100.0, 1.0) and book.stale == 1


def test_overlapping_diff_is_applied() -> None:
    """A make-before-break rotation can replay part of a range: quantities are absolute."""
    book = synced(100)
    book.on_diff(diff(101, 105))
    assert book.on_diff(diff(103, 108, bids=((100.0, 7.0),))) is SYNCED
    assert book.last_update_id == 108 and book.best_bid() == (100.0, 7.0)


def test_missed_events_discard_the_book_and_need_a_snapshot() -> None:
    book = synced(100)
    assert book.on_diff(diff(102, 105)) is NEEDS  # 101 is missing
    assert book.gaps == 1 and book.best_bid() is None and book.last_update_id is None
    assert book.first_buffered_id == 102  # buffering restarted from the diff after the gap
    book.on_diff(diff(106, 107))
    assert book.on_snapshot(104, SNAP_BIDS, SNAP_ASKS) is SYNCED
    assert book.last_update_id == 107


def test_a_hole_in_the_buffer_drops_what_came_before_it() -> None:
    book = OrderBookSync("BTCUSDT")
    book.on_diff(diff(10, 12))
    book.on_diff(diff(20, 22))
    assert book.first_buffered_id == 20
    assert book.on_snapshot(12, SNAP_BIDS, SNAP_ASKS) is NEEDS


def test_buffer_overflow_drops_the_oldest_and_asks_for_a_new_snapshot() -> None:
    book = OrderBookSync("BTCUSDT", max_buffer=3)
    for i in range(5):
        book.on_diff(diff(10 + i, 10 + i))
    assert book.state is NEEDS and book.overflows == 2
    assert (book.buffered, book.first_buffered_id) == (3, 12)
    assert book.on_snapshot(10, SNAP_BIDS, SNAP_ASKS) is NEEDS
    assert book.on_snapshot(11, SNAP_BIDS, SNAP_ASKS) is SYNCED
    assert book.last_update_id == 14


def test_snapshot_with_an_empty_buffer_is_checked_by_the_next_diff() -> None:
    book = synced(100)
    assert book.on_diff(diff(105, 106)) is NEEDS


def test_snapshot_while_synced_replaces_only_an_older_book() -> None:
    book = synced(100)
    assert book.on_snapshot(90, ((1.0, 1.0),), ()) is SYNCED
    assert book.best_bid() == (100.0, 1.0)
    assert book.on_snapshot(200, ((1.0, 1.0),), ()) is SYNCED
    assert book.best_bid() == (1.0, 1.0) and book.last_update_id == 200


def test_best_levels_follow_removals() -> None:
    book = synced(100)
    book.on_diff(diff(101, 101, bids=((100.0, 0.0), (99.0, 0.0)), asks=((101.0, 0.0),)))
    assert book.best_bid() == (98.0, 3.0) and book.best_ask() == (102.0, 2.0)
    book.on_diff(diff(102, 102, bids=((98.0, 0.0), (97.0, 0.0))))  # removing absent 97: fine
    assert book.best_bid() is None
    book.on_diff(diff(103, 103, bids=((96.0, 1.0),), asks=((100.0, 4.0),)))
    assert book.best_bid() == (96.0, 1.0) and book.best_ask() == (100.0, 4.0)


def test_top_levels_are_sorted_best_first() -> None:
    bids, asks = synced().top(2)
    assert bids == [(100.0, 1.0), (99.0, 2.0)]
    assert asks == [(101.0, 1.0), (102.0, 2.0)]


def test_zero_quantities_in_a_snapshot_are_not_levels() -> None:
    book = OrderBookSync("BTCUSDT")
    book.on_snapshot(1, ((5.0, 0.0), (4.0, 1.0)), ())
    assert book.bids == {4.0: 1.0} and book.best_ask() is None


def test_reset_needs_a_snapshot() -> None:
    book = synced()
    book.reset()
    assert book.state is NEEDS and book.best_bid() is None


def test_max_buffer_must_be_positive() -> None:
    with pytest.raises(ValueError):
        OrderBookSync("BTCUSDT", max_buffer=0)


# -- property: the synced book equals the true book, or a gap is reported ---------------------

levels = st.lists(
    st.tuples(st.sampled_from([1.0, 2.0, 3.0, 4.0, 5.0]), st.sampled_from([0.0, 1.0, 2.5])),
    max_size=4,
)


@given(
    changes=st.lists(st.tuples(levels, levels, st.integers(1, 3)), min_size=1, max_size=30),
    data=st.data(),
)
def test_synced_book_matches_the_true_book(
    changes: list[tuple[list[Level], list[Level], int]], data: st.DataObject
) -> None:
    # The exchange's true book and its stream of contiguous diffs.
    truth_bids: dict[float, float] = {}
    truth_asks: dict[float, float] = {}
    states = [(0, {}, {})]  # (update id, bids, asks) after each diff
    diffs = []
    uid = 0
    for bids, asks, width in changes:
        d = diff(uid + 1, uid + width, tuple(bids), tuple(asks))
        uid += width
        for side, rows in ((truth_bids, bids), (truth_asks, asks)):
            for p, q in rows:
                if q:
                    side[p] = q
                else:
                    side.pop(p, None)
        diffs.append(d)
        states.append((uid, dict(truth_bids), dict(truth_asks)))
    n = len(diffs)
    start = data.draw(st.integers(0, n - 1), "stream starts at diff")
    snap_at = data.draw(st.integers(max(0, start - 1), n), "snapshot state after diff")
    deliver = data.draw(st.integers(start, n), "snapshot delivered before diff")
    drop = data.draw(st.one_of(st.none(), st.integers(start, n - 1)), "diff lost")

    book = OrderBookSync("BTCUSDT")
    snap_id, snap_bids, snap_asks = states[snap_at]
    for i in range(start, n + 1):
        if i == deliver:
            book.on_snapshot(snap_id, tuple(snap_bids.items()), tuple(snap_asks.items()))
        if i < n and i != drop:
            book.on_diff(diffs[i])

    by_id = {uid: (b, a) for uid, b, a in states}
    if book.state is SYNCED:  # never wrong while claiming to be synced
        assert book.last_update_id is not None
        assert (book.bids, book.asks) == by_id[book.last_update_id]
        best_bid = max(book.bids) if book.bids else None
        assert (book.best_bid() or (None,))[0] == best_bid
    too_old = snap_at < start  # the snapshot misses part of the first diff's range
    lost = drop is not None and drop >= snap_at  # a lost diff the snapshot does not cover
    delivered = [i for i in range(start, n) if i != drop]
    if (lost and drop is not None and drop < n - 1) or (too_old and delivered):
        assert book.state is not SYNCED  # detected as soon as a later diff shows it
        assert book.gaps + book.old_snapshots >= 1
    elif not too_old and not lost:
        assert book.state is SYNCED
        assert book.last_update_id == max(states[-1][0], snap_id)
        assert book.bids == truth_bids and book.asks == truth_asks


# -- the real recordings ------------------------------------------------------------------------


def _replay(recording: str) -> tuple[dict[str, OrderBookSync], int, int, int]:
    """Feed each symbol's diffs and its REST snapshot in receive-time order; compare the
    book with every bookTicker frame whose update id equals a diff's final id."""
    snaps = {s.symbol: s for s in snapshots(recording)}
    books = {sym: OrderBookSync(sym) for sym in snaps}
    tickers: dict[str, dict[int, BookTicker]] = {sym: {} for sym in snaps}
    exact = agree_latest = disagree = 0
    for frame in stream_frames(recording):
        for sym, snap in list(snaps.items()):
            if snap.receive_time <= frame.receive_time:
                books[sym].on_snapshot(snap.last_update_id, snap.bids, snap.asks)
                del snaps[sym]
        ev = frame.event
        if isinstance(ev, BookTicker) and ev.symbol in books:
            tickers[ev.symbol][ev.update_id] = ev
        elif isinstance(ev, DepthUpdate) and ev.symbol in books:
            book = books[ev.symbol]
            if book.on_diff(ev) is not SYNCED or book.last_update_id != ev.final_update_id:
                continue
            seen = [u for u in tickers[ev.symbol] if u <= ev.final_update_id]
            if not seen:
                continue
            # bookTicker is pushed on every change of the best levels, so the newest one
            # at or before this id is the book's top at this id (when it exists).
            t = tickers[ev.symbol][max(seen)]
            top = ((t.bid_price, t.bid_quantity), (t.ask_price, t.ask_quantity))
            if (book.best_bid(), book.best_ask()) == top:
                agree_latest += 1
                exact += max(seen) == ev.final_update_id
            else:
                disagree += 1
    assert not snaps, "every snapshot was delivered"
    return books, exact, agree_latest, disagree


@pytest.mark.parametrize(
    ("recording", "exact", "latest"), [("2021-04-17", 201, 573), ("2021-08-14", 98, 530),
                                       ("2021-10-12", 26, 159)],
)  # fmt: skip
def test_recorded_depth_syncs_and_agrees_with_book_ticker(
    recording: str, exact: int, latest: int
) -> None:
    assert recording in RECORDINGS
    books, n_exact, n_latest, disagree = _replay(recording)
    # The recordings have no gap: every symbol syncs from its snapshot and stays synced.
    assert all(b.state is SYNCED and b.gaps == 0 and b.syncs == 1 for b in books.values())
    assert all(b.applied >= 1 for b in books.values())
    # ...and the book's top equals the exchange's bookTicker at every comparable id.
    assert disagree == 0
    assert (n_exact, n_latest) == (exact, latest)
