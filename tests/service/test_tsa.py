"""The RFC 3161 timestamp authority, checked with OpenSSL (`openssl ts -verify`) and pkilint."""

from __future__ import annotations

import asyncio
import hashlib
import subprocess
from pathlib import Path
from typing import Any

import pytest
from asn1crypto import algos, tsp
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import ExtendedKeyUsageOID

from kyso_signing.pki import keys as pki
from kyso_signing.pki.tsa import TimestampAuthority
from pkilint_check import certificate_findings

from .test_signing_rules import Signing


@pytest.fixture
async def stamper(store: Any, clock: Any) -> tuple[Signing, TimestampAuthority]:
    s = Signing(store, clock)
    await s.start()
    t = TimestampAuthority(s.authority.tsa_policy_oid, clock)
    t.use(s.authority.tsa_key, s.authority.tsa_certificate)
    return s, t


def query(data: bytes, *, algorithm: str = "sha256", nonce: int | None = 4242, policy: str | None = None) -> bytes:
    req: dict[str, Any] = {
        "version": "v1",
        "message_imprint": {
            "hash_algorithm": algos.DigestAlgorithm({"algorithm": algorithm}),
            "hashed_message": hashlib.new(algorithm, data).digest(),
        },
        "cert_req": True,
    }
    if nonce is not None:
        req["nonce"] = nonce
    if policy:
        req["req_policy"] = policy
    return bytes(tsp.TimeStampReq(req).dump())


def openssl_ts(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["openssl", "ts", *map(str, args)], capture_output=True, text=True, timeout=30)


def files(tmp: Path, s: Signing) -> tuple[Path, Path]:
    pem = serialization.Encoding.PEM
    (tmp / "root.pem").write_bytes(s.authority.root_certificate.public_bytes(pem))
    (tmp / "issuing.pem").write_bytes(s.authority.ca_certificate.public_bytes(pem))
    return tmp / "root.pem", tmp / "issuing.pem"


async def test_a_granted_timestamp_verifies_with_openssl(
    stamper: tuple[Signing, TimestampAuthority], tmp_path: Path
) -> None:
    s, t = stamper
    data = "Hợp đồng số 1".encode()
    q = query(data)
    resp = tsp.TimeStampResp.load(t.respond(q))
    assert resp["status"]["status"].native == "granted"
    info = resp["time_stamp_token"]["content"]["encap_content_info"]["content"].parsed
    assert info["nonce"].native == 4242 and info["policy"].native == s.authority.tsa_policy_oid
    assert info["message_imprint"]["hashed_message"].native == hashlib.sha256(data).digest()
    (tmp_path / "q.tsq").write_bytes(q)
    (tmp_path / "r.tsr").write_bytes(t.respond(q))
    (tmp_path / "data.bin").write_bytes(data)
    root, issuing = files(tmp_path, s)
    out = await asyncio.to_thread(
        openssl_ts, "-verify", "-in", tmp_path / "r.tsr", "-data", tmp_path / "data.bin",
        "-CAfile", root, "-untrusted", issuing,
    )  # fmt: skip
    assert "Verification: OK" in out.stdout, out.stdout + out.stderr
    # and against the query (the nonce and the imprint)
    out = await asyncio.to_thread(
        openssl_ts, "-verify", "-in", tmp_path / "r.tsr", "-queryfile", tmp_path / "q.tsq",
        "-CAfile", root, "-untrusted", issuing,
    )  # fmt: skip
    assert "Verification: OK" in out.stdout, out.stdout + out.stderr


def test_the_tsa_certificate_is_lint_clean_with_a_critical_timestamping_eku(
    stamper: tuple[Signing, TimestampAuthority],
) -> None:
    s, t = stamper
    cert = t.certificate
    assert certificate_findings(pki.der(cert)) == ""
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage)
    assert eku.critical and list(eku.value) == [ExtendedKeyUsageOID.TIME_STAMPING]
    cert.extensions.get_extension_for_class(x509.CRLDistributionPoints)  # revocation data for LTV
    cert.verify_directly_issued_by(s.authority.ca_certificate)


SHORT_IMPRINT = tsp.TimeStampReq(
    {
        "version": "v1",
        "message_imprint": {
            "hash_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
            "hashed_message": b"too short",
        },
    }
).dump()

OPENSSL_FAILURE = {
    "bad_data_format": "the data submitted has the wrong format",
    "bad_alg": "unrecognized or unsupported algorithm identifier",
    "unaccepted_policy": "the requested TSA policy is not supported by the TSA",
}


@pytest.mark.parametrize(
    ("body", "fail"),
    [
        (b"", "bad_data_format"),
        (b"garbage", "bad_data_format"),
        (b"\x30" * 5000, "bad_data_format"),
        (query(b"x", algorithm="md5"), "bad_alg"),
        (query(b"x", policy="1.2.3.4"), "unaccepted_policy"),
        (SHORT_IMPRINT, "bad_data_format"),
    ],
)
async def test_bad_requests_are_rejections_openssl_reads(
    stamper: tuple[Signing, TimestampAuthority], body: bytes, fail: str, tmp_path: Path
) -> None:
    _, t = stamper
    (tmp_path / "r.tsr").write_bytes(t.respond(body))
    out = await asyncio.to_thread(openssl_ts, "-reply", "-in", tmp_path / "r.tsr", "-text")
    assert "Status: Rejected" in out.stdout, out.stdout + out.stderr
    assert OPENSSL_FAILURE[fail] in out.stdout, out.stdout
