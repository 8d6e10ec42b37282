"""The close-hook protocol: a symbol asks for a fired position to be closed, and hears back.

A symbol's machine emits a `CloseRequest` when a stop fires (and again when a failed
close is due for its retry); the hook runner calls the user's close hook and answers
with a `CloseResult`. Plain values: `gateway.runtime.hooks` runs the hooks.
"""

from __future__ import annotations

import attrs

from gateway.core.positions import StopTrigger

__all__ = ["CloseRequest", "CloseResult"]


@attrs.frozen(slots=True)
class CloseRequest:
    """Symbol to hook runner: run the user's close hook for ``trigger``."""

    symbol: str
    trigger: StopTrigger


@attrs.frozen(slots=True)
class CloseResult:
    """Hook runner to symbol: the close hook succeeded, or failed with ``error``."""

    position_id: str
    error: str | None
