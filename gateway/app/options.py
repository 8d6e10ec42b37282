"""What a run connects to and subscribes: command-line flags over a TOML file over defaults.

Resolution order for each setting: the flag if given, else the config file's key if
present, else the application's default (the demo symbols and streams). The target
is the embedded exchange unless ``--url``, ``--exchange``/``--testnet`` or the config
file's ``url``/``testnet`` name a real endpoint. The REST endpoint follows the stream
endpoint (`gateway.endpoints.rest_url_for`) unless ``--rest-url`` or the file's
``rest_url`` names one.
"""

from __future__ import annotations

import argparse
import shlex
import tomllib
from collections.abc import Iterable
from typing import Any

import attrs

from gateway.app.demo import DEMO_RATE, DEMO_SEED, DEMO_STREAMS, DEMO_SYMBOLS
from gateway.config import (
    BINANCE_DATA_URL,
    BINANCE_URL,
    TESTNET_REST_URL,
    TESTNET_URL,
    GatewayConfig,
    evolve_config,
    load_config,
    rest_url_for,
)
from gateway.core.redact import redact_url
from gateway.errors import ConfigError

__all__ = ["EXCHANGES", "RunPlan", "add_target_arguments", "resolve_plan", "run_command_line"]

#: ``--exchange`` names: where each one connects.
EXCHANGES: dict[str, str | None] = {
    "embedded": None,
    "binance": BINANCE_URL,
    "binance-data": BINANCE_DATA_URL,
    "testnet": TESTNET_URL,
}


@attrs.frozen
class RunPlan:
    """A resolved run: the gateway's configuration and whether to embed the exchange."""

    config: GatewayConfig
    embedded: bool  #: start the embedded exchange and point ``config.url`` at it
    duration: float | None  #: seconds, or None to run until interrupted
    seed: int
    rate: float
    demo_position: bool  #: open the demonstration position (embedded exchange only)


def _csv(value: str) -> tuple[str, ...]:
    return tuple(v for v in (p.strip() for p in value.replace(" ", ",").split(",")) if v)


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """Options shared by ``run`` and ``record``: target, config, symbols, streams, duration,
    connection attempts."""
    add = parser.add_argument
    add("--config", metavar="FILE", default=None,
        help="TOML configuration ([gateway] table; see examples/gateway.toml)")  # fmt: skip
    where = parser.add_mutually_exclusive_group()
    where.add_argument("--url", default=None,
                       help="stream endpoint, e.g. wss://stream.binance.com:9443 "
                       "(default: the embedded exchange)")  # fmt: skip
    where.add_argument("--exchange", choices=list(EXCHANGES), default=None,
                       help="a known endpoint instead of --url (default: embedded)")  # fmt: skip
    where.add_argument("--testnet", action="store_true", help="same as --exchange testnet")
    add("--rest-url", default=None, metavar="URL",
        help="REST endpoint (symbol check, depth snapshots, backfill), e.g. "
        "http://127.0.0.1:8081; '' for none (default: the config file's rest_url, else "
        "derived from the stream endpoint: a Binance stream host's REST host, any other "
        "host the same host and port)")  # fmt: skip
    add("--ca-file", default=None, metavar="PEM",
        help="also trust this CA (PEM) for wss:// and https://, e.g. the ca_file= that "
        "`gateway simulate --tls` prints (default: the config file's ca_file, else only "
        "the system's CAs)")  # fmt: skip
    add("--symbols", type=_csv, default=None,
        help=f"comma-separated symbols (default: {','.join(DEMO_SYMBOLS)})")  # fmt: skip
    add(
        "--streams",
        type=_csv,
        default=None,
        help=f"comma-separated stream suffixes per symbol (default: {','.join(DEMO_STREAMS)})",
    )
    add("--duration", type=float, default=None,
        help="stop after this many seconds from the start, connecting included "
        "(default: run until Ctrl-C)")  # fmt: skip
    add("--max-attempts", type=int, default=None, metavar="N",
        help="give up after N failed connection attempts in a row (default: the config "
        "file's reconnect.max_attempts, else 10)")  # fmt: skip
    add("--seed", type=int, default=DEMO_SEED, help="embedded exchange: market seed")
    add("--rate", type=float, default=DEMO_RATE,
        help="embedded exchange: trades per second, all symbols")  # fmt: skip
    add("--no-demo-position", dest="demo_position", action="store_false",
        help="embedded exchange: do not open the demonstration position")  # fmt: skip


