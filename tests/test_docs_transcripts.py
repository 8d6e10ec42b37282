"""The command transcripts in README.md and docs/cli.md are what the commands print:
each transcript is run as written and every line it shows (numbers aside) must appear
in the real output, so the docs cannot drift from the code."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
_NUMBER = re.compile(r"[+-]?\d+(?:\.\d+)?")


def transcripts(doc: str) -> list[tuple[str, list[str]]]:
    """Every fenced block of ``doc`` that starts with ``$ gateway run``: the command and
    the lines it shows (``...`` lines skipped)."""
    found = []
    for block in re.findall(r"```\n(\$ gateway run .*?)```", (ROOT / doc).read_text(), re.S):
        command, *lines = block.strip().splitlines()
        found.append((command[2:], [ln for ln in lines if ln.strip() and ln != "..."]))
    return found


def shape(line: str) -> re.Pattern[str]:
    """``line`` as a pattern in which every number may be any number."""
    parts = _NUMBER.split(line)
    return re.compile(r"[+-]?\d+(?:\.\d+)?".join(re.escape(p) for p in parts) + r"$")


CASES = [(doc, command, lines) for doc in ("README.md", "docs/cli.md")
         for command, lines in transcripts(doc)]  # fmt: skip


def test_the_docs_hold_the_transcripts_this_test_runs() -> None:
    assert len([c for c in CASES if c[0] == "README.md"]) == 1
    assert len([c for c in CASES if c[0] == "docs/cli.md"]) == 2


@pytest.mark.parametrize(("doc", "command", "lines"), CASES, ids=lambda v: str(v)[:40])
def test_a_transcript_in_the_docs_is_what_the_command_prints(
    tmp_path: Path, doc: str, command: str, lines: list[str]
) -> None:
    words = shlex.split(command)
    assert words[:2] == ["gateway", "run"]
    proc = subprocess.run(
        [sys.executable, "-m", "gateway", *words[1:]], capture_output=True, text=True,
        timeout=60, cwd=tmp_path,
    )  # fmt: skip
    printed = proc.stdout.splitlines()
    missing = [ln for ln in lines if not any(shape(ln).match(out) for out in printed)]
    assert not missing, f"{doc}: lines of `{command}` it no longer prints: {missing}\n" + (
        proc.stdout
    )
