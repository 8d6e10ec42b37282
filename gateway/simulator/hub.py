"""Sessions, subscriptions and fan-out: each frame is encoded once and queued per client.

Every client has a bounded outgoing buffer (``client_buffer_frames``). A client whose
buffer fills up is disconnected (close 1008 "Too slow: send buffer full"); it never
slows the market or other clients. Faults that act on the outgoing flow (stall, delay,
duplicates, dropped trades) live here too. No I/O: the connection module drains the
buffers onto sockets.
"""

from __future__ import annotations

import itertools
import logging
from collections import Counter, deque
from collections.abc import Callable, Iterable

import attrs
import trio

from gateway.simulator.encode import Frame, ws_frame
from gateway.simulator.market import Emission

__all__ = ["Hub", "Session", "SimulatorStats", "SubscribeFault"]

logger = logging.getLogger(__name__)


@attrs.frozen(slots=True)
class SimulatorStats:
    """A snapshot of the exchange's counters."""

    connections_open: int
    connections_total: int  #: accepted WebSocket connections since start
    connection_attempts: int  #: handshakes seen, accepted or not
    connections_rejected: int
    frames_sent: int  #: frames written to sockets (control replies included)
    frames_dropped: int  #: frames not sent because of a stall or a trade-drop fault
    pings_sent: int
    pongs_received: int
    closes_by_code: dict[int, int]  #: how connections ended (1006: abrupt / no close frame)
    subscriptions: dict[int, tuple[str, ...]]  #: per open connection id


@attrs.frozen(slots=True)
class SubscribeFault:
    """What the exchange does instead of answering one SUBSCRIBE.

    ``"close"``: close with ``code``/``reason`` (1008 "Too many requests" is Binance's
    rate penalty); ``"reset"``: drop the TCP connection (no close frame); ``"ignore"``:
    subscribe but never reply (as to a frame over ~4 KB).
    """

    action: str  # "close", "reset" or "ignore"
    code: int = 1000
    reason: str = ""


class Session:
    """One client connection's state: options, subscriptions, outgoing buffer, close request."""

    __slots__ = ("_hub", "capacity", "close_abrupt", "close_code", "close_event",
                 "close_reason", "combined", "deaf", "flushed", "frames_sent", "id",
                 "incoming", "micros", "out", "streams", "waiting", "wake", "zombie")  # fmt: skip

    def __init__(self, hub: Hub, sid: int, combined: bool, micros: bool, capacity: int) -> None:
        self._hub = hub
        self.id = sid
        self.combined = combined
        self.micros = micros
        self.capacity = capacity
        self.streams: dict[str, None] = {}
        self.out: deque[bytes] = deque()
        self.wake = trio.Event()
        self.waiting = False
        self.incoming: deque[float] = deque()
        self.frames_sent = 0
        self.close_event = trio.Event()
        self.close_code: int | None = None
        self.close_reason = ""
        self.close_abrupt = False
        self.flushed: trio.Event | None = None
        #: Fault: read nothing (no control reply, pong or close reply); still send.
        self.deaf = False
        #: Fault: send no market frames (pings and control replies go on): a zombie stream.
        self.zombie = False

    def push(self, data: bytes) -> None:
        """Queue one complete WebSocket frame; a full buffer disconnects the client."""
        if len(self.out) >= self.capacity:
            self.request_close(1008, "Too slow: send buffer full")
            return
        self.out.append(data)
        if self.waiting:
            self.waiting = False
            self.wake.set()

    def push_json(self, text: bytes) -> None:
        """Queue one text payload (control reply, raw fault frame)."""
        self.push(ws_frame(text))

    def request_close(self, code: int | None, reason: str = "", abrupt: bool = False) -> None:
        """Ask the connection to close (``code`` None: the client closed; just finish)."""
        if self.close_event.is_set():
            return
        self.close_code, self.close_reason, self.close_abrupt = code, reason, abrupt
        self.close_event.set()

    def allow_incoming(self, now: float, limit: int) -> bool:
        """Count one incoming message; False (and a 1008 close) past ``limit`` a second."""
        q = self.incoming
        q.append(now)
        while q and q[0] <= now - 1.0:
            q.popleft()
        if len(q) > limit:
            self.request_close(1008, "Too many requests")
            return False
        return True


