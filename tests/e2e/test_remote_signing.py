"""Remote signing on the running stack: an integrator registered by an operator asks, the subscriber
confirms in the app with a SmartOTP code over the documents (or an SMS code bound to them) and the
signing PIN; signatures verify with `cryptography`; the webhook arrives signed (checked with the
Standard Webhooks library); a PDF is signed through CSC v2 by a pyHanko signer and pyHanko's
validator accepts it with the served chain and CRLs; misuse gets the spec's errors."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import Prehashed
from standardwebhooks.webhooks import Webhook

from kyso_client.api import Endpoints, KysoApi
from kyso_client.integrator import CscError, Integrator, register_integrator
from kyso_client.journey import JourneyResult, walk
from kyso_contracts.transactions import DocumentsTransaction
from stack import Stack

from .helpers import PASSWORD, expect, operator_console, registered_integrator

PIN = "482915"  # what walk() activates the certificate with
SMARTOTP_PIN = "730514"


class Receiver(BaseHTTPRequestHandler):
    got: ClassVar[list[tuple[dict[str, str], bytes]]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("content-length", 0)))
        Receiver.got.append(({k.lower(): v for k, v in self.headers.items()}, body))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def receiver() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/kyso-hooks"
    finally:
        server.shutdown()


async def integrator(stack: Stack, endpoints: Endpoints, webhook_url: str | None) -> tuple[Integrator, str]:
    return await registered_integrator(stack, endpoints, "Cổng hóa đơn điện tử", webhook_url)


async def app_of(endpoints: Endpoints, who: JourneyResult) -> KysoApi:
    api = KysoApi(endpoints)
    await api.login(who.phone, PASSWORD)
    return api


def verify(certificate_pem: str, signature: bytes, digest: bytes) -> None:
    public = x509.load_pem_x509_certificate(certificate_pem.encode()).public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(signature, digest, ec.ECDSA(Prehashed(hashes.SHA256())))


async def sms_confirm(api: KysoApi, who: JourneyResult, request_id: str) -> None:
    """The app: an SMS code bound to the request's documents, then the PIN."""
    await api.confirm_signing_by_sms(request_id, who.account_id, who.phone, PIN)


def audit_cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    """The real ``kyso-audit`` command against this stack's signing database."""
    env = {
        **os.environ,
        "MONGODB_URL": stack.mongodb_url,
        "MONGODB_DATABASE": f"kyso_signing_{stack.run_id}",
        "KAFKA_BOOTSTRAP_SERVERS": stack.kafka_bootstrap,
        "KYSO_PROFILE": "development",
    }
    cmd = [sys.executable, "-m", "kyso_signing.audit_cli", *args]
    return subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=60, check=False)


def audit_export(stack: Stack, account_id: str, request_id: str) -> dict[str, Any]:
    deadline = time.monotonic() + 15
    while True:  # the evidence is appended when signing handles its own SignatureCompleted
        out = audit_cli(stack, "export", "--account", account_id)
        assert out.returncode == 0, out.stderr
        doc: dict[str, Any] = json.loads(out.stdout)
        if any(e.get("entry", {}).get("request_id") == request_id for e in doc["entries"]):
            return doc
        assert time.monotonic() < deadline, "no evidence entry"
        time.sleep(0.3)


