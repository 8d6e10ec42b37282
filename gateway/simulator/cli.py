"""``gateway simulate``: serve the embedded exchange until Ctrl-C.

Faults can be scheduled (``--fault 30:close 1001``) or typed on stdin while it runs
(``--commands``); both use the command words of `run_command`.
"""

from __future__ import annotations

import argparse
import logging
import shlex
import sys
from functools import partial
from pathlib import Path

import trio

from gateway.errors import ConfigError
from gateway.simulator.config import SimulatorConfig
from gateway.simulator.control import SimulatorControl
from gateway.simulator.server import Simulator, open_simulator

__all__ = ["COMMANDS", "add_simulate_arguments", "run_command", "run_simulate"]

logger = logging.getLogger(__name__)

COMMANDS = """\
close [CODE [REASON]]   close every connection with CODE (default 1000)
abort                   drop every TCP connection without a close frame
malformed               send a frame that is not valid JSON
unknown                 send a well-formed event of an unknown kind
stall SECONDS           stop sending market frames (sockets stay open)
resume                  end a stall or delay
delay SECONDS           hold all outgoing frames, then send them at once
dup COUNT               send the next COUNT frames twice
gap SYMBOL COUNT        drop the next COUNT trades of SYMBOL
refuse SECONDS          reject new connections (HTTP 503)
trade SYMBOL PRICE QTY  one trade at an exact price
raw TEXT                send TEXT as a frame to every connection
generate [COUNT]        make COUNT random trades now (manual pacing)
subclose [CODE [REASON]] close the connection of the next SUBSCRIBE (default 1008)
subreset                drop the TCP connection of the next SUBSCRIBE
subignore               never reply to the next SUBSCRIBE
refusestream NAME...    refuse every SUBSCRIBE naming one of these streams
pingclose COUNT         ping COUNT times before each close reply (0: off)
deafen                  open connections read nothing from now on
zombie [CONNECTION]     open connections (or one) get no market frames; pings go on
forget NAME [CONNECTION] silently drop stream NAME from connections (unlisted, unsent)
stats                   print the counters"""


