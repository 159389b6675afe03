#!/bin/sh
# Install, then run web + worker on embedded defaults; prints the URL.
set -eu
cd "$(dirname "$0")/.."
sh scripts/bootstrap.sh
exec .venv/bin/blanklogo dev "$@"
