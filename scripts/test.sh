#!/usr/bin/env bash
# The test command: builds .venv if needed, installs the project with its test and
# clients extras (the real clients of the conformance tests), then runs ruff, mypy and
# the pytest suite. Extra args go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
PIP=(.venv/bin/python -m pip install -q --disable-pip-version-check)
# A client of the clients extra that cannot be installed makes its conformance tests skip
# (they say so); it does not stop the run.
if ! "${PIP[@]}" -e '.[test,clients]'; then
    echo "test.sh: the clients extra did not install; trying each client alone" >&2
    "${PIP[@]}" -e '.[test]'
    .venv/bin/python -c 'import tomllib; print(*tomllib.load(open("pyproject.toml", "rb"))
        ["project"]["optional-dependencies"]["clients"], sep="\n")' | while read -r req; do
        "${PIP[@]}" "$req" || echo "test.sh: $req could not be installed: its tests skip" >&2
    done
fi
# The cluster tests run a real redis-server (tests/conftest.py): Debian's package.
if ! command -v redis-server >/dev/null 2>&1; then
    echo "test.sh: installing Debian's redis-server for the cluster tests" >&2
    if [ "$(id -u)" = 0 ]; then SUDO=(); else SUDO=(sudo -n); fi
    "${SUDO[@]}" apt-get install -y -q redis-server >/dev/null 2>&1 \
        || { "${SUDO[@]}" apt-get update -q >/dev/null 2>&1 \
             && "${SUDO[@]}" apt-get install -y -q redis-server >/dev/null; } \
        || echo "test.sh: redis-server could not be installed: the cluster tests will fail" >&2
fi
.venv/bin/ruff check gateway actors tests benchmarks examples
.venv/bin/mypy gateway actors
exec .venv/bin/python -m pytest "$@"
