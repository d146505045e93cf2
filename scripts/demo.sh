#!/usr/bin/env bash
# One command on a fresh machine: set up, then run the demo end to end on the embedded data.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/setup.sh
xrfhub demo --out "${1:-demo-output}"
