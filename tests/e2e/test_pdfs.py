"""The PDFs a subscriber receives, over real HTTP from the running services: the sealed contract and the
signed acceptance record, downloaded as the app does, accepted by pyHanko's validators with only the
chain and CRLs kyso serves (and AdES-LTA validation with local data only), rendered by pdftoppm; one
changed byte is caught; nobody else can download them. And CSC ``signatures/signDoc`` end to end.
Every long-term PDF also carries revocation data issued after the certificates it covers, and the EU DSS
library (offline, the kyso root as the only trust anchor) rates it TOTAL_PASSED."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import io
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID
from pyhanko.sign.validation.ades import AdESPassed

from ades_check import ades_indications, dss_reports, revinfo
from kyso_client.api import Endpoints, KysoApi, KysoError
from kyso_client.journey import JourneyResult, walk
from kyso_client.pdf import validate_pdf
from stack import Stack

from .helpers import PASSWORD, new_citizen
from .test_remote_signing import integrator, minimal_pdf, sms_confirm


@pytest.fixture(scope="module")
async def who(stack: Stack) -> JourneyResult:
    """One subscriber through the whole journey, shared by this module's tests (each uses its own files)."""
    return await walk(Endpoints(*(stack.url(n) for n in ("registration", "payment", "signing", "otp"))), lambda _: None)


SERVED = ("/pki/ca/root.cer", "/pki/ca/issuing.cer", "/pki/crl/issuing.crl", "/pki/crl/root.crl")


async def served(endpoints: Endpoints) -> dict[str, bytes]:
    async with httpx.AsyncClient() as http:
        return {p: (await http.get(endpoints.signing + p)).content for p in SERVED}


def ades(pdf: bytes, pki: dict[str, bytes]) -> list[Any]:
    crls = [pki["/pki/crl/issuing.crl"], pki["/pki/crl/root.crl"]]
    return ades_indications(pdf, pki["/pki/ca/root.cer"], pki["/pki/ca/issuing.cer"], crls)


def long_term_ok(files: dict[str, bytes], root_der: bytes, workdir: Path) -> None:
    """Each revocation answer in each PDF issued no earlier than the certificate it covers (read with
    asn1crypto), and each signature TOTAL_PASSED, each timestamp PASSED by the EU DSS library."""
    for name, data in files.items():
        info = revinfo(data)
        assert info.ocsps and not info.issued_before_certificate(), (name, info.issued_before_certificate())
    for name, report in dss_reports(files, root_der, None, workdir).items():
        assert report["signatures"], name
        for token in report["signatures"] + report["timestamps"]:
            assert token["indication"] in ("TOTAL_PASSED", "PASSED"), (name, token)


def one_byte_changed(pdf: bytes) -> bytes:
    i = pdf.index(b"BeVietnamPro") + 3
    return pdf[:i] + bytes([pdf[i] ^ 0x20]) + pdf[i + 1 :]


