"""The conformance harness: a real client (`_conformance_runner`, its own process) against
the embedded exchange, and what the exchange says it should have received.

The exchange is paced by hand from the test: `MarketDriver` makes random trades and the
time-driven pushes (depth every 100 ms, klines, tickers) at a steady beat, injects
trades whose ids and prices the test knows, and stops when told so that the client's
book can settle on the exchange's. Everything the client reports is a JSON line read by
`ClientProcess`; `ClientProcess.wait_for` waits for a condition on them, bounded in time.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import os
import subprocess
import sys
import warnings
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import trio

from gateway.simulator import Simulator, open_simulator

ROOT = Path(__file__).resolve().parent.parent
SKIP_REASON = "pip install '.[clients]' to run it"


def require_client(module: str, distribution: str) -> None:
    """Skip the calling test module when ``distribution`` is not installed (saying so);
    once it is installed, ``module`` must import: a broken client fails, never skips."""
    try:
        version = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{distribution} is not installed (scripts/test.sh could not install "
                    f"it): {SKIP_REASON}", allow_module_level=True)  # fmt: skip
    try:
        with warnings.catch_warnings():  # a client's own deprecations are not the test's
            warnings.simplefilter("ignore")
            importlib.import_module(module)
    except ImportError as exc:
        raise AssertionError(f"{distribution} {version} is installed but {module} does "
                             f"not import: {exc!r}") from exc  # fmt: skip
SYMBOL = "BTCUSDT"
Line = dict[str, Any]


def num(e8: int) -> str:
    """An exchange integer (1e-8 units) as the runner's normalised decimal string."""
    d = Decimal(e8) / 100_000_000
    return format(d.normalize(), "f") if d else "0"


def book_of(sim: Simulator, symbol: str = SYMBOL) -> tuple[int, list[list[str]], list[list[str]]]:
    """The exchange's whole book now: (lastUpdateId, bids, asks) as normalised strings."""
    last, bids, asks = sim.market.symbol(symbol).depth(5000)
    return last, [[num(p), num(q)] for p, q in bids], [[num(p), num(q)] for p, q in asks]


def trades_of(sim: Simulator, symbol: str = SYMBOL) -> list[tuple[int, str, str]]:
    """Every trade in the exchange's history: (id, price, qty)."""
    return [(i, num(p), num(q)) for i, p, q, _t, _m in sim.market.symbol(symbol).trades]


def aggs_of(sim: Simulator, symbol: str = SYMBOL) -> list[tuple[int, str, str, int, int]]:
    """Every aggregate trade in the history: (agg id, price, qty, first id, last id)."""
    return [(a, num(p), num(q), f, last)
            for a, p, q, f, last, _t, _m in sim.market.symbol(symbol).aggs]  # fmt: skip


def kline_of(sim: Simulator, interval: str = "1m", symbol: str = SYMBOL) -> dict[str, Any]:
    """The exchange's open candle of ``interval`` as the runner reports klines."""
    row = sim.market.symbol(symbol).candles.current((interval, ""))
    from gateway.simulator.encode import kline_body

    k = kline_body(symbol, interval, tuple(row), False, 1000)
    return {"t": k["t"], "o": _n(k["o"]), "h": _n(k["h"]), "l": _n(k["l"]), "c": _n(k["c"]),
            "v": _n(k["v"]), "n": k["n"]}  # fmt: skip


def _n(s: str) -> str:
    d = Decimal(s)
    return format(d.normalize(), "f") if d else "0"


class ClientProcess:
    """A running client: the lines it printed so far, and its stderr for failures."""

    def __init__(self, name: str, process: trio.Process) -> None:
        self.name = name
        self.process = process
        self.lines: list[Line] = []
        self.stderr = b""
        self._changed = trio.Event()

    def of(self, kind: str) -> list[Line]:
        return [line for line in self.lines if line["kind"] == kind]

    def rest(self, call: str) -> Line:
        found = [line for line in self.of("rest") if line["call"] == call]
        assert found, f"{self.name} made no {call} call: {self.describe()}"
        return found[-1]

    def describe(self) -> str:
        tail = "\n".join(json.dumps(line)[:400] for line in self.lines[-15:])
        return f"last lines:\n{tail}\nstderr:\n{self.stderr.decode(errors='replace')[-3000:]}"

    async def wait_for(self, what: str, predicate: Callable[[], bool], seconds: float) -> None:
        """Until ``predicate()`` holds (checked on each new line); fails after ``seconds``."""
        with trio.move_on_after(seconds):
            while not predicate():
                if self.of("exit"):
                    break
                self._changed = trio.Event()
                await self._changed.wait()
            if predicate():
                return
        raise AssertionError(f"{self.name}: no {what} within {seconds} s; {self.describe()}")

    async def _read(self, stream: trio.abc.ReceiveStream, err: bool) -> None:
        buf = b""
        async for chunk in stream:
            if err:
                self.stderr = (self.stderr + chunk)[-100_000:]
                continue
            buf += chunk
            *complete, buf = buf.split(b"\n")
            for raw in complete:
                if raw.strip():
                    self.lines.append(json.loads(raw))
            self._changed.set()
        self.lines.append({"kind": "exit"})
        self._changed.set()

    def check_clean(self) -> None:
        """No refused non-loopback connection, no client or runner error."""
        refused = self.of("refused")
        assert not refused, f"{self.name} tried to reach beyond loopback: {refused}"
        errors = self.of("error")
        assert not errors, f"{self.name} reported errors: {errors}; {self.describe()}"


