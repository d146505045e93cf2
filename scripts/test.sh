#!/usr/bin/env bash
# One command on a fresh machine: set up, then run the test suite (slow tests excluded;
# pass `-m slow` or other pytest options to change that).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
python -m pytest -q "$@"
