"""The README's examples run as written: the embedding one against the embedded
exchange, the codec one as plain Python."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from trio.testing import MockClock

from gateway.simulator import open_simulator

ROOT = Path(__file__).resolve().parents[1]


def load_example(name: str) -> object:
    spec = importlib.util.spec_from_file_location(name, ROOT / "examples" / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_readme_shows_the_example_verbatim() -> None:
    example = (ROOT / "examples" / "embed.py").read_text()
    body = example[example.index("import trio") : example.index("if __name__")].strip()
    assert body in (ROOT / "README.md").read_text()


async def test_embedding_example_runs(
    autojump_clock: MockClock, capsys: pytest.CaptureFixture[str]
) -> None:
    embed = load_example("embed")
    async with open_simulator(symbols=("BTCUSDT", "ETHUSDT"), clock="virtual", rate=50.0,
                              volatility=0.01) as sim:  # fmt: skip
        await embed.main(sim.ws_url, seconds=65)  # type: ignore[attr-defined]
    out = capsys.readouterr().out
    assert "candle BTCUSDT" in out and "candle ETHUSDT" in out
    assert "'BTCUSDT': " in out.split("events ")[1] and "p99=" in out
    assert "closing BTCUSDT-1: stop" in out  # the demo stop fired and was closed


def readme_block(after_heading: str) -> str:
    """The first ```python block of README.md after ``after_heading``."""
    text = (ROOT / "README.md").read_text()
    rest = text[text.index(after_heading) :]
    return rest.split("```python\n", 1)[1].split("```", 1)[0]


def test_the_readme_codec_example_runs_as_written() -> None:
    scope: dict[str, object] = {}
    exec(compile(readme_block("## The codec (sans-I/O)"), "README.md", "exec"), scope)
    assert scope["url"] == ("wss://stream.binance.com:9443/stream?streams="
                            "btcusdt@trade/ethusdt@kline_1m")  # fmt: skip
    assert '"method":"SUBSCRIBE"' in str(scope["text"])
