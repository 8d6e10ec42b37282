"""Where a run shows itself: the live terminal view, or plain lines for pipes and CI.

Both take the same inputs: event lines as they happen (candle closes, stop-losses,
errors, demo notes) and periodic `Snapshot` pictures. The live view refreshes from a
trio task; rendering stays in `view` (pure).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from typing import Any, TextIO

import trio
from rich.console import Console
from rich.live import Live

from gateway.app.snapshot import Snapshot
from gateway.app.summary import summary_lines, summary_table
from gateway.app.view import render, status_lines

__all__ = ["LiveOutput", "Output", "PlainOutput"]


class Output:
    """What a run prints; `run` shows snapshots from ``take`` until cancelled."""

    def line(self, text: str) -> None:
        """An event line (printed at once by the plain output; kept in 'recent' otherwise)."""

    async def run(
        self, take: Callable[[], Snapshot], *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:  # fmt: skip
        """Show snapshots until cancelled."""
        task_status.started()

    def message(self, text: str) -> None:
        """A line that is always printed (start-up facts, the end)."""

    def final(self, summary: dict[str, Any]) -> None:
        """The end-of-run summary."""


class PlainOutput(Output):
    """Line-oriented output: events as they happen, status every ``every`` seconds."""

    def __init__(self, stream: TextIO | None = None, every: float = 1.0) -> None:
        self.stream = stream if stream is not None else sys.stdout
        self.every = every

    def _print(self, text: str) -> None:
        print(text, file=self.stream, flush=True)

    def line(self, text: str) -> None:
        """Print the event line now."""
        self._print(text)

    def message(self, text: str) -> None:
        """Print ``text``."""
        self._print(text)

    async def run(
        self, take: Callable[[], Snapshot], *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:  # fmt: skip
        """Print the status lines every ``every`` seconds (never if it is 0 or infinite).

        Pictures are taken a few times a second in between, so that rates and changes
        cover the last moments rather than the whole period.
        """
        task_status.started()
        if not self.every or math.isinf(self.every):
            return
        step = min(self.every, 0.25)
        next_print = trio.current_time() + self.every
        take()
        while True:
            await trio.sleep(step)
            snap = take()
            if trio.current_time() >= next_print - 1e-3:
                next_print += self.every
                for text in status_lines(snap):
                    self._print(text)

    def final(self, summary: dict[str, Any]) -> None:
        """Print the ``summary ...`` lines."""
        for text in summary_lines(summary):
            self._print(text)


class LiveOutput(Output):
    """The rich live view, refreshed ``fps`` times a second by a trio task."""

    def __init__(self, console: Console | None = None, fps: float = 4.0) -> None:
        self.console = console if console is not None else Console()
        self.fps = fps

    def message(self, text: str) -> None:
        """Print ``text`` above the view."""
        self.console.print(text, markup=False, highlight=False)

    async def run(
        self, take: Callable[[], Snapshot], *,
        task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
    ) -> None:  # fmt: skip
        """Refresh the view until cancelled; the last picture stays on screen.

        While it is live, whatever else writes to stdout or stderr (a print, a log handler
        of a library) goes through the console, above the view, instead of tearing it.
        """
        console = self.console
        with Live(render(take(), console.width), console=console, auto_refresh=False,
                  redirect_stdout=True, redirect_stderr=True) as live:  # fmt: skip
            task_status.started()
            try:
                while True:
                    await trio.sleep(1 / self.fps)
                    live.update(render(take(), console.width), refresh=True)
            finally:
                live.update(render(take(), console.width), refresh=True)

    def final(self, summary: dict[str, Any]) -> None:
        """Print the summary table (and, for a run that never went live, its connections)."""
        self.console.print(summary_table(summary, self.console.width))
        for c in summary["connections"]:
            if not c["went_live"]:
                self.console.print(
                    f"{c['id']} {c['state']}, never live, {c['reconnects']} reconnects, "
                    f"last error {c['last_error'] or '-'}",
                    markup=False, highlight=False,
                )  # fmt: skip
        for stop in summary["stop_losses"]:
            self.console.print(
                f"stop-loss {stop['symbol']} {stop['position_id']} {stop['side']} "
                f"stop {stop['stop_price']:.2f} fired at {stop['trigger_price']:.2f}",
                markup=False, highlight=False,
            )  # fmt: skip
        if summary["error"]:
            self.console.print(f"error: {summary['error']}", markup=False, style="red")
