#!/bin/sh
# Install, then run the whole test suite (PostgreSQL/Redis tests skip when absent, unless CI=true).
set -eu
cd "$(dirname "$0")/.."
sh scripts/bootstrap.sh
exec .venv/bin/python -m pytest -q "$@"
