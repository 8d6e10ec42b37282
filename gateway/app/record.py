"""``gateway record``: a run that also writes every received market frame to a file."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable

from gateway.app.recording import FrameRecorder
from gateway.app.run import add_run_arguments, run_plan_command
from gateway.app.session import FrameTap
from gateway.config import GatewayConfig
from gateway.core.redact import redact_url
from gateway.core.streams import combined_url
from gateway.errors import ConfigError

__all__ = ["add_record_arguments", "main_record"]


def _size(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30}
    text = text.strip().lower().removesuffix("b")
    factor = units.get(text[-1:], 1)
    try:
        value = int(float(text[:-1] if text[-1:] in units else text) * factor)
    except ValueError:
        msg = f"{text!r} is not a size like 1000000, 500k, 10M"
        raise argparse.ArgumentTypeError(msg) from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"size must be > 0, got {text!r}")
    return value


def add_record_arguments(parser: argparse.ArgumentParser) -> None:
    """The ``record`` options: where to write, plus every ``run`` option."""
    parser.add_argument("--out", required=True, metavar="FILE",
                        help="recording file (gzip-compressed if it ends in .gz)")  # fmt: skip
    parser.add_argument("--max-bytes", type=_size, default=None, metavar="SIZE",
                        help="rotate to FILE.1, FILE.2, ... past this size (e.g. 10M)")  # fmt: skip
    add_run_arguments(parser)


def _recorder_factory(
    args: argparse.Namespace, made: list[FrameRecorder]
) -> Callable[[GatewayConfig], FrameTap]:
    def factory(config: GatewayConfig) -> FrameTap:
        url = combined_url(config.url, config.stream_names())
        recorder = FrameRecorder(args.out, redact_url(url), time.time(), args.max_bytes)
        made.append(recorder)
        return recorder

    return factory


def main_record(args: argparse.Namespace) -> int:
    """``gateway record``: returns the ``run`` exit status (see `main_run`), or 1 for a
    write error."""
    made: list[FrameRecorder] = []
    try:
        result = run_plan_command(args, tap_factory=_recorder_factory(args, made))
    except ConfigError as exc:
        print(f"gateway record: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:
        print(f"gateway record: cannot write {args.out}: {exc.strerror}", file=sys.stderr)
        return 1
    finally:
        for recorder in made:
            recorder.close()
    if not made:
        return result.exit_code
    rec = made[0]
    files = ", ".join(str(f) for f in rec.files)
    print(f"recorded {rec.frames} frames to {files}", flush=True)
    if rec.error is not None:
        print(f"gateway record: writing stopped: {rec.error}; {rec.lost} frames lost",
              file=sys.stderr)  # fmt: skip
        return 1
    return result.exit_code
