"""The certificate authority on the running stack, checked with OpenSSL and pkilint: the chain verifies
strictly against the CRLs it serves, the OCSP responder answers good / revoked / unknown, a revocation
shows in the CRL, OCSP and the order's status within seconds, a suspension resumes, a renewal
supersedes the old certificate, and each lifecycle event is published once."""

from __future__ import annotations

import asyncio
import base64
import subprocess
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from kyso_client.api import Endpoints, KysoApi
from kyso_client.journey import EventWatcher, buy_certificate, walk
from pkilint_check import certificate_findings, crl_findings, ocsp_findings
from stack import Stack

from .helpers import PASSWORD, expect, operator_console

T = TypeVar("T")
PIN = "482915"


async def within(seconds: float, probe: Callable[[], Awaitable[T]], ok: Callable[[T], bool]) -> T:
    deadline = time.monotonic() + seconds
    while True:
        got = await probe()
        if ok(got) or time.monotonic() > deadline:
            return got
        await asyncio.sleep(0.2)


def openssl(*args: str | Path) -> str:
    out = subprocess.run(["openssl", *map(str, args)], capture_output=True, text=True, timeout=30)
    return out.stdout + out.stderr


class Pki:
    """What a relying party holds: the CA certificates and CRLs fetched from the URLs in the certificates."""

    def __init__(self, endpoints: Endpoints, tmp: Path) -> None:
        self.base, self.tmp = endpoints.signing, tmp

    async def fetch(self) -> None:
        async with httpx.AsyncClient() as http:
            for name, path in (
                ("root", "/pki/ca/root.cer"),
                ("issuing", "/pki/ca/issuing.cer"),
                ("issuing_crl", "/pki/crl/issuing.crl"),
                ("root_crl", "/pki/crl/root.crl"),
            ):
                r = await http.get(self.base + path)
                assert r.status_code == 200, path
                setattr(self, f"{name}_der", r.content)
        self.root = x509.load_der_x509_certificate(self.root_der)
        self.issuing = x509.load_der_x509_certificate(self.issuing_der)
        self.crl = x509.load_der_x509_crl(self.issuing_crl_der)
        self.arl = x509.load_der_x509_crl(self.root_crl_der)
        pem = serialization.Encoding.PEM
        (self.tmp / "root.pem").write_bytes(self.root.public_bytes(pem))
        (self.tmp / "issuing.pem").write_bytes(self.issuing.public_bytes(pem))
        (self.tmp / "crls.pem").write_bytes(self.crl.public_bytes(pem) + self.arl.public_bytes(pem))

    def leaf(self, pem_text: str, name: str = "leaf") -> Path:
        path = self.tmp / f"{name}.pem"
        path.write_text(pem_text)
        return path

    def verify(self, leaf: Path, *extra: str) -> str:
        return openssl(
            "verify", "-x509_strict", "-crl_check_all", *extra, "-CAfile", self.tmp / "root.pem",
            "-untrusted", self.tmp / "issuing.pem", "-CRLfile", self.tmp / "crls.pem", leaf,
        )  # fmt: skip

    def ocsp(self, *target: str | Path) -> str:
        return openssl(
            "ocsp", "-issuer", self.tmp / "issuing.pem", *target, "-url", f"{self.base}/ocsp",
            "-CAfile", self.tmp / "root.pem", "-verify_other", self.tmp / "issuing.pem", "-resp_text",
        )  # fmt: skip


async def signed_in(endpoints: Endpoints, phone: str) -> KysoApi:
    """A fresh session of the citizen ``walk`` created (the same password)."""
    api = KysoApi(endpoints)
    await api.login(phone, PASSWORD)
    return api


def events_of(watcher: EventWatcher, event_type: str, certificate_id: str) -> list[dict[str, Any]]:
    return [
        doc
        for _topic, key, doc in watcher.keyed_all()
        if doc.get("type") == event_type and doc["data"].get("certificate_id") == certificate_id
    ]