def run_command_line(
    ws_url: str, rest_url: str | None, symbols: Iterable[str], streams: Iterable[str],
    ca_file: str | None = None,
) -> str:  # fmt: skip
    """A ``gateway run`` command line for the exchange at ``ws_url`` whose REST side is
    ``rest_url`` (None: it has none): ``--rest-url`` only where the derived one differs;
    ``--ca-file`` for an exchange under a private CA."""
    words = ["gateway", "run", "--url", ws_url]
    if rest_url_for(ws_url) != (rest_url or ""):
        words += ["--rest-url", rest_url or ""]
    if ca_file:
        words += ["--ca-file", ca_file]
    words += ["--symbols", ",".join(symbols), "--streams", ",".join(streams)]
    return shlex.join(words)


def _file_keys(path: str) -> set[str]:
    """The keys the config file sets explicitly (``load_config`` already validated it)."""
    with open(path, "rb") as fh:
        data = tomllib.load(fh)
    table: Any = data.get("gateway", data)
    return set(table) if isinstance(table, dict) else set()


def resolve_plan(args: argparse.Namespace) -> RunPlan:
    """Build the run's plan from parsed flags; raises `ConfigError` naming what is wrong."""
    if args.duration is not None and args.duration <= 0:
        raise ConfigError(f"--duration must be > 0 seconds, got {args.duration}")
    if args.rate <= 0:
        raise ConfigError(f"--rate must be > 0 trades per second, got {args.rate}")
    if args.max_attempts is not None and args.max_attempts < 1:
        raise ConfigError(f"--max-attempts must be >= 1, got {args.max_attempts}")
    if args.streams == ():
        raise ConfigError(
            "--streams must name at least one stream suffix, e.g. --streams trade,kline_1m; "
            "got an empty list"
        )
    config, keys = GatewayConfig(), set()
    if args.config is not None:
        config = load_config(args.config)
        keys = _file_keys(args.config)
    changes: dict[str, Any] = {}
    exchange = "testnet" if args.testnet else args.exchange
    if args.url is not None:
        changes["url"] = args.url
        embedded = False
    elif exchange is not None:
        embedded = exchange == "embedded"
        if exchange == "testnet":
            config = config.with_testnet()
        elif not embedded:
            changes["url"] = EXCHANGES[exchange]
    else:
        embedded = not ({"url", "testnet"} & keys)
        if config.testnet and config.url == BINANCE_URL:
            changes.update(url=TESTNET_URL, rest_url=TESTNET_REST_URL)
    if args.rest_url is not None:
        if embedded:
            raise ConfigError(
                f"--rest-url {redact_url(args.rest_url)!r} needs a real endpoint (--url, "
                "--exchange or the config file's url): the embedded exchange serves its own REST"
            )
        changes["rest_url"] = args.rest_url
    if args.ca_file is not None:
        changes["ca_file"] = args.ca_file
    if args.max_attempts is not None:
        changes["reconnect"] = attrs.evolve(config.reconnect, max_attempts=args.max_attempts)
    if args.symbols is not None:
        changes["symbols"] = args.symbols
    elif "symbols" not in keys and not config.extra_streams:
        changes["symbols"] = DEMO_SYMBOLS
    if args.streams is not None:
        changes["streams"] = args.streams
    elif "streams" not in keys:
        changes["streams"] = DEMO_STREAMS
    config = evolve_config(config, **changes)  # the same conversion as TOML and open_gateway
    if not config.all_symbols():
        raise ConfigError("symbols: at least one symbol is required, e.g. --symbols BTCUSDT")
    return RunPlan(
        config, embedded, args.duration, args.seed, args.rate,
        demo_position=embedded and args.demo_position,
    )  # fmt: skip
