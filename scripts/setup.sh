#!/usr/bin/env bash
# Set up (or refresh) the project's virtual environment in .venv. Sourced by demo.sh and test.sh.
# torch is installed first and explicitly: a bare `torch` requirement would pull a multi-GB CUDA
# build, while this pin takes the CPU wheel. Override with TORCH_SPEC (e.g. "torch==2.5.1").
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
PYTHON=${PYTHON:-$(command -v python3.11 || command -v python3)}
if [ ! -x .venv/bin/python ]; then
  echo "xrfhub: creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
# shellcheck disable=SC1091
. .venv/bin/activate
stamp=".venv/.xrfhub-installed-$(sha256sum pyproject.toml | cut -c1-16)"
if [ ! -f "$stamp" ]; then
  python -m pip install -q --upgrade pip
  python -c "import torch" 2>/dev/null || python -m pip install -q "${TORCH_SPEC:-torch==2.13.0}"
  python -m pip install -q -e ".[ml,test,xrd]"
  rm -f .venv/.xrfhub-installed-*
  touch "$stamp"
fi
