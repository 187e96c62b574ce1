#!/usr/bin/env bash
# Sets up a fresh machine: a virtual environment in .venv with the project installed.
# Idempotent: re-running it does nothing when pyproject.toml has not changed.
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3.11}
command -v "$PYTHON" >/dev/null || PYTHON=python3

stamp=.venv/.setup-stamp
want=$(sha256sum pyproject.toml scripts/setup.sh | sha256sum | cut -d' ' -f1)
if [[ -f $stamp && $(cat "$stamp") == "$want" ]]; then
    exit 0
fi

[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
# torch first and pinned: it is the CPU wheel on this machine's disk.
.venv/bin/python -m pip install --quiet --disable-pip-version-check 'torch==2.13.0'
.venv/bin/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
echo "$want" > "$stamp"
