#!/usr/bin/env bash
# Create the virtualenv (.venv by default) and install stgan into it.
#   scripts/setup.sh          runtime dependencies
#   scripts/setup.sh dev      also the test and reference libraries (the `dev` extra)
# PyTorch: where the venv has no torch yet, install torch==2.13.0 first (a CPU build
# where one is on disk), so that the bare `torch` requirement pulls nothing bigger.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}
PYTHON=${PYTHON:-python3}
TORCH_SPEC=${STGAN_TORCH_SPEC:-torch==2.13.0}
EXTRA=${1:-}

[ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
PIP=("$VENV/bin/python" -m pip install --quiet --disable-pip-version-check)
if ! "$VENV/bin/python" -c "import torch" 2>/dev/null; then
    echo "setup: installing PyTorch ($TORCH_SPEC)"
    "${PIP[@]}" "$TORCH_SPEC"
fi
echo "setup: installing stgan${EXTRA:+ [$EXTRA]} into $VENV"
"${PIP[@]}" -e ".${EXTRA:+[$EXTRA]}"
