"""The two PDFs a subscriber keeps, checked by pyHanko's validators with only the CA's own chain and
CRLs (no fetching, hard-fail; and AdES-LTA validation, local data only): the provider-sealed contract
and the acceptance record signed by the subscriber through remote signing (both PAdES B-LTA); one
changed byte breaks each; bad PDFs are refused by name; CSC signDoc for integrators."""

from __future__ import annotations

import asyncio
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from io import BytesIO
from pathlib import Path
from typing import Any

import pytest
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.validation import validate_pdf_signature, validate_pdf_timestamp
from pyhanko.sign.validation.ades import AdESPassed

from ades_check import ades_indications
from kyso_contracts import AcceptanceRecordSigned, ContractSealed, ContractSigned, SignatureCompleted
from kyso_kit.errors import NotFound
from kyso_signing.documents import layout as documents
from kyso_signing.documents import ltv, pades
from kyso_signing.flows.acceptance import ACCEPTANCE_CLIENT

from .test_ca import PIN, issue
from .test_remote_signing import World, sms_code
from .test_signing_rules import ALICE, Signing


@pytest.fixture
async def world(store: Any, clock: Any) -> World:
    s = Signing(store, clock)
    await s.start()
    w = World(s)
    await w.start()
    return w


async def trust_of(world: World) -> ltv.Trust:
    return await world.s.papers.trust()


def validate(pdf: bytes, trust: ltv.Trust) -> dict[str, Any]:
    """Every signature and document timestamp in ``pdf``, validated; what each one was."""
    reader = PdfFileReader(BytesIO(pdf))
    seen: dict[str, Any] = {"signatures": [], "doc_timestamps": 0, "dss": "/DSS" in reader.root}
    for sig in reader.embedded_signatures:
        if sig.sig_object_type == "/DocTimeStamp":
            ts = validate_pdf_timestamp(sig, validation_context=trust.context())
            assert ts.intact and ts.valid and ts.trusted, ts.summary()
            seen["doc_timestamps"] += 1
        else:
            st = validate_pdf_signature(sig, trust.context())
            assert st.bottom_line, st.summary()
            assert st.timestamp_validity is not None and st.timestamp_validity.trusted  # B-T and above
            seen["signatures"].append(st.signing_cert.subject.native["common_name"])
    return seen


def ades(pdf: bytes, trust: ltv.Trust) -> list[Any]:
    """EN 319 102-1 long-term validation, local data only: the CA's two certificates and CRLs."""
    from kyso_signing.pki import keys as pki

    return ades_indications(pdf, pki.der(trust.root), pki.der(trust.issuing), list(trust.crls_der), trust.moment)


def tampered(pdf: bytes) -> bytes:
    """One byte changed inside the first signed range (the original document's body)."""
    i = pdf.index(b"BeVietnamPro") + 2
    return pdf[:i] + bytes([pdf[i] ^ 0x01]) + pdf[i + 1 :]


def fails(pdf: bytes, trust: ltv.Trust) -> bool:
    try:
        reader = PdfFileReader(BytesIO(pdf), strict=False)
        sig = next(s for s in reader.embedded_signatures if s.sig_object_type == "/Sig")
        return not validate_pdf_signature(sig, trust.context()).bottom_line
    except Exception:
        return True


async def sealed_contract(s: Signing, cert: dict[str, Any]) -> bytes:
    """The contract once the provider sealed it (on ContractSigned, after issuance)."""
    [signed] = [e for e in s.store.of_type(ContractSigned) if e.data.certificate_id == cert["_id"]]
    await s.contracts.when_contract_signed_seal(signed)
    return await s.contracts.pdf(ALICE, cert["contract"]["contract_id"], sealed=True)


