"""The packaged ``binance_simulator`` fixture from a user's project: no pytest
configuration, the installed package (editable here) and a pytest run in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from gateway.simulator.pytest_plugin import MISSING_PYTEST_TRIO, SYNC_TEST

USER_TESTS = """
import pytest
import trio


@pytest.fixture
async def listed(binance_simulator):
    yield binance_simulator.market.listed


async def test_fixture_and_clock(binance_simulator, listed, autojump_clock):
    await trio.sleep(5)
    assert listed == ("BTCUSDT", "ETHUSDT")


@pytest.mark.parametrize("binance_simulator", [{"seed": 9}], indirect=True)
async def test_indirect_parameter(binance_simulator):
    assert binance_simulator.config.seed == 9


@pytest.mark.trio
async def test_already_marked(binance_simulator):
    assert binance_simulator.config.seed == 0
"""

SYNC_USER_TEST = """
def test_sync(binance_simulator):
    pass
"""


def _project(root: Path, tests: str, ini: str | None = None) -> Path:
    (root / "tests").mkdir()
    (root / "tests" / "test_bot.py").write_text(tests)
    if ini is not None:
        (root / "pytest.ini").write_text(ini)
    return root


def _pytest(root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST", "PYTHONPATH"))}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
        cwd=root, env=env, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


def test_fixture_runs_in_a_project_without_configuration(tmp_path: Path) -> None:
    run = _pytest(_project(tmp_path, USER_TESTS), "-W", "error")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 passed" in run.stdout
    assert "configfile" not in run.stdout


def test_fixture_runs_with_trio_mode_on_too(tmp_path: Path) -> None:
    run = _pytest(_project(tmp_path, USER_TESTS, "[pytest]\ntrio_mode = true\n"))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "3 passed" in run.stdout


def test_without_pytest_trio_the_failure_says_what_to_install(tmp_path: Path) -> None:
    run = _pytest(_project(tmp_path, USER_TESTS), "-p", "no:trio")
    assert run.returncode == 1, run.stdout + run.stderr
    assert "3 errors" in run.stdout
    # Each test's own error section says what to install (the short summary may repeat
    # it or not, depending on the terminal width CI gives pytest).
    sections = run.stdout.split("ERROR at setup of ")[1:]
    assert len(sections) == 3, run.stdout
    assert all(MISSING_PYTEST_TRIO in section for section in sections), run.stdout
    assert "pip install 'trio-market-gateway[pytest]'" in MISSING_PYTEST_TRIO


def test_a_sync_test_using_the_fixture_is_told_to_be_async(tmp_path: Path) -> None:
    run = _pytest(_project(tmp_path, SYNC_USER_TEST))
    assert run.returncode == 1, run.stdout + run.stderr
    assert SYNC_TEST in run.stdout


@pytest.mark.parametrize("extra", ["pytest", "test"])
def test_the_pytest_extra_brings_what_the_fixture_needs(extra: str) -> None:
    from importlib.metadata import requires

    wanted = {"pytest", "pytest-trio"} if extra == "pytest" else {"trio-market-gateway[pytest]"}
    marker = f'extra == "{extra}"'
    names = {r.split(";")[0].split("<")[0].split(">")[0].strip()
             for r in requires("trio-market-gateway") or () if marker in r}  # fmt: skip
    assert wanted <= names