async def test_a_batch_confirmed_with_smartotp_and_the_pin_is_signed_and_the_webhook_arrives_signed(
    stack: Stack, endpoints: Endpoints, receiver: str, tmp_path: Path
) -> None:
    who = await walk(endpoints, lambda _: None)
    rp, webhook_secret = await integrator(stack, endpoints, receiver)
    api = await app_of(endpoints, who)
    try:
        files = {f"hoa-don-{i:03}.xml": f"<HDon so='{i}'/>".encode() for i in range(1, 11)}
        digests = {label: hashlib.sha256(body).digest() for label, body in files.items()}
        created = await rp.submit(list(digests.items()), description="Ký 10 hóa đơn tháng 11", user_id=who.account_id)
        assert created["status"] == "waiting_for_user_confirm" and created["certificate_id"] == who.certificate_id
        [pending] = (await api.signing_requests())["requests"]
        assert pending["request_id"] == created["request_id"] and pending["relying_party"] == "Cổng hóa đơn điện tử"
        assert [s["label"] for s in pending["signatures"]] == list(files)
        # the device computes a code over exactly these digests (the next time step: walk used this one)
        assert who.soft_token is not None
        tx = DocumentsTransaction(document_hashes=[d.hex() for d in digests.values()])
        assert tx.digest() == pending["documents_digest"]
        code = who.soft_token.transaction_code(SMARTOTP_PIN, tx, device_time=time.time() + 30)
        await api.smartotp_confirm_documents(who.token_id, code, tx.document_hashes, created["request_id"])
        await expect("wrong_pin", 400, api.confirm_signing(created["request_id"], "975310"))
        signed = await api.confirm_signing(created["request_id"], PIN)
        assert signed["status"] == "signed"
        done = await rp.request(created["request_id"])
        assert done["status"] == "signed"
        for entry in done["signatures"]:
            import base64

            verify(who.certificate_pem, base64.b64decode(entry["signature"]), digests[entry["label"]])
        # the webhook, verified with the Standard Webhooks library
        deadline = time.monotonic() + 10
        while not any(json.loads(b).get("request_id") == created["request_id"] for _, b in Receiver.got):
            assert time.monotonic() < deadline, "no webhook"
            await asyncio.sleep(0.2)
        headers, body = next(
            (h, b) for h, b in Receiver.got if json.loads(b).get("request_id") == created["request_id"]
        )
        payload = Webhook(webhook_secret).verify(body, headers)
        assert payload["status"] == "signed" and len(payload["signatures"]) == 10
        # the evidence, exported with the real CLI and verified offline; one altered byte is found
        export = await asyncio.to_thread(audit_export, stack, who.account_id, created["request_id"])
        path = tmp_path / "evidence.json"
        path.write_text(json.dumps(export, ensure_ascii=False))
        assert audit_cli(stack, "verify", str(path)).returncode == 0
        mine = next(e for e in export["entries"] if e.get("entry", {}).get("request_id") == created["request_id"])
        assert mine["entry"]["how"]["otp"]["method"] == "smartotp" and mine["entry"]["how"]["pin_verified"]
        mine["entry"]["what"]["documents"][0]["label"] = "hoa-don-999.xml"
        path.write_text(json.dumps(export, ensure_ascii=False))
        tampered = audit_cli(stack, "verify", str(path))
        assert tampered.returncode == 1 and "altered" in tampered.stdout
        # another integrator sees nothing of it
        other, _ = await integrator(stack, endpoints, None)
        with pytest.raises(httpx.HTTPStatusError):
            await other.request(created["request_id"])
        await other.aclose()
    finally:
        await rp.aclose()
        await api.aclose()