async def test_the_contract_is_sealed_by_the_provider_as_pades_b_lta(world: World) -> None:
    doc = await issue(world.s)
    contract_id = doc["contract"]["contract_id"]
    consented = await world.s.contracts.pdf(ALICE, contract_id, sealed=False)
    with pytest.raises(NotFound):  # issuance did not wait for the seal
        await world.s.contracts.pdf(ALICE, contract_id, sealed=True)
    sealed = await sealed_contract(world.s, doc)
    assert sealed.startswith(consented)  # an incremental update of exactly the bytes consented to
    [signed] = world.s.store.of_type(ContractSigned)
    await world.s.contracts.when_contract_signed_seal(signed)  # delivered again: sealed once
    [done] = world.s.store.of_type(ContractSealed)
    after = await world.s.contracts.certs.get(doc["_id"])
    assert after is not None and done.causationid == signed.id and done.data.level == "PAdES-B-LTA"
    assert done.data.contract_sha256 == signed.data.contract_sha256 == doc["contract"]["sha256"]
    assert done.data.sealed_contract_sha256 == after["contract"]["sealed_sha256"] == documents.sha256_hex(sealed)
    view = await world.s.contracts.for_order(ALICE, doc["order_id"])
    assert view.sealed_sha256 == done.data.sealed_contract_sha256 and view.sealed_pdf_url
    trust = await trust_of(world)
    seen = await asyncio.to_thread(validate, sealed, trust)
    assert seen["signatures"] == ["kyso test Contract Seal"] or seen["signatures"][0].endswith("Contract Seal")
    assert seen["dss"] and seen["doc_timestamps"] == 1  # LT: validation data; LTA: a document timestamp
    assert await asyncio.to_thread(ades, sealed, trust) == [AdESPassed.OK]
    assert await asyncio.to_thread(fails, tampered(sealed), trust)


async def test_the_acceptance_record_is_signed_through_remote_signing_as_pades_b_lt(world: World) -> None:
    cert = await issue(world.s)
    remote, acceptance = world.s.remote, world.s.acceptance
    record = await world.s.activation.acceptance_record(ALICE, cert["_id"])
    request = await remote.of_subscriber(ALICE, record.signing_request_id or "")
    assert request["client_id"] == ACCEPTANCE_CLIENT.client_id and request["pades"]
    with pytest.raises(Exception, match="not found"):  # nothing signed before the subscriber confirms
        await acceptance.file(ALICE, cert["_id"], signed=True)
    await remote.when_sms_otp_verified_record(sms_code(world, request))
    await remote.confirm(ALICE, request["_id"], PIN)
    [completed] = [e for e in world.s.store.of_type(SignatureCompleted) if e.data.request_id == request["_id"]]
    await acceptance.when_signature_completed_finish(completed)
    await acceptance.when_signature_completed_finish(completed)  # delivered twice: finished once
    [finished] = world.s.store.of_type(AcceptanceRecordSigned)
    signed = await acceptance.file(ALICE, cert["_id"], signed=True)
    unsigned = await acceptance.file(ALICE, cert["_id"], signed=False)
    assert finished.data.acceptance_record_sha256 == record.sha256
    assert finished.data.level == "PAdES-B-LTA"
    view = await world.s.activation.acceptance_record(ALICE, cert["_id"])
    assert view.signed and view.signed_sha256 == finished.data.signed_pdf_sha256
    assert signed.startswith(unsigned)  # the record exactly as drawn up, then the signature
    trust = await trust_of(world)
    seen = await asyncio.to_thread(validate, signed, trust)
    assert seen["signatures"] == ["Nguyễn Thị Bình"] and seen["dss"] and seen["doc_timestamps"] == 1
    assert await asyncio.to_thread(ades, signed, trust) == [AdESPassed.OK]
    assert await asyncio.to_thread(fails, tampered(signed), trust)
    from kyso_kit.errors import Conflict

    with pytest.raises(Conflict):  # signed: nothing more to ask
        await acceptance.ask(ALICE, cert["_id"])


@pytest.mark.parametrize(
    ("data", "code"),
    [
        (b"hello, this is not a PDF", "not_a_pdf"),
        (b"%PDF-1.7\n" + b"garbage " * 40, "damaged_pdf"),
        (b"%PDF-1.7\n" + b"0" * (pades.MAX_PDF_BYTES + 1), "pdf_too_large"),
    ],
)
def test_bad_pdfs_are_refused_by_name(data: bytes, code: str) -> None:
    with pytest.raises(pades.BadPdf) as e:
        pades.check_pdf(data)
    assert e.value.code == code and e.value.vi and e.value.en


