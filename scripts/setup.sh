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
# find_spec: whether torch is installed, without importing it (2-3 s)
if ! "$VENV/bin/python" -c "import importlib.util, sys; sys.exit(importlib.util.find_spec('torch') is None)"; then
    echo "setup: installing PyTorch ($TORCH_SPEC)"
    "${PIP[@]}" "$TORCH_SPEC"
fi
# The editable install is redone only when pyproject.toml or the extra changed since the
# last one here (the stamp), as `make demo` runs this before every demo
STAMP="$VENV/.stgan-setup"
HASH=$("$VENV/bin/python" -c "import hashlib; print(hashlib.sha256(open('pyproject.toml', 'rb').read()).hexdigest())")
WANT="$HASH ${EXTRA:-runtime} $PWD"
if [ -f "$STAMP" ] && grep -qxF "$WANT" "$STAMP"; then
    echo "setup: stgan${EXTRA:+ [$EXTRA]} already installed in $VENV (pyproject.toml unchanged)"
    exit 0
fi
echo "setup: installing stgan${EXTRA:+ [$EXTRA]} into $VENV"
"${PIP[@]}" -e ".${EXTRA:+[$EXTRA]}"
# what is installed now: a dev install also serves the runtime
{ [ "${EXTRA:-runtime}" != dev ] || echo "$HASH runtime $PWD"; echo "$WANT"; } > "$STAMP"
