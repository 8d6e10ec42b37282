"""The command transcripts in README.md and docs/cli.md are what the commands print:
each transcript is run as written and every line it shows (numbers aside) must appear
in the real output, so the docs cannot drift from the code. The same holds for the
one-line mistakes docs/cli.md lists (and, in tests/test_cli.py, its replay transcript)."""

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


def error_lines() -> list[str]:
    """The one-line mistakes docs/cli.md shows after "Mistakes stop the run"."""
    text = (ROOT / "docs/cli.md").read_text()
    block = re.search(r"Mistakes stop\s+the run.*?```\n(.*?)```", text, re.S)
    assert block is not None, "docs/cli.md lost its block of mistakes"
    return block.group(1).strip().splitlines()


def loose(line: str) -> re.Pattern[str]:
    """``line`` as a pattern: ``...`` stands for any text, and every number for any
    number (ports differ from run to run)."""
    pieces = [shape(piece).pattern.removesuffix("$") for piece in line.split("...")]
    return re.compile(".*".join(pieces) + "$")


#: What provokes each mistake of the block: a config file's body and extra flags
#: (``{url}``: the embedded exchange of the test).
MISTAKES = {
    "unknown key reconect": ("symbols = ['BTCUSDT']\nreconect = 1\n", []),
    "candle_buffer": ("symbols = ['BTCUSDT']\ncandle_buffer = 'big'\n", []),
    "kline_7m": ("symbols = ['BTCUSDT']\nstreams = ['kline_7m']\n", []),
    "--streams must": ("", ["--streams", ""]),
    "not listed": ("", ["--url", "{url}", "--symbols", "BTC-USD,FOOBARUSDT"]),
}


def test_the_mistakes_docs_cli_shows_are_what_the_run_prints(tmp_path: Path) -> None:
    lines = error_lines()
    assert len(lines) == len(MISTAKES), lines
    with subprocess.Popen(
        [sys.executable, "-m", "gateway", "simulate", "--port", "0", "--symbols", "BTCUSDT",
         "--log-level", "WARNING"], stdout=subprocess.PIPE, text=True, cwd=tmp_path,
    ) as sim:  # fmt: skip
        try:
            assert sim.stdout is not None
            first = sim.stdout.readline()  # "ws_url=ws://127.0.0.1:PORT rest_url=..."
            url = first.split()[0].removeprefix("ws_url=")
            assert url.startswith("ws://127.0.0.1:"), first
            for line in lines:
                (key,) = [k for k in MISTAKES if k in line]
                body, flags = MISTAKES[key]
                config = tmp_path / "gateway.toml"
                config.write_text("[gateway]\n" + body)
                argv = [a.replace("{url}", url) for a in flags]
                proc = subprocess.run(
                    [sys.executable, "-m", "gateway", "run", "--config", str(config), *argv,
                     "--duration", "2", "--plain"],
                    capture_output=True, text=True, timeout=60, cwd=tmp_path,
                )  # fmt: skip
                assert proc.returncode == 2, (line, proc.stderr)
                said = proc.stderr.strip().splitlines()
                assert len(said) == 1 and loose(line).match(said[0]), (line, proc.stderr)
        finally:
            sim.terminate()
            sim.wait(timeout=15)
