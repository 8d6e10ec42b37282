"""Issue 17: ``gateway cluster`` reads a ``[cluster]`` table from ``--config``; the
command line wins, and a bad key or value is one line that names it (exit 2)."""

from __future__ import annotations

from pathlib import Path

import pytest

from gateway.app.cluster_cli import cluster_params
from gateway.cli import build_parser, main
from gateway.errors import ConfigError


def _args(*argv: str) -> object:
    return build_parser().parse_args(["cluster", *argv])


def test_the_file_sets_the_cluster_and_the_command_line_wins(tmp_path: Path) -> None:
    path = tmp_path / "cluster.toml"
    path.write_text('[gateway]\nsymbols = ["X"]\n\n[cluster]\nworkers = 3\n'
                    'symbols = ["btcusdt", "ETHUSDT"]\nmaxlen = 5000\nperiod = 10\n'
                    'redis_url = "redis://10.0.0.5:6379/0"\n')  # fmt: skip
    params = cluster_params(_args("--config", str(path), "--workers", "4"))  # type: ignore[arg-type]
    assert params.workers == 4  # the option over the file
    assert params.symbols == ("BTCUSDT", "ETHUSDT") and params.maxlen == 5000
    assert params.period == 10.0 and params.redis_url == "redis://10.0.0.5:6379/0"
    assert params.streams == ("trade", "kline_1m", "bookTicker")  # the default


@pytest.mark.parametrize(("table", "match"), [
    ("wokers = 2", "unknown key cluster.wokers; allowed: workers"),
    ('workers = "two"', "cluster.workers must be int"),
    ("symbols = \"BTCUSDT\"", "cluster.symbols must be a list of strings"),
    ("workers = 0", "workers must be >= 1"),
    ("maxlen = true", "cluster.maxlen must be int"),
])  # fmt: skip
def test_a_bad_key_or_value_is_named(tmp_path: Path, table: str, match: str) -> None:
    path = tmp_path / "cluster.toml"
    path.write_text(f"[cluster]\n{table}\n")
    with pytest.raises(ConfigError, match=match):
        cluster_params(_args("--config", str(path)))  # type: ignore[arg-type]


def test_the_command_exits_2_with_one_line_for_a_bad_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "cluster.toml"
    path.write_text("[cluster]\nworkers = [\n")
    assert main(["cluster", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gateway cluster: config file") and "not valid TOML" in err


def test_the_example_configuration_has_a_valid_cluster_table() -> None:
    example = Path(__file__).resolve().parent.parent / "examples" / "gateway.toml"
    params = cluster_params(_args("--config", str(example)))  # type: ignore[arg-type]
    assert params.workers == 2 and "SOLUSDT" in params.symbols
