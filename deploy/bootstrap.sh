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

# The tests render the PDFs a subscriber receives (pdftoppm), check certificates with openssl and signatures with pdfsig.
missing=()
command -v pdftoppm >/dev/null 2>&1 || missing+=(poppler-utils)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
# pdfsig (poppler) checks that NSS-based viewers trust kyso's signatures, with kyso's root in an NSS database (certutil).
command -v certutil >/dev/null 2>&1 || missing+=(libnss3-tools)
# The EU DSS validator (tests/tools/dss) is a Java program built with Maven.
command -v mvn >/dev/null 2>&1 || missing+=(maven)
command -v javac >/dev/null 2>&1 || missing+=(openjdk-17-jdk-headless)
if ((${#missing[@]})); then
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    echo "[bootstrap] installing ${missing[*]} from Debian" >&2
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "[bootstrap] please install: ${missing[*]} (the PDF and PKI tests need them)" >&2
  fi
fi
$UV run --frozen python deploy/localinfra.py provision
# Build the DSS validator once (cached in ~/.m2 and tests/tools/dss/target); the tests skip it only without Java/Maven.
bash tests/tools/dss/run.sh --build || echo "[bootstrap] DSS validator not built (its tests will skip)" >&2