def add_simulate_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``simulate`` options to ``parser``."""
    d = SimulatorConfig()
    add = parser.add_argument
    add("--host", default=d.host, help="interface to bind (default %(default)s)")
    add("--port", type=int, default=d.port, help="WebSocket port (0: pick a free one)")
    add("--rest-port", type=int, default=d.rest_port, help="REST port (0: pick a free one)")
    add("--no-rest", action="store_true", help="do not serve the REST side")
    add("--tls", action="store_true",
        help="serve wss:// and https:// under a throwaway CA (its file is printed)")  # fmt: skip
    add("--symbols", default=None,
        help=f"comma-separated listed symbols (default {','.join(d.symbols)}; with --replay, "
             "the recording's own)")  # fmt: skip
    add("--seed", type=int, default=d.seed, help="market seed (default %(default)s)")
    add("--rate", type=float, default=d.rate, help="trades per second, all symbols")
    add("--pacing", choices=["rate", "max", "manual", "replay"], default=None,
        help="rate (default), max (as fast as clients take), manual, replay")  # fmt: skip
    add("--replay", metavar="FILE",
        help="serve the frames of a stream.txt recording (and the REST snapshots of a "
             "rest.txt beside it)")  # fmt: skip
    add("--speed", type=float, default=1.0, help="replay speed factor (0: as fast as possible)")
    add("--loop", action="store_true", help="replay the recording again and again")
    add("--time-unit", choices=["MILLISECOND", "MICROSECOND"], default=d.time_unit.value,
        help="the REST side's time unit unless a request asks (streams choose with "
             "?timeUnit=) (default %(default)s)")  # fmt: skip
    add("--clock", choices=["wall", "virtual"], default=d.clock.value, help="event time source")
    add("--start-price", type=float, default=d.start_price, help="first price of every symbol")
    add("--tick-size", type=float, default=d.tick_size, help="price step")
    add("--volatility", type=float, default=d.volatility, help="price std-dev per trade")
    add("--ping-interval", type=float, default=d.ping_interval,
        help="seconds between the server's pings")  # fmt: skip
    add("--pong-timeout", type=float, default=d.pong_timeout,
        help="seconds without a pong before the server disconnects")  # fmt: skip
    add("--lifetime", type=float, default=d.connection_lifetime, help="connection lifetime, s")
    add("--shutdown-notice", type=float, metavar="LEAD", default=None,
        help="send serverShutdown LEAD seconds before the lifetime close")  # fmt: skip
    add("--fault", action="append", default=[], metavar="AT:COMMAND",
        help="run COMMAND (see --commands) AT seconds after start; repeatable")  # fmt: skip
    add("--commands", action="store_true", help="read commands from stdin:\n" + COMMANDS)
    add("--log-level", default="INFO", help="logging level (default %(default)s)")


def _config(args: argparse.Namespace) -> SimulatorConfig:
    pacing = args.pacing or ("replay" if args.replay else "rate")
    symbols, rest_file = args.symbols, None
    if args.replay is not None:
        from gateway.simulator.replay import load_recording, recorded_symbols

        if symbols is None:  # the recording's symbols are what a client will ask for
            symbols = ",".join(recorded_symbols(load_recording(args.replay))) or None
        beside = Path(args.replay).with_name("rest.txt")
        rest_file = str(beside) if beside.is_file() else None
    return SimulatorConfig(
        host=args.host, port=args.port, rest_port=args.rest_port, rest=not args.no_rest,
        tls=args.tls,
        symbols=symbols or SimulatorConfig().symbols, seed=args.seed, rate=args.rate,
        pacing=pacing, replay_file=args.replay, replay_speed=args.speed,
        replay_loop=args.loop, replay_rest_file=rest_file,
        time_unit=args.time_unit, clock=args.clock, start_price=args.start_price,
        tick_size=args.tick_size, volatility=args.volatility, ping_interval=args.ping_interval,
        pong_timeout=args.pong_timeout, connection_lifetime=args.lifetime,
        shutdown_notice=args.shutdown_notice is not None,
        shutdown_lead=args.shutdown_notice or 0.0,
    )  # fmt: skip


def run_command(control: SimulatorControl, line: str) -> str:
    """Run one command line (see `COMMANDS`); returns a one-line answer."""
    words = shlex.split(line)
    if not words:
        return ""
    cmd, rest = words[0], words[1:]
    try:
        if cmd == "close":
            code = int(rest[0]) if rest else 1000
            return f"closed {control.close_connections(code, ' '.join(rest[1:]))}"
        if cmd == "abort":
            return f"aborted {control.close_connections(abrupt=True)}"
        if cmd == "malformed":
            return f"sent to {control.send_malformed()}"
        if cmd == "unknown":
            return f"sent to {control.send_unknown_event()}"
        if cmd == "stall":
            control.stall(float(rest[0]))
        elif cmd == "resume":
            control.resume()
        elif cmd == "delay":
            control.delay_frames(float(rest[0]))
        elif cmd == "dup":
            control.duplicate_frames(int(rest[0]))
        elif cmd == "gap":
            ids = control.drop_trades(rest[0], int(rest[1]))
            return f"dropping trade ids {ids.start}..{ids.stop - 1}"
        elif cmd == "refuse":
            control.refuse_connections(float(rest[0]))
        elif cmd == "trade":
            return f"trade id {control.inject_trade(rest[0], float(rest[1]), float(rest[2]))}"
        elif cmd == "raw":
            return f"sent to {control.send_raw(line.split(None, 1)[1])}"
        elif cmd == "generate":
            return f"generated {control.generate(int(rest[0]) if rest else 1)}"
        elif cmd == "subclose":
            code = int(rest[0]) if rest else 1008
            control.close_on_subscribe(code, " ".join(rest[1:]) or "Too many requests")
        elif cmd == "subreset":
            control.reset_on_subscribe()
        elif cmd == "subignore":
            control.ignore_subscribe()
        elif cmd == "refusestream":
            if not rest:
                raise ValueError("name at least one stream")
            control.refuse_streams(rest)
        elif cmd == "pingclose":
            control.ping_before_close_reply(int(rest[0]))
        elif cmd == "deafen":
            return f"deafened {control.deafen()}"
        elif cmd == "zombie":
            return f"zombies {control.zombie(connection=int(rest[0]) if rest else None)}"
        elif cmd == "forget":
            conn = int(rest[1]) if len(rest) > 1 else None
            return f"forgotten on {control.forget_stream(rest[0], connection=conn)}"
        elif cmd == "stats":
            return str(control.stats())
        else:
            return f"unknown command {cmd!r}; commands:\n{COMMANDS}"
    except (IndexError, ValueError, ConfigError) as exc:
        return f"bad arguments for {cmd!r}: {exc}"
    return "ok"


async def _scheduled(control: SimulatorControl, at: float, command: str) -> None:
    await trio.sleep(at)
    print(f"fault at {at}s: {command}: {run_command(control, command)}", flush=True)


async def _stdin_commands(control: SimulatorControl) -> None:
    while True:
        line = await trio.to_thread.run_sync(sys.stdin.readline, abandon_on_cancel=True)
        if not line:
            return
        answer = run_command(control, line.strip())
        if answer:
            print(answer, flush=True)


async def _serve(config: SimulatorConfig, args: argparse.Namespace) -> None:
    faults = []
    for spec in args.fault:
        at, sep, command = spec.partition(":")
        if not sep:
            raise ConfigError(f"--fault {spec!r} must look like AT:COMMAND, e.g. '30:close 1001'")
        try:
            faults.append((float(at), command))
        except ValueError:
            raise ConfigError(f"--fault {spec!r}: {at!r} is not a number of seconds") from None
    async with open_simulator(config) as sim, trio.open_nursery() as nursery:
        _announce(sim)
        for at, command in faults:
            nursery.start_soon(_scheduled, sim.control, at, command)
        if args.commands:
            nursery.start_soon(_stdin_commands, sim.control)
        await trio.sleep_forever()


#: The streams the suggested ``gateway run`` subscribes (depth: a synced order book).
SUGGESTED_STREAMS = ("trade", "kline_1m", "depth@100ms")


def _announce(sim: Simulator) -> None:
    from gateway.app.options import run_command_line  # the app, only for this line
    from gateway.config import rest_url_for
    from gateway.simulator.replay import recorded_suffixes, recorded_symbols

    ca = f" ca_file={sim.ca_file}" if sim.ca_file else ""
    print(f"ws_url={sim.ws_url} rest_url={sim.rest_url or '-'}{ca}", flush=True)
    rec = sim.recording
    symbols = recorded_symbols(rec) if rec is not None else sim.config.symbols
    suffixes = tuple(recorded_suffixes(rec)) if rec is not None else SUGGESTED_STREAMS
    if symbols and suffixes:  # a recording of market-wide streams only names no symbol
        first = [f"{symbols[0].lower()}@{s}" for s in suffixes[:2]]
        print(f"  combined: {sim.ws_url}/stream?streams={'/'.join(first)}", flush=True)
    # The WebSocket port answers REST too: the gateway's derived endpoint is served.
    rest = rest_url_for(sim.ws_url) if sim.rest_url else None
    command = run_command_line(sim.ws_url, rest, symbols or sim.config.symbols,
                               suffixes or SUGGESTED_STREAMS, sim.ca_file)  # fmt: skip
    print(f"try: {command}", flush=True)


def run_simulate(args: argparse.Namespace) -> int:
    """Serve until interrupted; returns the exit status (2 for a bad option)."""
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(name)s %(message)s")
    try:
        config = _config(args)
        if config.replay_file is not None:
            open(config.replay_file, "rb").close()  # a missing file: one line, not a traceback
        trio.run(partial(_serve, config, args))
    except ConfigError as exc:
        print(f"gateway simulate: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        if exc.filename is None:
            raise
        print(f"gateway simulate: cannot read {exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 0
    except BaseExceptionGroup as group:
        _, rest = group.split(KeyboardInterrupt)  # Ctrl-C arrives wrapped by the nurseries
        if rest is not None:
            raise
    return 0