async def test_a_pdf_signed_through_csc_v2_by_a_pyhanko_signer_validates(stack: Stack, endpoints: Endpoints) -> None:
    from asn1crypto import x509 as asn1_x509
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign import signers
    from pyhanko.sign.fields import SigSeedSubFilter
    from pyhanko.sign.validation import async_validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    from kyso_client.pdf import KysoCscSigner

    who = await walk(endpoints, lambda _: None)
    rp, _ = await integrator(stack, endpoints, None)
    api = await app_of(endpoints, who)
    try:
        _, info = await rp.csc(
            "credentials/info",
            {"credentialID": who.certificate_id, "certificates": "chain", "certInfo": True, "authInfo": True},
        )
        assert info["SCAL"] == "2" and info["auth"]["expression"] == "PIN AND OTP"
        assert "1.2.840.10045.4.3.2" in info["key"]["algo"] and info["cert"]["status"] == "valid"
        import base64

        chain = [base64.b64decode(c) for c in info["cert"]["certificates"]]

        async def confirm(handle: str) -> None:
            await sms_confirm(api, who, handle)

        signer = KysoCscSigner(rp, who.certificate_id, chain[0], chain[1:], confirm)
        out = io.BytesIO()
        meta = signers.PdfSignatureMetadata(field_name="KySo1", subfilter=SigSeedSubFilter.PADES, md_algorithm="sha256")
        pdf = signers.PdfSigner(meta, signer=signer)
        await pdf.async_sign_pdf(IncrementalPdfFileWriter(io.BytesIO(minimal_pdf())), output=out)
        assert signer.calls == [True, False]  # one dry run, one real signature: the subscriber was asked once
        async with httpx.AsyncClient() as http:
            crls = [
                (await http.get(endpoints.signing + p)).content for p in ("/pki/crl/issuing.crl", "/pki/crl/root.crl")
            ]
        vc = ValidationContext(
            trust_roots=[asn1_x509.Certificate.load(chain[2])],
            other_certs=[asn1_x509.Certificate.load(chain[1])],
            crls=crls,
            allow_fetching=False,
            revocation_mode="hard-fail",
        )
        [sig] = PdfFileReader(io.BytesIO(out.getvalue())).embedded_signatures
        status = await async_validate_pdf_signature(sig, vc)
        assert status.intact and status.valid and status.trusted, status.pretty_print_details()
        assert status.bottom_line
    finally:
        await rp.aclose()
        await api.aclose()