@asynccontextmanager
async def open_client(
    name: str, sim: Simulator, lifetime: float = 90, *, rest_on_ws_port: bool = False
) -> AsyncIterator[ClientProcess]:
    """Start client ``name`` against ``sim`` (it ends itself after ``lifetime`` seconds;
    ``rest_on_ws_port``: its REST base is the WebSocket port, ``http(s)://`` of ``ws(s)://``);
    on exit close its stdin and end it."""
    ws = sim.ws_url
    rest = "http" + ws.removeprefix("ws") if rest_on_ws_port else sim.rest_url
    ca_file = getattr(sim, "ca_file", None)
    cfg = {"ws": ws, "rest": rest, "symbol": SYMBOL, "timeout": lifetime,
           "ca_file": str(ca_file) if ca_file else None}  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONWARNINGS": "ignore"}
    process = await trio.lowlevel.open_process(
        [sys.executable, "-m", "tests._conformance_runner", name, json.dumps(cfg)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
        cwd=ROOT,
    )  # fmt: skip
    client = ClientProcess(name, process)
    try:
        async with trio.open_nursery() as nursery:
            assert process.stdout is not None and process.stderr is not None
            nursery.start_soon(client._read, process.stdout, False)
            nursery.start_soon(client._read, process.stderr, True)
            try:
                yield client
            finally:
                with trio.move_on_after(10) as cleanup:
                    cleanup.shield = True
                    if process.stdin is not None:
                        await process.stdin.aclose()
                    with trio.move_on_after(8):
                        await process.wait()
                    if process.returncode is None:
                        process.kill()
                        await process.wait()
    finally:
        if process.returncode is None:
            process.kill()


class MarketDriver:
    """Moves a manually paced exchange at a steady beat, as a real market would."""

    def __init__(self, sim: Simulator, beat: float = 0.05) -> None:
        self.sim = sim
        self.beat = beat
        self.trading = True
        self.injected: list[tuple[int, str, str]] = []  #: (trade id, price, qty)

    def inject(self, price_e8: int, qty: str = "0.5") -> int:
        sym = self.sim.market.symbol(SYMBOL)
        tick = self.sim.market.tick_e8
        price = (price_e8 // tick) * tick
        tid = self.sim.control.inject_trade(SYMBOL, price / 100_000_000, float(qty))
        self.injected.append((tid, num(price), _n(qty)))
        assert sym.trades[-1][0] == tid
        return tid

    def last_price_e8(self) -> int:
        return int(self.sim.market.symbol(SYMBOL).candles.last_price)

    async def run(self, *, inject_every: int = 4, injections: int = 6) -> None:
        """Trade and tick every beat; inject a known trade every ``inject_every`` beats,
        ``injections`` times; then only tick (time goes on, the book settles)."""
        beats = 0
        while True:
            if self.trading:
                self.sim.control.generate(3)
                if beats % inject_every == 0 and len(self.injected) < injections:
                    self.inject(self.last_price_e8() + self.sim.market.tick_e8 * 3)
            self.sim.control.tick()
            beats += 1
            await trio.sleep(self.beat)


def exchange(**options: Any) -> Any:
    """The exchange the conformance tests run: manual pacing driven by `MarketDriver`,
    the wall clock (the clients see real times), BTCUSDT and ETHUSDT."""
    opts: dict[str, Any] = {"symbols": ("BTCUSDT", "ETHUSDT"), "seed": 13, "pacing": "manual",
                            "clock": "wall"}  # fmt: skip
    opts.update(options)
    return open_simulator(**opts)


def warm_up(sim: Simulator) -> None:
    """Some history before the client connects (REST answers have something to show)."""
    for _ in range(20):
        sim.control.generate(5)
        sim.control.tick()


def subscribed(sim: Simulator) -> set[str]:
    """Every stream some open connection is subscribed to."""
    return {s for streams in sim.control.stats().subscriptions.values() for s in streams}


async def wait_subscribed(sim: Simulator, client: ClientProcess, streams: set[str],
                          seconds: float = 30) -> None:  # fmt: skip
    """Until the exchange has ``streams`` subscribed (the client's connections are up)."""
    with trio.move_on_after(seconds):
        await sim.control.wait_for(lambda _s: streams <= subscribed(sim))
        return
    raise AssertionError(f"{client.name}: {streams - subscribed(sim)} never subscribed; "
                         f"{client.describe()}")  # fmt: skip


async def streams_conform(
    sim: Simulator, client: ClientProcess, streams: set[str], *, agg_trades: bool = False,
    kline_trades: bool = True, seconds: float = 30,
) -> None:  # fmt: skip
    """The stream half of a conformance test: once ``streams`` are subscribed, the
    exchange trades (with known injected trades); the client must report every injected
    trade (by id, price and quantity; aggregate ids with ``agg_trades``), the open 1m
    kline as the exchange has it after the last trade, and then, the market quiet, a
    book equal to the exchange's whole book."""
    await wait_subscribed(sim, client, streams, seconds)
    driver = MarketDriver(sim)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(driver.run)

        def expected_trades() -> set[tuple[int, str, str]]:
            if not agg_trades:
                return set(driver.injected)
            ids = {tid for tid, _p, _q in driver.injected}
            return {(a, p, q) for a, p, q, f, last in aggs_of(sim)
                    if any(f <= i <= last for i in ids)}  # fmt: skip

        def seen_trades() -> set[tuple[int, str, str]]:
            return {(t["id"], t["price"], t["qty"]) for t in client.of("trade")}

        await client.wait_for("injected trades",
                              lambda: len(driver.injected) == 6
                              and expected_trades() <= seen_trades(), seconds)  # fmt: skip
        driver.trading = False
        driver.inject(driver.last_price_e8() - sim.market.tick_e8 * 2, "0.25")
        want = kline_of(sim)
        if not kline_trades:
            want.pop("n")

        def kline_matches() -> bool:
            got = [k for k in client.of("kline") if k["t"] == want["t"]]
            return bool(got) and {k: got[-1].get(k) for k in want} == want

        await client.wait_for(f"kline {want}", kline_matches, seconds)
        await client.wait_for(
            "the last injected trade", lambda: expected_trades() <= seen_trades(), seconds
        )

        def book_matches() -> bool:
            books = client.of("book")
            _last, bids, asks = book_of(sim)
            return bool(books) and books[-1]["bids"] == bids and books[-1]["asks"] == asks

        await client.wait_for("a book equal to the exchange's", book_matches, seconds)
        nursery.cancel_scope.cancel()
    client.check_clean()


def rest_failures(client: ClientProcess, calls: tuple[str, ...]) -> list[str]:
    """Each of ``calls`` that the client did not make, or that failed, with its error."""
    out = []
    for call in calls:
        found = [line for line in client.of("rest") if line["call"] == call]
        if not found:
            out.append(f"{call}: not made")
        elif not found[-1]["ok"]:
            out.append(f"{call}: {found[-1]['error'][:600]}")
    return out


def norm(value: Any) -> str:
    """Any decimal-ish value as the runner's normalised string."""
    return _n(str(value))


def norm_levels(rows: Any) -> list[list[str]]:
    return [[norm(p), norm(q)] for p, q, *_ in rows]


def last_price(sim: Simulator, symbol: str = SYMBOL) -> str:
    return num(int(sim.market.symbol(symbol).candles.last_price))


#: The streams every client's conformance test subscribes: trades, klines, a synced book.
CORE_STREAMS = {f"{SYMBOL.lower()}@trade", f"{SYMBOL.lower()}@kline_1m",
                f"{SYMBOL.lower()}@depth@100ms"}  # fmt: skip


def assert_book_matches(sim: Simulator, last_update_id: Any, book: dict[str, Any]) -> None:
    """A client's REST order book equals the exchange's (update id and every level)."""
    last, bids, asks = book_of(sim)
    assert last_update_id == last
    assert (norm_levels(book["bids"]), norm_levels(book["asks"])) == (bids, asks)


def assert_last_kline_matches(sim: Simulator, row: Any, *, trades: bool = True) -> None:
    """A client's last REST kline row equals the exchange's open 1m candle."""
    want = kline_of(sim)
    got = (row[0], norm(row[4]), norm(row[5]), *((row[8],) if trades else ()))
    assert got == (want["t"], want["c"], want["v"], *((want["n"],) if trades else ()))
