#!/usr/bin/env bash
# The test command: builds .venv if needed, installs the project with its test
# extra, then runs ruff, mypy and the pytest suite. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]'
.venv/bin/ruff check gateway actors tests benchmarks examples
.venv/bin/mypy gateway actors
exec .venv/bin/python -m pytest "$@"