async def test_the_chain_verifies_strictly_against_the_served_crls_and_every_artefact_is_lint_clean(
    endpoints: Endpoints, tmp_path: Path
) -> None:
    result = await walk(endpoints, lambda _: None)
    pki = Pki(endpoints, tmp_path)
    await pki.fetch()
    leaf = pki.leaf(result.certificate_pem)
    assert "OK" in pki.verify(leaf).splitlines()[-1], pki.verify(leaf)
    cert = x509.load_pem_x509_certificate(result.certificate_pem.encode())
    # the subject as Vietnamese CAs write it, with the residence VNeID shared
    assert cert.subject.rfc4514_string().startswith("UID=CCCD:") and "ST=Hà Nội" in cert.subject.rfc4514_string()
    assert cert.subject.get_attributes_for_oid(x509.oid.NameOID.LOCALITY_NAME)[0].value == "Ba Đình"
    for der in (pki.root_der, pki.issuing_der, cert.public_bytes(serialization.Encoding.DER)):
        assert certificate_findings(der) == ""
    assert crl_findings(pki.issuing_crl_der) == "" and crl_findings(pki.root_crl_der, arl=True) == ""
    out = pki.ocsp("-cert", leaf)
    assert "Response verify OK" in out and f"{leaf}: good" in out, out
    # the responder's answer and certificate, as served over HTTP GET (RFC 6960 Appendix A.1)
    req = ocsp.OCSPRequestBuilder().add_certificate(cert, pki.issuing, hashes.SHA1()).build()
    encoded = base64.b64encode(req.public_bytes(serialization.Encoding.DER)).decode()
    async with httpx.AsyncClient() as http:
        r = await http.get(f"{endpoints.signing}/ocsp/{encoded}")
    assert r.headers["content-type"] == "application/ocsp-response" and "max-age" in r.headers["cache-control"]
    resp = ocsp.load_der_ocsp_response(r.content)
    assert resp.certificate_status == ocsp.OCSPCertStatus.GOOD
    assert ocsp_findings(r.content) == ""
    assert certificate_findings(resp.certificates[0].public_bytes(serialization.Encoding.DER)) == ""


async def test_unknown_serials_foreign_issuers_and_garbage_get_clear_ocsp_answers(
    endpoints: Endpoints, tmp_path: Path
) -> None:
    pki = Pki(endpoints, tmp_path)
    await pki.fetch()
    out = pki.ocsp("-serial", "0x5e41a1c0ffee")
    assert "0x5E41A1C0FFEE: unknown" in out or "0x5e41a1c0ffee: unknown" in out, out
    async with httpx.AsyncClient() as http:
        for body in (b"", b"garbage", b"\x30\x80\x00\x00"):
            r = await http.post(
                f"{endpoints.signing}/ocsp", content=body, headers={"Content-Type": "application/ocsp-request"}
            )
            assert ocsp.load_der_ocsp_response(r.content).response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
        r = await http.get(f"{endpoints.signing}/ocsp/%%%not-base64")
        assert ocsp.load_der_ocsp_response(r.content).response_status == ocsp.OCSPResponseStatus.MALFORMED_REQUEST
        # a certificate named under another issuer (the root) is not ours to answer for
        req = ocsp.OCSPRequestBuilder().add_certificate(pki.issuing, pki.root, hashes.SHA1()).build()
        r = await http.post(
            f"{endpoints.signing}/ocsp",
            content=req.public_bytes(serialization.Encoding.DER),
            headers={"Content-Type": "application/ocsp-request"},
        )
        assert ocsp.load_der_ocsp_response(r.content).response_status == ocsp.OCSPResponseStatus.UNAUTHORIZED


async def test_a_subscriber_revocation_shows_in_crl_ocsp_and_the_order_within_seconds_once(
    endpoints: Endpoints, watcher: EventWatcher, tmp_path: Path
) -> None:
    result = await walk(endpoints, lambda _: None)
    api = await signed_in(endpoints, result.phone)
    try:
        cid = result.certificate_id
        request = await api.request_lifecycle_change(cid, "revoke", "keyCompromise")
        assert request["otp"]["purpose"] == "certificate_revocation"
        started = time.monotonic()
        await api.confirm_lifecycle_change(request, result.account_id, result.phone)
        cert = await within(10, lambda: api.certificate(cid), lambda c: c["status"] == "revoked")
        assert cert["status"] == "revoked" and cert["revocation"]["reason"] == "keyCompromise"
        pki = Pki(endpoints, tmp_path)
        serial = int(cert["serial_number"], 16)
        await within(10, pki.fetch, lambda _: pki.crl.get_revoked_certificate_by_serial_number(serial) is not None)
        assert pki.crl.get_revoked_certificate_by_serial_number(serial) is not None
        leaf = pki.leaf(result.certificate_pem)
        assert "certificate revoked" in pki.verify(leaf)
        out = pki.ocsp("-cert", leaf)
        assert f"{leaf}: revoked" in out and "Reason: keyCompromise" in out, out
        order = await within(10, lambda: api.order(result.order_id), lambda o: o["status"] == "revoked")
        assert order["status"] == "revoked" and order["certificate"]["revocation_reason"] == "keyCompromise"
        elapsed = time.monotonic() - started
        assert elapsed < 15
        # the revoked key cannot be activated again, nor the certificate revoked twice
        await expect("already_revoked", 409, api.request_lifecycle_change(cid, "revoke", "unspecified"))
        await asyncio.sleep(1.5)
        assert len(events_of(watcher, "vn.kyso.signing.cert_revoked.v1", cid)) == 1
    finally:
        await api.aclose()


