"""PDF costs in process: what each step of the two documents a subscriber keeps costs on one core.

    uv run python bench/pades.py [--quick | --smoke] [--out bench/results]

With a fresh CA, seal and TSA (the service's own code, no database), times: rendering the contract
PDF (fpdf2 + the embedded font), the provider's seal to PAdES B-LTA, adding a signature placeholder
(what a PDF signing request costs before the subscriber is asked), completing a prepared PDF to
B-T / B-LT / B-LTA from a signature, and — the limit measured in the same run — one ECDSA P-256
signature and one RFC 3161 token. Writes ``pades.md`` / ``pades.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import POLICY, bench_main, sized, timed, world

from kyso_signing.documents import layout as documents
from kyso_signing.documents import pades
from kyso_signing.pki import cms, profiles, signer
from kyso_signing.pki import keys as pki


async def run(args: argparse.Namespace) -> dict[str, Any]:
    return await asyncio.to_thread(measure, args)  # pyHanko runs event loops of its own


def measure(args: argparse.Namespace) -> dict[str, Any]:
    n = sized(args, 40, 10, 2)
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
    signature = signer.sign_digest(uk, cms.to_be_signed(prepared.document_digest, user), sha256)
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
    bench_main(__doc__ or "", run, report, "pades", "10 samples per step instead of 40")
