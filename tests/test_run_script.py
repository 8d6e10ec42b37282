"""``scripts/run.sh`` installs only when it must: a new venv, a changed pyproject.toml,
or a failed last install (stand-in ``python`` and ``gateway`` record what they ran)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

FAKE = """#!/usr/bin/env bash
echo "$(basename "$0") $*" >> "{log}"
if [ "$(basename "$0")" = python ] && [ -e "{fail}" ]; then exit 1; fi
if [ "$(basename "$0")" = python ]; then
    printf '#!/usr/bin/env bash\\necho "gateway $*" >> "{log}"\\n' > "{bin}/gateway"
    chmod +x "{bin}/gateway"
fi
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the script with a pyproject.toml and a venv whose python is a stand-in."""
    (tmp_path / "scripts").mkdir()
    shutil.copy(ROOT / "scripts" / "run.sh", tmp_path / "scripts" / "run.sh")
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "x"\n')
    bin_dir = tmp_path / ".venv" / "bin"
    bin_dir.mkdir(parents=True)
    python = bin_dir / "python"
    python.write_text(FAKE.format(log=tmp_path / "log", fail=tmp_path / "fail", bin=bin_dir))
    python.chmod(0o755)
    return tmp_path


def _run(project: Path) -> tuple[int, list[str]]:
    log = project / "log"
    log.unlink(missing_ok=True)
    done = subprocess.run(
        ["bash", str(project / "scripts" / "run.sh"), "--duration", "1"],
        env={**os.environ, "PYTHON": "false"}, capture_output=True, timeout=30, check=False,
    )  # fmt: skip
    return done.returncode, log.read_text().splitlines() if log.exists() else []


def test_run_sh_installs_only_when_pyproject_changed_or_the_venv_is_new(project: Path) -> None:
    install = "python -m pip install -q --disable-pip-version-check -e ."
    assert _run(project) == (0, [install, "gateway run --duration 1"])
    assert _run(project) == (0, ["gateway run --duration 1"])  # before: installed again
    (project / "pyproject.toml").write_text('[project]\nname = "x"\nversion = "2"\n')
    assert _run(project) == (0, [install, "gateway run --duration 1"])
    assert _run(project) == (0, ["gateway run --duration 1"])
    (project / ".venv" / "bin" / "gateway").unlink()  # a venv without the project
    assert _run(project) == (0, [install, "gateway run --duration 1"])


def test_run_sh_installs_again_after_a_failed_install(project: Path) -> None:
    install = "python -m pip install -q --disable-pip-version-check -e ."
    assert _run(project)[0] == 0
    (project / "pyproject.toml").write_text('[project]\nname = "y"\n')
    (project / "fail").touch()
    assert _run(project) == (1, [install])
    (project / "fail").unlink()
    assert _run(project) == (0, [install, "gateway run --duration 1"])