async def test_an_operator_suspends_and_resumes_and_nobody_else_may(
    stack: Stack, endpoints: Endpoints, watcher: EventWatcher, tmp_path: Path
) -> None:
    result = await walk(endpoints, lambda _: None)
    op = await operator_console(stack, endpoints)
    mine = await signed_in(endpoints, result.phone)
    other = await walk(endpoints, lambda _: None)
    stranger = await signed_in(endpoints, other.phone)
    try:
        cid = result.certificate_id
        await expect("forbidden", 403, stranger.request_lifecycle_change(cid, "revoke", "keyCompromise"))
        await expect("role_required", 403, mine.operator_lifecycle(cid, "revoke"))
        await expect("resume_by_operator", 422, mine.request_lifecycle_change(cid, "resume"))
        await expect("not_suspended", 409, op.operator_lifecycle(cid, "resume"))
        held = await op.operator_lifecycle(cid, "suspend")
        assert held["status"] == "suspended"
        pki = Pki(endpoints, tmp_path)
        await pki.fetch()
        leaf = pki.leaf(result.certificate_pem)
        out = pki.ocsp("-cert", leaf)
        assert f"{leaf}: revoked" in out and "Reason: certificateHold" in out, out
        await within(10, lambda: mine.order(result.order_id), lambda o: o["status"] == "suspended")
        resumed = await op.operator_lifecycle(cid, "resume")
        assert resumed["status"] == "active"
        await pki.fetch()
        assert "OK" in pki.verify(leaf).splitlines()[-1]
        assert f"{leaf}: good" in pki.ocsp("-cert", leaf)
        order = await within(10, lambda: mine.order(result.order_id), lambda o: o["status"] == "active")
        assert [t["event"] for t in order["timeline"]][-2:] == ["suspended", "resumed"]
        await op.operator_lifecycle(cid, "revoke", "privilegeWithdrawn")
        await expect("already_revoked", 409, op.operator_lifecycle(cid, "resume"))
        await expect("already_revoked", 409, op.operator_lifecycle(cid, "revoke"))
        await asyncio.sleep(1.5)
        for kind in ("suspended", "resumed", "revoked"):
            assert len(events_of(watcher, f"vn.kyso.signing.cert_{kind}.v1", cid)) == 1, kind
    finally:
        for a in (op, mine, stranger):
            await a.aclose()


async def test_a_renewal_with_another_key_algorithm_supersedes_the_old_certificate(
    endpoints: Endpoints, tmp_path: Path
) -> None:
    result = await walk(endpoints, lambda _: None)
    api = await signed_in(endpoints, result.phone)
    try:
        bought = await buy_certificate(
            api,
            result.account_id,
            result.phone,
            "PERSONAL_2Y",
            PIN,
            key_algorithm="rsa-3072-pss",
            renews_certificate_id=result.certificate_id,
            say=lambda _: None,
        )
        old = await within(15, lambda: api.certificate(result.certificate_id), lambda c: c["status"] == "revoked")
        assert old["revocation"]["reason"] == "superseded"
        assert old["revocation"]["superseded_by"] == bought.certificate_id
        new = await api.certificate(bought.certificate_id)
        assert new["status"] == "active" and new["key_algorithm"] == "rsa-3072-pss"
        listed = await api.my_certificates()
        assert [c["certificate_id"] for c in listed["certificates"]] == [bought.certificate_id, result.certificate_id]
        pki = Pki(endpoints, tmp_path)
        await within(
            10,
            pki.fetch,
            lambda _: (
                len(pki.crl) > 0
                and pki.crl.get_revoked_certificate_by_serial_number(int(old["serial_number"], 16)) is not None
            ),
        )
        assert "OK" in pki.verify(pki.leaf(new["certificate_pem"], "new")).splitlines()[-1]
        assert "certificate revoked" in pki.verify(pki.leaf(old["certificate_pem"], "old"))
        await within(10, lambda: api.order(result.order_id), lambda o: o["status"] == "revoked")
        # a revoked certificate cannot be renewed again, nor someone else's
        await expect("not_renewable", 409, api.place_order("PERSONAL_1Y", renews_certificate_id=result.certificate_id))
        await expect("not_found", 404, api.place_order("PERSONAL_1Y", renews_certificate_id="0" * 32))
    finally:
        await api.aclose()


