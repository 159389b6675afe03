#!/bin/sh
# Create .venv and install the project with the local engine and the test tools.
# torch is pinned first to the CPU build where a local wheel exists; elsewhere pip fetches it.
set -eu
cd "$(dirname "$0")/.."
PYTHON="${PYTHON:-python3}"
if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -c "import torch" 2>/dev/null || .venv/bin/python -m pip install -q "torch==2.13.0"
.venv/bin/python -m pip install -q -e ".[gpu,dev]"