class Hub:
    """All sessions and who is subscribed to what; publishes emissions to their buffers."""

    def __init__(self, buffer_frames: int) -> None:
        self._ids = itertools.count(1)
        self.buffer_frames = buffer_frames
        self.sessions: dict[int, Session] = {}
        #: stream name -> sessions subscribed (insertion ordered); doubles as ``wanted``
        self.subscribers: dict[str, dict[Session, None]] = {}
        self.connections_total = 0
        self.connection_attempts = 0
        self.connections_rejected = 0
        self.frames_sent = 0
        self.frames_dropped = 0
        self.pings_sent = 0
        self.pongs_received = 0
        self.closes: Counter[int] = Counter()
        self.stall_until = -1.0
        self.delay_until = -1.0
        #: Fault: no server ping is sent before this trio time (`SimulatorControl.stall`).
        self.pings_paused_until = -1.0
        self.duplicate_left = 0
        self.drops: dict[str, list[range]] = {}
        #: Faults on SUBSCRIBE: each entry is used by one SUBSCRIBE, on any connection.
        self.subscribe_faults: deque[SubscribeFault] = deque()
        #: Stream names every SUBSCRIBE naming them is refused for: name -> (code, msg).
        self.refused_streams: dict[str, tuple[int, str]] = {}
        #: Fault: ping frames sent ahead of the reply to a client's close frame.
        self.pings_before_close = 0
        self.changed = trio.Event()
        self.subscribed = trio.Event()
        self._room: trio.Event | None = None
        #: called with each stream name nobody was subscribed to before (creates symbols)
        self.on_new_stream: Callable[[str], None] | None = None

    # --- sessions ------------------------------------------------------------------------
    def open_session(self, combined: bool, micros: bool) -> Session:
        """Register a new accepted connection."""
        session = Session(self, next(self._ids), combined, micros, self.buffer_frames)
        self.sessions[session.id] = session
        self.connections_total += 1
        self.notify()
        return session

    def close_session(self, session: Session, code: int) -> None:
        """Forget a finished connection and record how it ended."""
        self.unsubscribe(session, list(session.streams))
        self.sessions.pop(session.id, None)
        self.closes[code] += 1
        self.notify()

    def subscribe(self, session: Session, names: Iterable[str]) -> None:
        """Add streams to a session."""
        for name in names:
            session.streams[name] = None
            if name not in self.subscribers and self.on_new_stream is not None:
                self.on_new_stream(name)
            self.subscribers.setdefault(name, {})[session] = None
        if self.subscribers:
            self.subscribed.set()
        self.notify()

    def unsubscribe(self, session: Session, names: Iterable[str]) -> None:
        """Remove streams from a session (unknown names are ignored)."""
        for name in names:
            session.streams.pop(name, None)
            subs = self.subscribers.get(name)
            if subs is not None:
                subs.pop(session, None)
                if not subs:
                    del self.subscribers[name]
        self.notify()

    def notify(self) -> None:
        """Wake whoever waits for a change of the stats."""
        self.changed.set()
        self.changed = trio.Event()

    # --- fan-out -------------------------------------------------------------------------
    def publish(self, emissions: Iterable[Emission], now: float) -> None:
        """Queue each emission to the sessions subscribed to its stream."""
        subscribers = self.subscribers
        stalled = now < self.stall_until
        for stream, kind, record in emissions:
            subs = subscribers.get(stream)
            if not subs:
                continue
            if stalled or (self.drops and self._dropped(kind, record)):
                self.frames_dropped += len(subs)
                continue
            frame = Frame(stream, kind, record)
            copies = 1
            if self.duplicate_left:
                self.duplicate_left -= 1
                copies = 2
            for session in subs:  # push never changes the subscriptions
                if session.zombie:
                    self.frames_dropped += 1
                    continue
                data = frame.wire(session.combined, session.micros)
                session.push(data)
                if copies == 2:
                    session.push(data)

    def _dropped(self, kind: str, record: tuple[object, ...]) -> bool:
        if kind not in ("trade", "aggTrade"):
            return False
        ranges = self.drops.get(str(record[0]))
        if not ranges:
            return False
        if kind == "trade":
            tid = record[1]
            return any(tid in r for r in ranges)
        first, last = record[4], record[5]
        return any(r.start <= last and first < r.stop for r in ranges)  # type: ignore[operator]

    def send_text(self, text: str | bytes, session_id: int | None = None) -> int:
        """Queue a text frame as is to every session (or one); returns how many."""
        data = ws_frame(text.encode() if isinstance(text, str) else text)
        targets = self.targets(session_id)
        for s in targets:
            s.push(data)
        return len(targets)

    def send_frame(self, frame: Frame, session_id: int | None = None) -> int:
        """Queue a `Frame` to every session (or one), whatever their subscriptions."""
        targets = self.targets(session_id)
        for s in targets:
            s.push(frame.wire(s.combined, s.micros))
        return len(targets)

    def targets(self, session_id: int | None) -> list[Session]:
        """Every open session, or the one with ``session_id`` (empty if it is gone)."""
        if session_id is None:
            return list(self.sessions.values())
        s = self.sessions.get(session_id)
        return [s] if s is not None else []

    # --- backpressure for MAX pacing ---------------------------------------------------------
    def drained(self, session: Session) -> None:
        """Called by a writer after sending: wakes a pump that waits for room."""
        room = self._room
        if room is not None and len(session.out) <= session.capacity // 4:
            room.set()

    async def wait_room(self, patience: float) -> None:
        """Wait until every buffer is at most a quarter full; past ``patience`` s drop laggards."""
        with trio.move_on_after(patience):
            while True:
                full = [s for s in self.sessions.values() if len(s.out) > s.capacity // 4]
                if not full:
                    return
                self._room = trio.Event()
                await self._room.wait()
                self._room = None
        for s in self.sessions.values():
            if len(s.out) > s.capacity // 4:
                s.request_close(1008, "Too slow: send buffer full")

    def stats(self) -> SimulatorStats:
        """A snapshot of the counters."""
        return SimulatorStats(
            connections_open=len(self.sessions), connections_total=self.connections_total,
            connection_attempts=self.connection_attempts,
            connections_rejected=self.connections_rejected, frames_sent=self.frames_sent,
            frames_dropped=self.frames_dropped, pings_sent=self.pings_sent,
            pongs_received=self.pongs_received, closes_by_code=dict(self.closes),
            subscriptions={i: tuple(s.streams) for i, s in self.sessions.items()},
        )  # fmt: skip