def test_an_encrypted_pdf_is_refused() -> None:
    from pyhanko.pdf_utils.writer import PdfFileWriter

    w = PdfFileWriter()
    w.encrypt("owner-secret", "user-secret")
    out = BytesIO()
    w.write(out)
    with pytest.raises(pades.BadPdf) as e:
        pades.check_pdf(out.getvalue())
    assert e.value.code == "encrypted_pdf"


@pytest.mark.skipif(shutil.which("pdftoppm") is None, reason="poppler-utils (deploy/bootstrap.sh installs it)")
async def test_pdftoppm_renders_the_first_page_of_both_pdfs(world: World, tmp_path: Path) -> None:
    cert = await issue(world.s)
    files = {
        "contract": await sealed_contract(world.s, cert),
        "acceptance": await world.s.acceptance.file(ALICE, cert["_id"], signed=False),
    }
    for name, data in files.items():
        (tmp_path / f"{name}.pdf").write_bytes(data)
        await asyncio.to_thread(
            subprocess.run,
            ["pdftoppm", "-r", "50", "-png", "-f", "1", "-l", "1", "-singlefile", f"{name}.pdf", name],
            cwd=tmp_path,
            check=True,
            timeout=60,
        )
        png = (tmp_path / f"{name}.png").read_bytes()
        assert png.startswith(b"\x89PNG") and len(png) > 5000


# --------------------------------------------------------------------------- CSC signatures/signDoc


class Integrator:
    """An integrator's side of signDoc, with pyHanko only: prepare the PDF, send its digest, embed the
    CMS that comes back, add the returned validation data to the DSS."""

    def __init__(self, pdf: bytes) -> None:
        self.pdf = pdf
        self.prepared: Any = None

    def prepare(self, cert_doc: dict[str, Any]) -> list[bytes]:
        from asn1crypto import x509 as ax509
        from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
        from pyhanko.sign import fields, signers

        cert = ax509.Certificate.load(ltv.asn1(pki_cert(cert_doc)).dump())
        ext = signers.ExternalSigner(cert, None, signature_value=bytes(80))  # type: ignore[arg-type]
        meta = signers.PdfSignatureMetadata(
            field_name="Integrator1", subfilter=fields.SigSeedSubFilter.PADES, md_algorithm="sha256"
        )

        async def run() -> Any:
            w = IncrementalPdfFileWriter(BytesIO(self.pdf))
            return await signers.PdfSigner(meta, signer=ext).async_digest_doc_for_signing(w, bytes_reserved=20000)

        with ThreadPoolExecutor(1) as pool:  # called from a coroutine: pyHanko gets a loop of its own
            self.prepared = pool.submit(lambda: asyncio.run(run())).result()
        return [self.prepared[0].document_digest]

    async def finish(self, signature_object_b64: str, info: dict[str, Any] | None) -> bytes:
        import base64

        from asn1crypto import cms, crl, ocsp
        from asn1crypto import x509 as ax509
        from pyhanko.sign.signers.pdf_signer import PdfTBSDocument
        from pyhanko.sign.validation.dss import DocumentSecurityStore

        digest, _, out = self.prepared
        content = cms.ContentInfo.load(base64.b64decode(signature_object_b64))
        await PdfTBSDocument.async_finish_signing(out, digest, content)
        if info:
            DocumentSecurityStore.add_dss(
                out,
                content.dump(),
                certs=[ax509.Certificate.load(base64.b64decode(c)) for c in info["certificates"]],
                ocsps=[ocsp.OCSPResponse.load(base64.b64decode(o)) for o in info["ocsp"]],
                crls=[crl.CertificateList.load(base64.b64decode(c)) for c in info["crl"]],
            )
        return bytes(out.getvalue())


def pki_cert(doc: dict[str, Any]) -> Any:
    from kyso_signing.pki import keys as pki

    return pki.load_certificate(doc["certificate"]["certificate_pem"])