async def openssl_verifies_token(endpoints: Endpoints, token: bytes, digest: bytes, tmp: Path) -> None:
    async with httpx.AsyncClient() as http:
        for name in ("root", "issuing"):
            der = (await http.get(f"{endpoints.signing}/pki/ca/{name}.cer")).content
            cert = x509.load_der_x509_certificate(der)
            (tmp / f"{name}.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp / "token.der").write_bytes(token)
    out = await asyncio.to_thread(
        subprocess.run,
        ["openssl", "ts", "-verify", "-in", str(tmp / "token.der"), "-token_in", "-digest", digest.hex(),
         "-CAfile", str(tmp / "root.pem"), "-untrusted", str(tmp / "issuing.pem")],
        capture_output=True, text=True, timeout=30, check=False,
    )  # fmt: skip
    assert "Verification: OK" in out.stdout, out.stdout + out.stderr


async def test_csc_async_mode_and_the_specs_errors_for_misuse(
    stack: Stack, endpoints: Endpoints, tmp_path: Path
) -> None:
    who = await walk(endpoints, lambda _: None)
    rp, _ = await integrator(stack, endpoints, None)
    api = await app_of(endpoints, who)
    try:
        digests = [hashlib.sha256(b"page one").digest(), hashlib.sha256(b"page two").digest()]
        handle = await rp.authorize(who.certificate_id, digests, "Hợp đồng lao động")
        status, out = await rp.csc("credentials/authorizeCheck", {"handle": handle})
        assert (status, out) == (202, {"handle": handle})
        await sms_confirm(api, who, handle)
        sad = await rp.wait_for_sad(handle)
        sigs = await rp.sign_hash(who.certificate_id, sad, digests, "1.2.840.10045.4.3.2", asynchronous=True)
        for s, d in zip(sigs, digests, strict=True):
            verify(who.certificate_pem, s, d)
        with pytest.raises(CscError) as replay:
            await rp.sign_hash(who.certificate_id, sad, digests, "1.2.840.10045.4.3.2")
        assert (replay.value.status, replay.value.error) == (400, "invalid_request")
        # no token, a garbage body, a PIN sent by the relying party, an unknown credential
        async with httpx.AsyncClient() as http:
            r = await http.post(f"{endpoints.signing}/csc/v2/credentials/list", json={"userID": who.account_id})
            assert r.status_code == 401 and r.json()["error"] == "invalid_token"
            r = await http.post(f"{endpoints.signing}/csc/v2/info", content=b"{not json")
            assert r.status_code == 400 and r.json()["error"] == "invalid_request"
        for body in (
            {"credentialID": who.certificate_id, "numSignatures": 1, "hashes": [base64_of(digests[0])],
             "authData": [{"id": "PIN", "value": PIN}]},
            {"credentialID": "0" * 32, "numSignatures": 1, "hashes": [base64_of(digests[0])]},
            {"credentialID": who.certificate_id, "numSignatures": 1, "hashes": ["!!!"]},
            {"credentialID": who.certificate_id, "numSignatures": 51, "hashes": [base64_of(digests[0])] * 51},
        ):  # fmt: skip
            with pytest.raises(CscError) as err:
                await rp.csc("credentials/authorize", body)
            assert (err.value.status, err.value.error) == (400, "invalid_request")
        _, listed = await rp.csc("credentials/list", {"userID": who.account_id, "onlyValid": True})
        assert listed["credentialIDs"] == [who.certificate_id]
        # signatures/timestamp: an RFC 3161 token from kyso's own TSA, verified by openssl
        _, stamped = await rp.csc(
            "signatures/timestamp",
            {"hash": base64_of(digests[0]), "hashAlgo": "2.16.840.1.101.3.4.2.1", "nonce": "0a1b2c"},
        )
        await openssl_verifies_token(endpoints, base64.b64decode(stamped["timestamp"]), digests[0], tmp_path)
    finally:
        await rp.aclose()
        await api.aclose()


async def webhook_of(request_id: str, timeout: float = 10) -> tuple[dict[str, str], bytes]:
    deadline = time.monotonic() + timeout
    while True:
        hit = [(h, b) for h, b in Receiver.got if json.loads(b).get("request_id") == request_id]
        if hit:
            return hit[0]
        assert time.monotonic() < deadline, "no webhook"
        await asyncio.sleep(0.2)


async def test_csc_signatures_leave_only_through_sign_hash_and_kyso_calls_only_registered_origins(
    stack: Stack, endpoints: Endpoints, receiver: str
) -> None:
    """Issue 18 points 1–2 over HTTP: the request's status and its webhook carry the outcome only; a
    ``response_uri`` off the relying party's registered origins is ``invalid_request`` (the SAD is not
    spent); a SAD issued before a suspension does not sign after the resumption."""
    who = await walk(endpoints, lambda _: None)
    op = await operator_console(stack, endpoints)
    origin = receiver.rsplit("/", 1)[0]  # http://127.0.0.1:<port> (development allows loopback)
    rp, webhook_secret = await register_integrator(op, endpoints.signing, "Cổng hợp đồng", receiver, None, [origin])
    api = await app_of(endpoints, who)
    try:
        digests = [hashlib.sha256(b"trang 1").digest(), hashlib.sha256(b"trang 2").digest()]
        handle = await rp.authorize(who.certificate_id, digests, "Hợp đồng mua bán")
        await sms_confirm(api, who, handle)
        sad = await rp.wait_for_sad(handle)
        status = await rp.request(handle)  # the SmartCA-style status of the same request
        assert status["status"] == "signed" and [e["signature"] for e in status["signatures"]] == [None, None]
        headers, body = await webhook_of(handle)
        outcome = Webhook(webhook_secret).verify(body, headers)
        assert outcome["status"] == "signed" and "signatures" not in outcome
        # a response_uri kyso will not call: the spec's invalid_request, nothing spent
        for uri in (f"http://127.0.0.1:{int(origin.rsplit(':', 1)[1]) + 1}/csc", "ftp://127.0.0.1/csc",
                    "http://169.254.169.254/latest/meta-data"):  # fmt: skip
            with pytest.raises(CscError) as refused:
                await rp.sign_hash(who.certificate_id, sad, digests, "1.2.840.10045.4.3.2", asynchronous=True,
                                   response_uri=uri)  # fmt: skip
            assert (refused.value.status, refused.value.error) == (400, "invalid_request")
        sigs = await rp.sign_hash(
            who.certificate_id, sad, digests, "1.2.840.10045.4.3.2", asynchronous=True, response_uri=origin + "/csc"
        )
        for sig, d in zip(sigs, digests, strict=True):
            verify(who.certificate_pem, sig, d)
        deadline = time.monotonic() + 10
        while not any(json.loads(b).keys() == {"responseID"} for _, b in Receiver.got):
            assert time.monotonic() < deadline, "no response_uri notification"
            await asyncio.sleep(0.2)
        # a SAD issued before a suspension does not sign after the resumption, within its 300 s
        more = [hashlib.sha256(b"trang 3").digest()]
        handle2 = await rp.authorize(who.certificate_id, more, "Phụ lục")
        await sms_confirm(api, who, handle2)
        sad2 = await rp.wait_for_sad(handle2)
        await op.operator_lifecycle(who.certificate_id, "suspend")
        await op.operator_lifecycle(who.certificate_id, "resume")
        with pytest.raises(CscError) as ended:
            await rp.sign_hash(who.certificate_id, sad2, more, "1.2.840.10045.4.3.2")
        assert (ended.value.status, ended.value.error) == (400, "invalid_request")
        assert "no longer valid" in ended.value.description
    finally:
        await rp.aclose()
        await api.aclose()
        await op.aclose()


async def test_oauth_follows_rfc_6749_and_6750_and_a_generic_client_finds_the_token_endpoint(
    stack: Stack, endpoints: Endpoints
) -> None:
    """Issue 18 point 3 over HTTP; the token is fetched by Authlib (an independent OAuth 2.0 client)
    from the endpoint CSC ``info`` names."""
    from authlib.integrations.httpx_client import AsyncOAuth2Client

    rp, _ = await integrator(stack, endpoints, None)
    token_url = f"{endpoints.signing}/v1/oauth2/token"
    try:
        async with httpx.AsyncClient() as http:
            basic = (rp.client_id, rp.client_secret)
            for form, auth, error in (
                ({}, basic, "invalid_request"),  # no grant_type
                ({"grant_type": "client_credentials", "client_id": rp.client_id, "client_secret": rp.client_secret},
                 basic, "invalid_request"),  # Basic and form credentials at once
                ({"grant_type": "authorization_code"}, basic, "unsupported_grant_type"),
            ):  # fmt: skip
                r = await http.post(token_url, data=form, auth=auth)
                assert (r.status_code, r.json()["error"]) == (400, error)
                assert r.headers["cache-control"] == "no-store" and r.headers["pragma"] == "no-cache"
            for path, body in (("/v1/signing-requests/" + "0" * 32, None), ("/csc/v2/credentials/list", {})):
                method = "GET" if body is None else "POST"
                bare = await http.request(method, endpoints.signing + path, json=body)
                assert bare.status_code == 401 and bare.headers["www-authenticate"] == "Bearer"
                bad = await http.request(
                    method, endpoints.signing + path, json=body, headers={"Authorization": "Bearer x"}
                )
                assert bad.status_code == 401 and bad.headers["www-authenticate"] == 'Bearer error="invalid_token"'
            info = (await http.post(f"{endpoints.signing}/csc/v2/info", json={})).json()
        discovered = info["oauth2"] + "oauth2/token"
        assert discovered == await rp.token_endpoint()
        async with AsyncOAuth2Client(rp.client_id, rp.client_secret) as oauth:
            token = await oauth.fetch_token(discovered, grant_type="client_credentials")
            assert token["token_type"] == "Bearer" and token["expires_in"] > 0
            r = await oauth.post(f"{endpoints.signing}/csc/v2/credentials/list", json={"userID": "nobody"})
            assert r.status_code == 200 and r.json()["credentialIDs"] == []
    finally:
        await rp.aclose()


def base64_of(b: bytes) -> str:
    import base64

    return base64.b64encode(b).decode()


def minimal_pdf() -> bytes:
    """A one-page PDF with a correct cross-reference table."""
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents 4 0 R /Resources << >> >>",
    ]
    content = b"BT /F1 12 Tf 72 770 Td (Hop dong) Tj ET"
    objects.append(b"<< /Length %d >>\nstream\n" % len(content) + content + b"\nendstream")
    out = io.BytesIO()
    out.write(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for i, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % i + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for off in offsets:
        out.write(b"%010d 00000 n \n" % off)
    out.write(b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref))
    return out.getvalue()
