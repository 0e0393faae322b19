#!/usr/bin/env bash
# Creates or updates the Python virtual environment of the gateway tests
# (tests/gateway.rs runs its Python agents with it) from the pinned
# tests/python/requirements.txt. Idempotent: a venv whose installed
# requirements match the file is left as it is.
#   scripts/python-venv.sh [VENV_DIR]   (default: target/python-venv)
set -euo pipefail
cd "$(dirname "$0")/.."
venv="${1:-${PEERD_PYTHON_VENV:-target/python-venv}}"
requirements=tests/python/requirements.txt
stamp="$venv/.requirements"
if [ -x "$venv/bin/python" ] && cmp -s "$requirements" "$stamp"; then
    echo "python venv $venv is up to date"
    exit 0
fi
python3 -m venv "$venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -r "$requirements"
cp "$requirements" "$stamp"
echo "python venv $venv ready"
