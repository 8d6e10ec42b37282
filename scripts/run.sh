#!/usr/bin/env bash
# The main job: builds .venv if needed, installs the project, then runs
# `gateway run` (against the embedded exchange unless --url is given).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then "$PY" -m venv .venv; fi
.venv/bin/python -m pip install -q --disable-pip-version-check -e .
exec .venv/bin/gateway run "$@"
