"""Command line entry point: `gateway` (run / simulate / record / replay)."""

from __future__ import annotations

import sys

from gateway._version import __version__


def main(argv: list[str] | None = None) -> int:
    """Print the version; the full CLI lands with the CLI issue."""
    args = sys.argv[1:] if argv is None else argv
    if args and args[0] in {"--version", "-V"}:
        print(f"gateway {__version__}")
        return 0
    print(f"gateway {__version__}")
    return 0