@pytest.mark.parametrize("level", ["Ades-B-B", "Ades-B-T", "Ades-B-LT"])
async def test_csc_sign_doc_returns_a_pades_cms_an_integrator_embeds(world: World, level: str) -> None:
    import base64

    from kyso_signing.documents import layout as documents
    from kyso_signing.remote import csc_wire

    from .test_remote_signing import authorised

    who = {"full_name": "Lê Văn Ánh", "citizen_id": "001190000123", "date_of_birth": "1990-01-01"}
    order = {"order_id": "o", "package_code": "P", "validity_years": 1, "amount_vnd": 1, "subscriber": who}
    integrator = Integrator(
        documents.service_contract("e" * 32, "Cổng hợp đồng điện tử", order, world.s.clock.now()).pdf
    )
    client, cert, raw, sad = await authorised(world, prepare=integrator.prepare)
    b64 = base64.b64encode(raw[0]).decode()

    def body(**kw: Any) -> csc_wire.SignDocIn:
        d = {"hashes": [b64], "hashAlgorithmOID": "2.16.840.1.101.3.4.2.1", "signature_format": "P",
             "conformance_level": level, "signAlgo": "1.2.840.10045.4.3.2"} | kw  # fmt: skip
        return csc_wire.SignDocIn(credentialID=cert["_id"], SAD=sad, documentDigests=[csc_wire.DocumentDigestsIn(**d)])

    for bad, why in [
        ({"signature_format": "C"}, "signature_format"),
        ({"conformance_level": "Ades-B-LTA"}, "conformance_level"),
        ({"hashes": [b64[:-8]]}, "hashes"),  # a digest of the wrong length
        ({"hashes": [base64.b64encode(bytes(32)).decode()]}, "not authorized"),
        ({"hashAlgorithmOID": "2.16.840.1.101.3.4.2.3"}, "hashAlgorithmOID"),
    ]:
        with pytest.raises(csc_wire.CscError, match=why):
            await world.csc.sign_doc(client, body(**bad))
    with pytest.raises(csc_wire.CscError, match="documentDigests"):
        await world.csc.sign_doc(client, body().model_copy(update={"documents": [{"document": "JVBERi0="}]}))
    out = await world.csc.sign_doc(client, body())
    with pytest.raises(csc_wire.CscError, match="not authorized"):  # each authorised digest signs once
        await world.csc.sign_doc(client, body())
    assert (level == "Ades-B-LT") == ("validationInfo" in out)
    signed = await integrator.finish(out["SignatureObject"][0], out.get("validationInfo"))
    trust = await trust_of(world)
    reader = PdfFileReader(BytesIO(signed))
    [sig] = reader.embedded_signatures
    status = await asyncio.to_thread(validate_pdf_signature, sig, trust.context())
    assert status.bottom_line, status.summary()
    assert (status.timestamp_validity is not None) == (level != "Ades-B-B")
    if level == "Ades-B-LT":
        assert "/DSS" in reader.root
    assert await asyncio.to_thread(fails, tampered(signed), trust)


# --------------------------------------------------------------------------- a relying party's own PDF


def encrypted_pdf() -> bytes:
    from pyhanko.pdf_utils.writer import PdfFileWriter

    w = PdfFileWriter()
    w.encrypt("owner-secret", "user-secret")
    out = BytesIO()
    w.write(out)
    return out.getvalue()


@pytest.mark.parametrize("level", ["B-B", "B-T", "B-LT", "B-LTA"])
async def test_a_relying_partys_pdf_is_signed_to_the_level_it_asks(world: World, level: str) -> None:
    from kyso_kit.errors import Conflict
    from kyso_signing.documents import layout as documents

    cert = await issue(world.s)
    client, _ = await world.relying_party()
    who = {"full_name": "Trần Văn Bảo", "citizen_id": "001190000999", "date_of_birth": "1991-02-03"}
    order = {"order_id": "x", "package_code": "P", "validity_years": 1, "amount_vnd": 1, "subscriber": who}
    pdf = documents.service_contract("f" * 32, "Cổng hợp đồng", order, world.s.clock.now()).pdf
    req = await world.s.pdfs.submit(
        client, pdf, label="hop-dong-thue-nha.pdf", description="Ký hợp đồng thuê nhà", level=level,
        reason=None, account_id=ALICE.account_id, certificate_id=None, client_address=None,
    )  # fmt: skip
    assert req["pades"] and req["pdf"]["level"] == level and req["certificate_id"] == cert["_id"]
    with pytest.raises(Conflict):  # nothing to download before the subscriber signs
        await world.s.pdfs.signed_pdf(client, req["_id"])
    await world.s.remote.when_sms_otp_verified_record(sms_code(world, req))
    await world.s.remote.confirm(ALICE, req["_id"], PIN)
    signed = await world.s.pdfs.signed_pdf(client, req["_id"])
    assert signed.startswith(pdf) and await world.s.pdfs.signed_pdf(client, req["_id"]) == signed  # finished once
    trust = await trust_of(world)
    reader = PdfFileReader(BytesIO(signed))
    sig = next(s for s in reader.embedded_signatures if s.sig_object_type == "/Sig")
    status = await asyncio.to_thread(validate_pdf_signature, sig, trust.context())
    assert status.bottom_line, status.summary()
    assert (status.timestamp_validity is not None) == (level != "B-B")
    assert ("/DSS" in reader.root) == (level in ("B-LT", "B-LTA"))
    assert len(reader.embedded_signatures) == (2 if level == "B-LTA" else 1)
    if level == "B-LTA":
        assert await asyncio.to_thread(ades, signed, trust) == [AdESPassed.OK]
    assert await asyncio.to_thread(fails, tampered(signed), trust)


