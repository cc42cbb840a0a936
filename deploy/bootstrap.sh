#!/usr/bin/env bash
# Everything a fresh machine of ours needs before the demo or the tests: uv, the locked Python
# environment, and the local Kafka + FerretDB builds (cached in ~/.cache/kyso after the first run).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v uv >/dev/null 2>&1 && ! python3 -m uv --version >/dev/null 2>&1; then
  echo "[bootstrap] installing uv from PyPI" >&2
  python3 -m pip install --quiet --disable-pip-version-check uv
fi
UV="uv"; command -v uv >/dev/null 2>&1 || UV="python3 -m uv"

$UV sync --frozen --quiet
$UV run --frozen python deploy/localinfra.py provision
