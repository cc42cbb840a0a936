"""Every benchmark in bench/ still runs: each script's ``--smoke`` mode (tiny sizes, a few seconds of
measurement, the same code paths) as its own process, exit 0, its figures and its in-run limit printed.

A benchmark nobody runs rots (bench/otp_verify.py failed with ``KeyError: 'gateway'`` for weeks). The
benchmarks that need the four services share this session's stack through ``KYSO_BENCH_STACK``
(``Stack.describe``/``Stack.attach``) instead of starting one each; otp_verify starts the otp service
alone, as it always does, on this session's Kafka and FerretDB. The figures of a smoke run say nothing
about performance: bench/README.md has the reference figures of full runs.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from stack import Stack

from ..conftest import Servers

ROOT = Path(__file__).resolve().parents[2]
BENCH = ROOT / "bench"

# script → what its output must show: its figures, and the limit measured in the same run beside them
EXPECTED: dict[str, list[str]] = {
    "pades.py": [
        r"\| ecdsa_p256_sign \(limit\) \| \d+ \| [\d.]+ \|",
        r"\| rfc3161_token \(limit\) \| \d+ \| [\d.]+ \|",
        r"\| seal contract B-LTA \| 2 \| [\d.]+ \|",
        r"\| complete B-LTA \| 2 \| [\d.]+ \|",
    ],
    "otp_verify.py": [
        r'"valid_codes": \{\s+"requests": 40,\s+"accepted": 40,',
        r'"wrong_codes": \{\s+"requests": 40,\s+"accepted": 0,\s+"rejected": 40,',
        r"valid codes: [\d.]+/s, p99 [\d.]+ ms — \d+% of the /health floor measured in this run",
    ],
    "signhash.py": [
        r"In-process ECDSA P-256 limit \(sign a digest\): [\d,]+/s on one core",
        r"\| 1 \| [\d,]+ \| \d+% \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d,]+ \|",
        r"\| 50 \| [\d,]+ \| \d+% \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d,]+ \|",
    ],
    "ocsp.py": [
        r"\| cached \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| \{'GOOD': \d+\} \|",
        r"\| uncached \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| \{'GOOD': \d+\} \|",
        r"\| nonce \| [\d.]+ \|",
        r"In-process ceiling \(build \+ sign, no HTTP, no database\): [\d.]+ ms per response",
        r"Cached answers reach \d+% of the bare HTTP floor \(/health\) measured in the same run",
    ],
    "ipn.py": [
        r"\| distinct IPNs \| 6 \| [\d,.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| \{'00': 6\} \|",
        r"\| duplicate IPN \| 50 \| [\d,.]+ \| [\d.]+ \| [\d.]+ \| [\d.]+ \| \{'02': 50\} \|",
        r"Distinct IPNs run at \d+% of the /health floor",
    ],
    "perf.py": [
        r"→ \*\*[\d.]+ journeys/s\*\* on \d+ cores",
        r"\| 1 \| 1 \(\+0 failed\) \| [\d.]+ \|",
        r"\| 4 \| 4 \(\+0 failed\) \| [\d.]+ \|",
        r"\| 2,000 \| [\d.]+ \| [\d.]+ \|",
        r"8 orders placed and paid in [\d.]+ s; all ready for consent after [\d.]+ s \(8 ready\)",
        r"\| OTP verification server CPU per valid code \| ≤ 2\.5 ms \| [\d.]+ ms \| (yes|\*\*no\*\*) \|",
        r"\| journeys/s at 4 concurrent ≥ 50 % of the crypto-bound limit \|",
    ],
    "scale_out.py": [
        r"one instance: +[\d.]+ events/s",
        r"two instances: +[\d.]+ events/s +\([\d.]+ s\) +x[\d.]+",
        r"cores used, two instances: otp-0 [\d.]+, otp-1 [\d.]+",
    ],
}


def test_every_bench_script_has_a_smoke_check() -> None:
    scripts = {p.name for p in BENCH.glob("*.py") if 'if __name__ == "__main__"' in p.read_text()}
    assert scripts == set(EXPECTED), "a bench/ script without a smoke check here, or a check of a script gone"


@pytest.fixture(scope="module")
def shared_env(stack: Stack, servers: Servers) -> dict[str, str]:
    return {
        **os.environ,
        "KYSO_BENCH_STACK": stack.describe(),
        "KAFKA_BOOTSTRAP_SERVERS": servers.kafka_bootstrap,
        "MONGODB_URL": servers.mongodb_url,
    }


@pytest.mark.parametrize("script", list(EXPECTED))
def test_bench_smoke(script: str, shared_env: dict[str, str], tmp_path: Path) -> None:
    writes = script != "otp_verify.py"  # the others write <name>.md / .json into --out
    t0 = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(BENCH / script), "--smoke", *(["--out", str(tmp_path)] if writes else [])],
        env=shared_env,
        capture_output=True,
        text=True,
        timeout=180,
        cwd=ROOT,
    )
    print(f"{script} --smoke: {time.monotonic() - t0:.1f} s")
    assert done.returncode == 0, f"{script} --smoke exited {done.returncode}:\n{done.stderr[-4000:]}"
    out = done.stdout
    assert "SMOKE RUN" in out
    for pattern in EXPECTED[script]:
        assert re.search(pattern, out), f"{script} --smoke did not print /{pattern}/:\n{out[-4000:]}"
    if writes:
        written = (tmp_path / f"{script.removesuffix('.py')}.md").read_text()
        assert "smoke" in written.lower()  # a smoke report is never mistaken for a measurement
