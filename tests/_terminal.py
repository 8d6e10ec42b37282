"""A tiny terminal for tests: replays what rich writes (text, CR, LF, cursor up, erase
line) into the lines a real terminal would show, so a torn live view can be seen."""

from __future__ import annotations

import re

__all__ = ["screen"]

_TOKEN = re.compile(
    r"\x1b\[\??([\d;]*)([A-Za-z])"  # CSI: cursor moves, erases, styles
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC: hyperlinks
    r"|\r|\n|[^\x1b\r\n]+|\x1b"
)


def screen(data: str) -> list[str]:
    """The screen's lines after ``data`` (no scrolling limit, no auto-wrap)."""
    lines = [""]
    row = col = 0
    for m in _TOKEN.finditer(data):
        text = m.group(0)
        if m.group(2):
            n = int(m.group(1).split(";")[0] or 1)
            if m.group(2) == "A":
                row = max(0, row - n)
            elif m.group(2) == "K":
                lines[row] = ""
            elif m.group(2) == "G":
                col = n - 1
        elif text == "\r":
            col = 0
        elif text == "\n":
            row, col = row + 1, 0
            if row == len(lines):
                lines.append("")
        elif not text.startswith("\x1b"):
            line = lines[row].ljust(col)
            lines[row] = line[:col] + text + line[col + len(text) :]
            col += len(text)
    return [line.rstrip() for line in lines]
