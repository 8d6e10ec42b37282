#!/usr/bin/env bash
# The main job: builds .venv if needed, installs the project into it when the venv is
# new or pyproject.toml changed since the last install (the install is editable, so
# source edits need none), then runs `gateway run` (the embedded exchange unless --url).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
STAMP=.venv/.run-installed-pyproject.toml  # the pyproject.toml of the last install
if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
if [ ! -x .venv/bin/gateway ] || ! cmp -s pyproject.toml "$STAMP"; then
    rm -f "$STAMP"
    .venv/bin/python -m pip install -q --disable-pip-version-check -e .
    cp pyproject.toml "$STAMP"
fi
exec .venv/bin/gateway run "$@"
