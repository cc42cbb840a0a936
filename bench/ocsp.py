"""OCSP responder throughput and latency over HTTP against the real database.

    uv run python bench/ocsp.py [--quick | --smoke] [--out bench/results]

Starts Kafka + FerretDB and the four services, issues one real certificate through the journey, then
adds synthetic certificate records to the signing service's database (so lookups run against a
realistically sized collection) and measures, at 16 concurrent clients:

- **cached**: a set of hot serials asked again and again without a nonce (the answer is reused);
- **uncached**: serials asked for the first time (a database read, a response built and signed);
- **nonce**: hot serials with a nonce (RFC 8954), which can never be reused;
- **/health**: the same HTTP path with no work behind it — the floor this machine and server allow;

plus the in-process ceiling of building and signing one response. Prints a table; writes
``ocsp.md`` and ``ocsp.json`` into the output folder.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp
from pymongo import AsyncMongoClient

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "deploy"))
sys.path.insert(0, str(ROOT / "bench"))

from harness import CpuMeter, bench_main, ms, pct, running_stack, sized  # noqa: E402

from kyso_client.api import Endpoints  # noqa: E402
from kyso_client.journey import walk  # noqa: E402
from kyso_signing.pki.registry import COLLECTION as REGISTRY  # noqa: E402
from stack import SERVICES  # noqa: E402

CONCURRENCY = 16
OCSP_REQUEST = {"Content-Type": "application/ocsp-request"}


def request_der(ca: x509.Certificate, serial: int, nonce: bytes | None = None) -> bytes:
    name = hashes.Hash(hashes.SHA1())
    name.update(ca.subject.public_bytes())
    public = ca.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    key = hashes.Hash(hashes.SHA1())
    key.update(public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint))
    b = ocsp.OCSPRequestBuilder().add_certificate_by_hash(
        name.finalize(),
        key.finalize(),
        serial,
        hashes.SHA1(),
    )
    if nonce is not None:
        b = b.add_extension(x509.OCSPNonce(nonce), critical=False)
    return b.build().public_bytes(serialization.Encoding.DER)


async def seed(mongodb_url: str, database: str, count: int) -> list[int]:
    """Certificate records as the CA keeps them, and their serials in the CA registry (what the responder
    reads), ``count`` of them."""
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(mongodb_url)
    coll = client[database]["certificates"]
    registry = client[database][REGISTRY]
    now = datetime.now(UTC)
    serials = [int.from_bytes(os.urandom(19), "big") >> 1 for _ in range(count)]
    try:
        for i in range(0, count, 1000):
            await coll.insert_many(
                [
                    {
                        "_id": uuid.uuid4().hex,
                        "order_id": uuid.uuid4().hex,
                        "account_id": "bench",
                        "created_at": now,
                        "status": "active",
                        "serial_number": format(s, "x"),
                        "revision": 1,
                        "certificate": {"serial_number": format(s, "x"), "not_after": now + timedelta(days=365)},
                        "pad": "x" * 1500,  # certificate records are ~2 KB
                    }
                    for s in serials[i : i + 1000]
                ]
            )
            # what the responder reads: the CA registry's record of each serial (as credentials.registration
            # writes it right after issuance)
            await registry.insert_many(
                [
                    {
                        "_id": format(s, "x"),
                        "certificate_id": uuid.uuid4().hex,
                        "not_after": now + timedelta(days=365),
                        "revision": 1,
                        "listed": False,
                        "revoked_at": None,
                        "reason": None,
                        "invalidity_date": None,
                    }
                    for s in serials[i : i + 1000]
                ]
            )
    finally:
        await client.close()
    return serials


async def load(url: str, bodies: list[bytes | None], seconds: float, meter: CpuMeter, cycle: bool) -> dict[str, Any]:
    """POST ``bodies`` (GET ``url`` when None) from 16 clients for ``seconds``; ``cycle``: start over when used up."""
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    index = 0
    deadline = time.monotonic() + seconds

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal index
        while time.monotonic() < deadline:
            if index >= len(bodies):
                if not cycle:
                    return
                index = 0
            body = bodies[index]
            index += 1
            t0 = time.perf_counter()
            if body is None:
                r = await client.get(url)
            else:
                r = await client.post(url, content=body, headers=OCSP_REQUEST)
            latencies.append(time.perf_counter() - t0)
            if body is not None:
                resp = ocsp.load_der_ocsp_response(r.content)
                key = resp.response_status.name
                if resp.response_status == ocsp.OCSPResponseStatus.SUCCESSFUL:
                    key = resp.certificate_status.name
                statuses[key] = statuses.get(key, 0) + 1

    before = meter.read()
    started = time.monotonic()
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        await asyncio.gather(*(worker(client) for _ in range(CONCURRENCY)))
    wall = time.monotonic() - started
    used = CpuMeter.used(before, meter.read())
    n = len(latencies)
    return {
        "requests": n,
        "per_second": round(n / wall, 1),
        "p50_ms": ms(pct(latencies, 50)),
        "p99_ms": ms(pct(latencies, 99)),
        "signing_cpu_ms_per_request": round(1000 * used.get("signing", 0.0) / max(n, 1), 3),
        "ferretdb_cpu_ms_per_request": round(1000 * used.get("ferretdb", 0.0) / max(n, 1), 3),
        "answers": statuses,
    }


def sign_ceiling(ca: x509.Certificate, reps: int) -> dict[str, Any]:
    """Build and sign one OCSP response in-process, no HTTP and no database: the cryptographic ceiling."""
    key = ec.generate_private_key(ec.SECP256R1())
    responder = (
        x509.CertificateBuilder()
        .subject_name(ca.subject)
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(datetime.now(UTC))
        .not_valid_after(datetime.now(UTC) + timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    t0 = time.perf_counter()
    for i in range(reps):
        now = datetime.now(UTC).replace(microsecond=0)
        b = ocsp.OCSPResponseBuilder().add_response_by_hash(
            b"\0" * 20, b"\0" * 20, i + 1, hashes.SHA1(), ocsp.OCSPCertStatus.GOOD, now, now + timedelta(hours=1),
            None, None,
        )  # fmt: skip
        b = b.responder_id(ocsp.OCSPResponderEncoding.HASH, responder).certificates([responder])
        b.sign(key, hashes.SHA256()).public_bytes(serialization.Encoding.DER)
    each = (time.perf_counter() - t0) / reps
    return {"ms_per_response": round(each * 1000, 3), "per_second_one_core": round(1 / each, 1)}


def report(results: dict[str, Any]) -> str:
    lines = [
        f"# OCSP responder — {results['started_at']} ({results['records']:,} certificate records, "
        f"{CONCURRENCY} clients, {os.cpu_count()} cores)",
        "",
        "| load | responses/s | p50 ms | p99 ms | signing CPU ms/req | FerretDB CPU ms/req | answers |",
        "|---|---:|---:|---:|---:|---:|---|",
    ]
    for name in ("health", "cached", "uncached", "nonce"):
        r = results[name]
        lines.append(
            f"| {name} | {r['per_second']} | {r['p50_ms']} | {r['p99_ms']} | {r['signing_cpu_ms_per_request']} | "
            f"{r['ferretdb_cpu_ms_per_request']} | {r['answers'] or '-'} |"
        )
    c = results["ceiling"]
    lines += [
        "",
        f"In-process ceiling (build + sign, no HTTP, no database): {c['ms_per_response']} ms per response, "
        f"{c['per_second_one_core']} per second on one core.",
        f"Cached answers reach {results['cached']['per_second'] / max(results['health']['per_second'], 1):.0%} "
        "of the bare HTTP floor (/health) measured in the same run.",
    ]
    return "\n".join(lines)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    seconds = sized(args, 15.0, 5.0, 1.0)
    records = sized(args, 100_000, 10_000, 300)
    results: dict[str, Any] = {"started_at": datetime.now(UTC).isoformat(timespec="seconds"), "records": records}
    with running_stack() as stack:
        meter = CpuMeter.of(stack)
        endpoints = Endpoints(*(stack.url(n) for n in SERVICES))
        journey = await walk(endpoints, say=lambda _: None)
        async with httpx.AsyncClient() as http:
            ca = x509.load_der_x509_certificate((await http.get(endpoints.signing + "/pki/ca/issuing.cer")).content)
        real = x509.load_pem_x509_certificate(journey.certificate_pem.encode())
        print(f"seeding {records:,} certificate records…", file=sys.stderr)
        serials = await seed(stack.mongodb_url, f"kyso_signing_{stack.run_id}", records)
        url = endpoints.signing + "/ocsp"
        hot = [request_der(ca, s) for s in [real.serial_number, *serials[:99]]]
        cold = [request_der(ca, s) for s in serials[100:]]
        print("health…", file=sys.stderr)
        results["health"] = await load(endpoints.signing + "/health", [None], seconds, meter, cycle=True)
        print("cached…", file=sys.stderr)
        await load(url, hot, 1.0, meter, cycle=False)  # warm the hot set
        results["cached"] = await load(url, hot, seconds, meter, cycle=True)
        print("uncached…", file=sys.stderr)
        results["uncached"] = await load(url, cold, seconds, meter, cycle=False)
        print("nonce…", file=sys.stderr)
        nonced = [request_der(ca, s, os.urandom(16)) for s in [real.serial_number, *serials[:99]]]
        results["nonce"] = await load(url, nonced, seconds, meter, cycle=True)
    results["ceiling"] = sign_ceiling(ca, sized(args, 2000, 2000, 200))
    return results


def main() -> None:
    bench_main(__doc__ or "", run, report, "ocsp", "5 s per load and 10,000 records")


if __name__ == "__main__":
    main()
