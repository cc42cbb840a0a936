"""Remote signing throughput: CSC ``signatures/signHash`` over HTTP against the real database.

    uv run python bench/signhash.py [--quick | --smoke] [--out bench/results]

Starts Kafka + FerretDB and the four services, walks one citizen to an active certificate, registers
an integrator, then for batches of 1, 10 and 50 digests:

- **authorise**: ``credentials/authorize`` → the app's SMS code bound to the digests → the signing
  PIN (argon2id, once per batch; the digests are signed here) → ``authorizeCheck`` returns the SAD.
  Timed one batch after another: signatures per second of the whole confirmation path.
- **signHash**: every prepared SAD spent by ``signatures/signHash`` from 8 concurrent clients:
  signatures per second and p50/p99 per call.

beside the in-process ECDSA P-256 limit (sign a precomputed digest, one core and all cores) measured
in the same run. Writes ``signhash.md`` / ``signhash.json`` into the output folder.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "deploy"))
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "tests"))

from harness import bench_main, ms, pct, running_stack, sized  # noqa: E402

from kyso_client.api import Endpoints, KysoApi  # noqa: E402
from kyso_client.integrator import Integrator  # noqa: E402
from kyso_client.journey import walk  # noqa: E402
from stack import SERVICES, Stack  # noqa: E402

PIN = "482915"
PASSWORD = "Ky-so an toan 2025!"
ECDSA_SHA256 = "1.2.840.10045.4.3.2"
CLIENTS = 8


def ecdsa_limit(seconds: float = 2.0) -> dict[str, float]:
    key = ec.generate_private_key(ec.SECP256R1())
    digest = hashlib.sha256(b"x").digest()
    n, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        key.sign(digest, ec.ECDSA(Prehashed(hashes.SHA256())))
        n += 1
    one = n / (time.perf_counter() - t0)
    return {"one_core_per_second": round(one), "all_cores_per_second": round(one * (os.cpu_count() or 1))}


async def operator_integrator(stack: Stack, endpoints: Endpoints) -> Integrator:
    from e2e.helpers import registered_integrator

    rp, _ = await registered_integrator(stack, endpoints, "bench", None)
    return rp


async def authorise(rp: Integrator, api: KysoApi, who: Any, batch: int, k: int) -> tuple[str, list[bytes]]:
    digests = [hashlib.sha256(f"batch {batch} #{k} doc {i}".encode()).digest() for i in range(batch)]
    handle = await rp.authorize(who.certificate_id, digests, f"bench {batch}")
    req = await api.signing_request(handle)
    ch = await api.sms_challenge(
        "signature_confirmation", handle, account_id=who.account_id, binding_sha256=req["documents_digest"]
    )
    await api.verify_sms(ch["challenge_id"], await api.dev_sms_code(who.phone, ch["challenge_id"]))
    await api.confirm_signing(handle, PIN)
    return await rp.wait_for_sad(handle, every=0.02), digests


async def spend(rp: Integrator, who: Any, prepared: list[tuple[str, list[bytes]]]) -> dict[str, Any]:
    queue = list(prepared)
    latencies: list[float] = []
    signatures = 0

    async def worker() -> None:
        nonlocal signatures
        while queue:
            sad, digests = queue.pop()
            t0 = time.perf_counter()
            sigs = await rp.sign_hash(who.certificate_id, sad, digests, ECDSA_SHA256)
            latencies.append(time.perf_counter() - t0)
            signatures += len(sigs)

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CLIENTS)))
    wall = time.perf_counter() - t0
    return {
        "calls": len(latencies),
        "signatures": signatures,
        "signatures_per_second": round(signatures / wall),
        "p50_ms": ms(pct(latencies, 50)),
        "p99_ms": ms(pct(latencies, 99)),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    results: dict[str, Any] = {"started_at": datetime.now(UTC).isoformat(timespec="seconds")}
    results["ecdsa"] = ecdsa_limit(sized(args, 2.0, 2.0, 0.3))
    # One subscriber confirms many batches here (a stack shared through KYSO_BENCH_STACK keeps its limits:
    # the smoke run's three batches stay within them).
    sms = {"OTP_SMS_PER_PHONE_PER_HOUR": "100000", "OTP_SMS_PER_ACCOUNT_PER_HOUR": "100000"}
    with running_stack(sms) as stack:
        endpoints = Endpoints(*(stack.url(n) for n in SERVICES))
        who = await walk(endpoints, say=lambda _: None)
        rp = await operator_integrator(stack, endpoints)
        api = KysoApi(endpoints)
        await api.login(who.phone, PASSWORD)
        plan = sized(args, {1: 40, 10: 30, 50: 30}, {1: 10, 10: 10, 50: 10}, {1: 1, 10: 1, 50: 1})
        for batch, count in plan.items():
            print(f"batches of {batch}: authorising {count}…", file=sys.stderr)
            prepared, t0 = [], time.perf_counter()
            for k in range(count):
                prepared.append(await authorise(rp, api, who, batch, k))
            wall = time.perf_counter() - t0
            row: dict[str, Any] = {
                "batch": batch,
                "authorise_seconds_per_batch": round(wall / count, 3),
                "authorise_signatures_per_second": round(batch * count / wall),
            }
            row["sign_hash"] = await spend(rp, who, prepared)
            results.setdefault("batches", []).append(row)
            print(f"  {row}", file=sys.stderr)
        await rp.aclose()
        await api.aclose()
    return results


def report(results: dict[str, Any]) -> str:
    e = results["ecdsa"]
    half = e["all_cores_per_second"] / 2
    lines = [
        f"# signHash — {results['started_at']} ({os.cpu_count()} cores, {CLIENTS} clients)",
        "",
        f"In-process ECDSA P-256 limit (sign a digest): {e['one_core_per_second']:,}/s on one core, "
        f"{e['all_cores_per_second']:,}/s on all cores; half of it: {half:,.0f}/s.",
        "",
        "| batch | signHash signatures/s | vs half the limit | p50 ms | p99 ms | "
        "authorise→SAD s/batch | whole path signatures/s |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in results["batches"]:
        s = row["sign_hash"]
        lines.append(
            f"| {row['batch']} | {s['signatures_per_second']:,} | {s['signatures_per_second'] / half:.0%} | "
            f"{s['p50_ms']} | {s['p99_ms']} | {row['authorise_seconds_per_batch']} | "
            f"{row['authorise_signatures_per_second']:,} |"
        )
    return "\n".join(lines)


def main() -> None:
    bench_main(__doc__ or "", run, report, "signhash", "10 batches of each size")


if __name__ == "__main__":
    main()
