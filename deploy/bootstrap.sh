#!/usr/bin/env bash
# Everything a fresh machine of ours needs before the demo or the tests: uv, the locked Python
# environment, poppler-utils and openssl, and the local Kafka + FerretDB builds (cached in ~/.cache/kyso after the first run).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v uv >/dev/null 2>&1 && ! python3 -m uv --version >/dev/null 2>&1; then
  echo "[bootstrap] installing uv from PyPI" >&2
  python3 -m pip install --quiet --disable-pip-version-check uv
fi
UV="uv"; command -v uv >/dev/null 2>&1 || UV="python3 -m uv"

$UV sync --frozen --quiet

# The tests render the PDFs a subscriber receives (pdftoppm) and check certificates with openssl.
missing=()
command -v pdftoppm >/dev/null 2>&1 || missing+=(poppler-utils)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if ((${#missing[@]})); then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "[bootstrap] installing ${missing[*]} from Debian" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "[bootstrap] please install: ${missing[*]} (the PDF and PKI tests need them)" >&2
  fi
fi
$UV run --frozen python deploy/localinfra.py provision
