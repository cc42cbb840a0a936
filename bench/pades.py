"""PDF costs in process: what each step of the two documents a subscriber keeps costs on one core.

    uv run python bench/pades.py [--quick] [--out bench/results]

With a fresh CA, seal and TSA (the service's own code, no database), times: rendering the contract
PDF (fpdf2 + the embedded font), the provider's seal to PAdES B-LTA, adding a signature placeholder
(what a PDF signing request costs before the subscriber is asked), completing a prepared PDF to
B-T / B-LT / B-LTA from a signature, and — the limit measured in the same run — one ECDSA P-256
signature and one RFC 3161 token. Writes ``pades.md`` / ``pades.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))

from cryptography.hazmat.primitives.serialization import Encoding  # noqa: E402
from perf import bench_main  # noqa: E402

from kyso_kit.clock import SystemClock  # noqa: E402
from kyso_signing import crl, documents, pades, pki, profiles, signer  # noqa: E402
from kyso_signing.tsa import TimestampAuthority  # noqa: E402

POLICY = "2.25.250634348.1.1"


def timed(fn: Callable[[], Any], n: int) -> dict[str, float]:
    fn()  # warm
    samples = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t)
    samples.sort()
    return {
        "n": n,
        "p50_ms": round(statistics.median(samples) * 1000, 2),
        "p95_ms": round(samples[int(0.95 * (n - 1))] * 1000, 2),
        "per_second": round(n / sum(samples), 1),
    }


async def run(args: argparse.Namespace) -> dict[str, Any]:
    return await asyncio.to_thread(measure, args)  # pyHanko runs event loops of its own


@dataclass(frozen=True)
class World:
    """A fresh CA hierarchy, provider seal and TSA made with the service's own code (no database)."""

    now: datetime
    urls: profiles.Urls
    ca_key: Any
    ca: Any
    seal_key: Any
    seal: Any
    tsa: TimestampAuthority
    trust: pades.Trust


def world() -> World:
    now = datetime.now(UTC)
    urls = profiles.Urls("http://127.0.0.1:8003")
    rk = pki.new_key(pki.KeyAlgorithm.ECDSA_P384)
    root = profiles.root_ca(rk, profiles.ca_name("Root", "kyso bench"), now)
    ck = pki.new_key()
    ca = profiles.issuing_ca(ck.public_key(), profiles.ca_name("Issuing", "kyso bench"), rk, root, urls, POLICY, now)
    sk, tk = pki.new_key(), pki.new_key()
    seal = profiles.provider_seal(sk.public_key(), "kyso bench", ck, ca, urls, POLICY, now, timedelta(days=90))
    tsa_cert = profiles.timestamp_authority(tk.public_key(), ck, ca, urls, POLICY, now, timedelta(days=90))
    tsa = TimestampAuthority(POLICY, SystemClock())
    tsa.use(tk, tsa_cert)
    crls = tuple(
        crl.build_crl([], 1, issuer, key, now - timedelta(minutes=1), timedelta(hours=24)).public_bytes(Encoding.DER)
        for issuer, key in ((ca, ck), (root, rk))
    )
    return World(now, urls, ck, ca, sk, seal, tsa, pades.Trust(root, ca, crls))


def measure(args: argparse.Namespace) -> dict[str, Any]:
    n = 10 if args.quick else 40
    w = world()
    now, urls, ck, ca, sk, seal, tsa, trust = w.now, w.urls, w.ca_key, w.ca, w.seal_key, w.seal, w.tsa, w.trust
    uk = pki.new_key()
    user = profiles.subscriber(
        uk.public_key(),
        profiles.Subscriber("Nguyễn Văn Bền", "001190000123", "Hà Nội", "Ba Đình"),
        pki.new_serial(),
        now - timedelta(minutes=1),
        now + timedelta(days=365),
        ck,
        ca,
        urls,
        POLICY,
    )
    order = {
        "order_id": "bench",
        "package_code": "PERSONAL-1Y",
        "validity_years": 1,
        "amount_vnd": 800_000,
        "email": "ben@example.vn",
        "subscriber": {"full_name": "Nguyễn Văn Bền", "citizen_id": "001190000123", "date_of_birth": "1990-05-01"},
    }
    pdf = documents.service_contract("c" * 32, "kyso bench", order, now).pdf
    prepared = pades.prepare(pdf, user, trust, "Bench", "bench")
    sha256 = signer.HASHES["sha256"]
    signature = signer.sign_digest(uk, pades.to_be_signed(prepared.document_digest, user), sha256)
    stamper = pades.LocalTimeStamper(tsa)
    digest = bytes(32)
    out = {
        "cores_used": 1,
        "pdf_bytes": len(pdf),
        "steps": {
            "ecdsa_p256_sign (limit)": timed(lambda: signer.sign_digest(uk, digest, sha256), n * 50),
            "rfc3161_token (limit)": timed(lambda: tsa.stamp_imprint(digest, "sha256"), n * 5),
            "render contract PDF": timed(lambda: documents.service_contract("c" * 32, "kyso", order, now), n),
            "seal contract B-LTA": timed(lambda: pades.seal(pdf, sk, seal, trust, tsa, "bench"), n),
            "prepare placeholder": timed(lambda: pades.prepare(pdf, user, trust, "Bench", "bench"), n),
            **{
                f"complete {level}": timed(
                    lambda level=level: pades.complete(prepared, signature, user, trust, stamper, level),  # type: ignore[misc]
                    n,
                )
                for level in ("B-T", "B-LT", "B-LTA")
            },
        },
    }
    return out


def report(r: dict[str, Any]) -> str:
    lines = [
        "# PDF signing costs, in process, one core",
        "",
        f"Contract PDF: {r['pdf_bytes']:,} bytes.",
        "",
        "| step | n | p50 ms | p95 ms | per second |",
        "|---|---:|---:|---:|---:|",
    ]
    for name, s in r["steps"].items():
        lines.append(f"| {name} | {s['n']} | {s['p50_ms']} | {s['p95_ms']} | {s['per_second']:,} |")
    return "\n".join(lines)


if __name__ == "__main__":
    bench_main(__doc__, run, report, "pades", "10 samples per step instead of 40")