async def test_the_subscriber_downloads_two_pdfs_that_validate_and_render(
    endpoints: Endpoints, who: JourneyResult, tmp_path: Path
) -> None:
    api = KysoApi(endpoints)
    try:
        await api.login(who.phone, PASSWORD)
        contract = await api.contract_for_order(who.order_id, wait=20, sealed=True)
        record = await api.acceptance_record(who.certificate_id)
        assert contract["signed"] and contract["sealed_pdf_url"] and record["signed"] and record["signed_pdf_url"]
        files = {
            "contract": await api.download(contract["sealed_pdf_url"]),
            "acceptance": await api.download(record["signed_pdf_url"]),
        }
        consented = await api.download(contract["pdf_url"])
        assert files["contract"].startswith(consented)  # the bytes the consent code was bound to, then the seal
        assert hashlib.sha256(consented).hexdigest() == contract["sha256"]
        assert hashlib.sha256(files["contract"]).hexdigest() == contract["sealed_sha256"]
        assert hashlib.sha256(files["acceptance"]).hexdigest() == record["signed_sha256"]
        pki = await served(endpoints)
        for name, data in files.items():
            check = await validate_pdf(data, endpoints.signing)
            assert check.level == "PAdES B-LTA" and check.has_dss, name
            assert await asyncio.to_thread(ades, data, pki) == [AdESPassed.OK], name
            with pytest.raises(Exception):  # noqa: B017 - whatever pyHanko raises, it must not validate
                await validate_pdf(one_byte_changed(data), endpoints.signing)
        assert (await validate_pdf(files["contract"], endpoints.signing)).signers[0].endswith("Contract Seal")
        subscriber = x509.load_pem_x509_certificate(who.certificate_pem.encode())
        [cn] = subscriber.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
        assert (await validate_pdf(files["acceptance"], endpoints.signing)).signers == [cn.value]
        await asyncio.to_thread(long_term_ok, files, pki["/pki/ca/root.cer"], tmp_path)
        assert shutil.which("pdftoppm"), "poppler-utils missing: deploy/bootstrap.sh installs it"
        for name, data in files.items():
            (tmp_path / f"{name}.pdf").write_bytes(data)
            done = await asyncio.to_thread(
                subprocess.run,
                ["pdftoppm", "-r", "40", "-png", "-singlefile", "-f", "1", "-l", "1", f"{name}.pdf", name],
                cwd=tmp_path,
                capture_output=True,
                timeout=60,
            )
            assert done.returncode == 0, done.stderr
            assert (tmp_path / f"{name}.png").read_bytes().startswith(b"\x89PNG")
        # nobody else sees them
        other = await new_citizen(KysoApi(endpoints))
        for url in (contract["sealed_pdf_url"], record["signed_pdf_url"]):
            with pytest.raises(KysoError) as denied:
                await other.api.download(url)
            assert denied.value.status in (403, 404)
        await other.api.aclose()
    finally:
        await api.aclose()


async def test_csc_sign_doc_over_http_gives_a_pades_signature_pyhanko_accepts(
    stack: Stack, endpoints: Endpoints, who: JourneyResult
) -> None:
    from asn1crypto import cms, crl, ocsp
    from asn1crypto import x509 as ax509
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import fields, signers
    from pyhanko.sign.signers.pdf_signer import PdfTBSDocument
    from pyhanko.sign.validation.dss import DocumentSecurityStore

    rp, _ = await integrator(stack, endpoints, None)
    api = KysoApi(endpoints)
    await api.login(who.phone, PASSWORD)
    try:
        _, info = await rp.csc("credentials/info", {"credentialID": who.certificate_id, "certificates": "single"})
        cert = ax509.Certificate.load(base64.b64decode(info["cert"]["certificates"][0]))
        ext = signers.ExternalSigner(cert, None, signature_value=bytes(80))  # type: ignore[arg-type]
        meta = signers.PdfSignatureMetadata(
            field_name="Portal1", subfilter=fields.SigSeedSubFilter.PADES, md_algorithm="sha256"
        )
        w = IncrementalPdfFileWriter(io.BytesIO(minimal_pdf()))
        digest, _, out = await signers.PdfSigner(meta, signer=ext).async_digest_doc_for_signing(w, bytes_reserved=20000)
        handle = await rp.authorize(who.certificate_id, [digest.document_digest], "Ký hợp đồng PDF")
        await sms_confirm(api, who, handle)
        sad = await rp.wait_for_sad(handle)
        body = {
            "credentialID": who.certificate_id,
            "SAD": sad,
            "documentDigests": [
                {
                    "hashes": [base64.b64encode(digest.document_digest).decode()],
                    "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1",
                    "signature_format": "P",
                    "conformance_level": "Ades-B-LT",
                    "signAlgo": "1.2.840.10045.4.3.2",
                }
            ],
            "returnValidationInfo": True,
        }
        status, signed = await rp.csc("signatures/signDoc", body)
        assert status == 200 and len(signed["SignatureObject"]) == 1
        v = signed["validationInfo"]
        assert v["ocsp"] and v["crl"] and len(v["certificates"]) == 3
        content = cms.ContentInfo.load(base64.b64decode(signed["SignatureObject"][0]))
        await PdfTBSDocument.async_finish_signing(out, digest, content)
        DocumentSecurityStore.add_dss(
            out,
            content.dump(),
            certs=[ax509.Certificate.load(base64.b64decode(c)) for c in v["certificates"]],
            ocsps=[ocsp.OCSPResponse.load(base64.b64decode(o)) for o in v["ocsp"]],
            crls=[crl.CertificateList.load(base64.b64decode(c)) for c in v["crl"]],
        )
        check = await validate_pdf(out.getvalue(), endpoints.signing)
        assert check.level == "PAdES B-LT" and "TIMESTAMP_TOKEN<INTACT:TRUSTED>" in check.summaries[0]
        from kyso_client.integrator import CscError

        with pytest.raises(CscError) as replay:  # the digest was spent
            await rp.csc("signatures/signDoc", body)
        assert replay.value.status == 400 and replay.value.error == "invalid_request"
        bad = body | {"documentDigests": [body["documentDigests"][0] | {"hashes": ["AAAA"]}]}  # wrong length
        with pytest.raises(CscError) as short:
            await rp.csc("signatures/signDoc", bad)
        assert short.value.status == 400
    finally:
        await rp.aclose()
        await api.aclose()