@pytest.mark.parametrize("path", ["/pki/crl/issuing.crl", "/pki/crl/root.crl"])
async def test_crls_are_served_with_caching_headers(endpoints: Endpoints, path: str) -> None:
    async with httpx.AsyncClient() as http:
        r = await http.get(endpoints.signing + path)
        assert r.headers["content-type"] == "application/pkix-crl"
        for header in ("etag", "last-modified", "expires", "cache-control"):
            assert header in r.headers
        again = await http.get(endpoints.signing + path, headers={"If-None-Match": r.headers["etag"]})
        assert again.status_code == 304


async def test_the_timestamp_authority_answers_openssl_over_http(endpoints: Endpoints, tmp_path: Path) -> None:
    pki = Pki(endpoints, tmp_path)
    await pki.fetch()
    data = tmp_path / "hop-dong.txt"
    data.write_text("Hợp đồng dịch vụ ký số từ xa")
    query = tmp_path / "q.tsq"
    out = openssl("ts", "-query", "-data", data, "-sha256", "-cert", "-out", query)
    assert query.exists(), out
    async with httpx.AsyncClient() as http:
        r = await http.post(
            f"{endpoints.signing}/tsa",
            content=query.read_bytes(),
            headers={"Content-Type": "application/timestamp-query"},
        )
    assert r.status_code == 200 and r.headers["content-type"] == "application/timestamp-reply"
    (tmp_path / "r.tsr").write_bytes(r.content)
    verified = openssl(
        "ts", "-verify", "-in", tmp_path / "r.tsr", "-queryfile", query,
        "-CAfile", tmp_path / "root.pem", "-untrusted", tmp_path / "issuing.pem",
    )  # fmt: skip
    assert "Verification: OK" in verified, verified


async def test_the_provider_certificates_are_served_and_share_one_policy_tree_with_subscribers(
    endpoints: Endpoints, tmp_path: Path
) -> None:
    """What a relying party checks with OpenSSL alone: the seal, TSA and OCSP-responder certificates served
    under /pki/provider/, and a subscriber's, all verify under ``-explicit_policy`` for the CA's policy."""
    from kyso_signing.settings import DEV_POLICY_OID

    result = await walk(endpoints, lambda _: None)
    pki = Pki(endpoints, tmp_path)
    await pki.fetch()
    leaves = {"subscriber": pki.leaf(result.certificate_pem)}
    async with httpx.AsyncClient() as http:
        for name in ("seal", "tsa", "ocsp-responder"):
            r = await http.get(f"{endpoints.signing}/pki/provider/{name}.cer")
            assert r.status_code == 200 and r.headers["content-type"] == "application/pkix-cert", name
            assert certificate_findings(r.content) == "", name
            cert = x509.load_der_x509_certificate(r.content)
            leaves[name] = pki.leaf(cert.public_bytes(serialization.Encoding.PEM).decode(), name)
            if name == "seal":
                subject = cert.subject
                assert subject.get_attributes_for_oid(x509.oid.NameOID.ORGANIZATION_IDENTIFIER)[0].value.startswith(
                    "NTRVN-"
                )
                assert str(subject.get_attributes_for_oid(x509.oid.NameOID.USER_ID)[0].value).startswith("MST:")
    for name, leaf in leaves.items():
        out = pki.verify(leaf, "-explicit_policy", "-policy", DEV_POLICY_OID)
        assert "OK" in out.splitlines()[-1], (name, out)