@pytest.mark.parametrize(
    ("data", "error", "code"),
    [
        (b"<html>not a pdf</html>", "Invalid", "not_a_pdf"),
        (b"%PDF-1.7\n" + b"broken " * 30, "Invalid", "damaged_pdf"),
        (None, "Invalid", "encrypted_pdf"),
        (b"%PDF-1.7\n" + bytes(pades.MAX_PDF_BYTES), "TooLarge", "pdf_too_large"),
    ],
)
async def test_a_bad_pdf_is_refused_and_nothing_is_asked(
    world: World, data: bytes | None, error: str, code: str
) -> None:
    from kyso_contracts import SignatureRequested
    from kyso_kit import errors

    await issue(world.s)
    client, _ = await world.relying_party()
    before = len(world.s.store.of_type(SignatureRequested))
    with pytest.raises(getattr(errors, error)) as refused:
        await world.s.pdfs.submit(
            client, data if data is not None else encrypted_pdf(), label="x.pdf", description="x", level="B-LTA",
            reason=None, account_id=ALICE.account_id, certificate_id=None, client_address=None,
        )  # fmt: skip
    assert refused.value.code == code and refused.value.message_vi
    assert len(world.s.store.of_type(SignatureRequested)) == before  # the subscriber is asked nothing


async def test_stored_files_are_read_back_from_memory_within_a_bound(
    world: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    from kyso_signing.documents import files as papers_module

    monkeypatch.setattr(papers_module, "RECENT_FILES_BYTES", 2500)
    p = world.s.papers
    shas = [await p.put(bytes([i]) * 1000, "test", "acct") for i in range(3)]
    reads = 0
    real_get = p.files.get

    async def counting_get(doc_id: Any) -> Any:
        nonlocal reads
        reads += 1
        return await real_get(doc_id)

    monkeypatch.setattr(p.files, "get", counting_get)
    assert await p.get(shas[2]) == bytes([2]) * 1000 and reads == 0  # just stored: from memory
    assert await p.get(shas[0]) == bytes([0]) * 1000 and reads == 1  # evicted (2,500 bytes kept): stored copy
    assert p._recent_bytes <= 2500
    with pytest.raises(LookupError):
        await p.get("0" * 64)


@pytest.mark.parametrize("name", ["Nguyễn Thị Ánh Tuyết", "Công ty TNHH Thương mại Dịch vụ Số Hóa Đơn Điện Tử"])
async def test_the_running_line_widths_lay_out_byte_identical_pdfs(world: World, name: str) -> None:
    from datetime import UTC, datetime

    from kyso_signing.documents import fpdf_fix

    cert = await issue(world.s)
    order = {**cert["order"], "subscriber": {**cert["order"]["subscriber"], "full_name": name}}
    at = datetime(2026, 11, 28, 9, 30, tzinfo=UTC)
    made = {}
    try:
        for fast in (True, False):
            fpdf_fix.fast_line_widths(fast)
            made[fast] = (
                documents.service_contract("c" * 32, "kyso", order, at).pdf,
                documents.acceptance_record(cert["_id"], cert["certificate"], "kyso", at).pdf,
            )
    finally:
        fpdf_fix.fast_line_widths(True)
    assert made[True] == made[False]