async def test_a_portal_sends_a_pdf_the_subscriber_signs_and_the_portal_downloads_it_signed(
    stack: Stack, endpoints: Endpoints, who: JourneyResult, tmp_path: Path
) -> None:
    from pyhanko.pdf_utils.writer import PdfFileWriter

    rp, _ = await integrator(stack, endpoints, None)
    api = KysoApi(endpoints)
    await api.login(who.phone, PASSWORD)
    try:
        # bad files first: a clear error each, and the subscriber is asked nothing
        w = PdfFileWriter()
        w.encrypt("owner-secret", "user-secret")
        locked = io.BytesIO()
        w.write(locked)
        for data, status, code in [
            (b"PK\x03\x04 a zip, not a PDF", 422, "not_a_pdf"),
            (locked.getvalue(), 422, "encrypted_pdf"),
            (b"%PDF-1.7\n" + bytes(10 * 1024 * 1024), 413, "pdf_too_large"),
        ]:
            r = await rp.submit_pdf(data, "x.pdf", description="x", user_id=who.account_id)
            assert (r.status_code, r.json()["error"]["code"]) == (status, code)
            assert r.json()["error"]["message_vi"]
        # a 16 MiB body is refused by its Content-Length alone: the answer comes before any of it is sent
        host, port = rp.base.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        writer.write(
            f"POST /v1/signing-requests/pdf HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {rp.token}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {16 * 1024 * 1024}\r\n\r\n".encode()
        )
        await writer.drain()
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
        writer.close()
        assert head.startswith(b"HTTP/1.1 413"), head
        bad_b64 = await rp.http.post(
            f"{rp.base}/v1/signing-requests/pdf",
            json={"description": "x", "label": "x.pdf", "pdf_base64": "%%%not-base64%%%", "user_id": who.account_id},
            headers=rp._auth(),
        )
        assert (bad_b64.status_code, bad_b64.json()["error"]["code"]) == (422, "invalid_base64")
        assert (await api.signing_requests())["requests"] == []

        created = await rp.submit_pdf(
            minimal_pdf(), "hop-dong-thue-nha.pdf", description="Ký hợp đồng thuê nhà", user_id=who.account_id
        )
        assert created.status_code == 202, created.text
        request_id = created.json()["request_id"]
        early = await rp.http.get(f"{rp.base}{created.json()['signed_pdf_url']}", headers=rp._auth())
        assert early.status_code == 409  # not signed yet
        await sms_confirm(api, who, request_id)
        signed = await rp.signed_pdf(request_id)
        assert signed.startswith(minimal_pdf())
        check = await validate_pdf(signed, endpoints.signing)
        assert check.level == "PAdES B-LTA"
        pki = await served(endpoints)
        assert await asyncio.to_thread(ades, signed, pki) == [AdESPassed.OK]
        await asyncio.to_thread(long_term_ok, {"portal": signed}, pki["/pki/ca/root.cer"], tmp_path)
    finally:
        await rp.aclose()
        await api.aclose()
