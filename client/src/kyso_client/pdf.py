"""Signing PDFs through kyso's CSC API v2 with pyHanko (pyHanko's own CSC client speaks v1).

pyHanko asks the signer twice: first a dry run to size the signature placeholder — answered locally
with zero bytes of the largest size the key can produce, so the subscriber is asked only once — then
for real: only the digest of the CMS signed attributes leaves this process, the subscriber confirms
it in the kyso app, and ``signatures/signHash`` returns the signature.
"""

from __future__ import annotations

import hashlib
import io
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import httpx
from asn1crypto import algos
from asn1crypto import x509 as asn1_x509
from pyhanko.pdf_utils import generic
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import signers
from pyhanko.sign.validation import async_validate_pdf_signature, async_validate_pdf_timestamp
from pyhanko.sign.validation.pdf_embedded import EmbeddedPdfSignature
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from .integrator import Integrator

ECDSA_SHA256 = "1.2.840.10045.4.3.2"


class KysoCscSigner(signers.Signer):
    def __init__(
        self,
        integrator: Integrator,
        credential_id: str,
        certificate_der: bytes,
        chain_der: list[bytes],
        confirm: Callable[[str], Awaitable[None]],
        description: str = "Ký tài liệu PDF / Sign a PDF",
    ) -> None:
        cert = asn1_x509.Certificate.load(certificate_der)
        super().__init__(
            signing_cert=cert,
            cert_registry=SimpleCertificateStore.from_certs(  # type: ignore[no-untyped-call]
                [asn1_x509.Certificate.load(c) for c in chain_der]
            ),
            signature_mechanism=algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"}),
        )
        self.integrator, self.credential_id = integrator, credential_id
        self.confirm, self.description = confirm, description
        self.calls: list[bool] = []

    async def async_sign_raw(self, data: bytes, digest_algorithm: str, dry_run: bool = False) -> bytes:
        self.calls.append(dry_run)
        if dry_run:
            return bytes(72 + 8)  # a DER ECDSA P-256 signature is at most 72 bytes
        if digest_algorithm != "sha256":
            raise ValueError("this signer uses SHA-256")
        digest = hashlib.sha256(data).digest()
        handle = await self.integrator.authorize(self.credential_id, [digest], self.description)
        await self.confirm(handle)  # the subscriber, in the kyso app
        sad = await self.integrator.wait_for_sad(handle)
        [signature] = await self.integrator.sign_hash(self.credential_id, sad, [digest], ECDSA_SHA256)
        return signature


LEVELS = ("PAdES B-B", "PAdES B-T", "PAdES B-LT", "PAdES B-LTA")


@dataclass(frozen=True)
class PdfCheck:
    """What pyHanko's validator made of a PDF: each signature's signer, status and PAdES level, the
    document timestamps."""

    signers: list[str]
    summaries: list[str]
    document_timestamps: int
    has_dss: bool
    levels: list[str]

    @property
    def level(self) -> str:
        """The level every signature reaches (the lowest of them)."""
        return min(self.levels, key=LEVELS.index)


def _has_signature_timestamp(sig: EmbeddedPdfSignature) -> bool:
    unsigned = sig.signer_info["unsigned_attrs"]
    return any(a["type"].native == "signature_time_stamp_token" for a in unsigned) if unsigned else False


def _dss_revision(reader: PdfFileReader) -> int | None:
    """The revision that introduced a DSS holding validation data (ETSI EN 319 142-1 §5.4), if any."""
    ref = reader.root.raw_get("/DSS") if "/DSS" in reader.root else None
    dss = reader.root["/DSS"] if ref is not None else None
    if dss is None or not any(k in dss for k in ("/Certs", "/CRLs", "/OCSPs", "/VRI")):
        return None
    if isinstance(ref, generic.IndirectObject):
        return int(reader.xrefs.get_introducing_revision(ref.reference))
    return int(reader.xrefs.total_revisions - 1)  # a direct DSS: say the last revision (the weakest claim)


def pades_level(sig: EmbeddedPdfSignature, dss_revision: int | None, doc_timestamp_revisions: list[int]) -> str:
    """What the signature actually carries (ETSI EN 319 142-1 §6.3): B-B; B-T with a signature timestamp;
    B-LT when validation data (a DSS) was added after it; B-LTA when a document timestamp covers that DSS."""
    if not _has_signature_timestamp(sig):
        return LEVELS[0]
    if dss_revision is None or dss_revision <= sig.signed_revision:
        return LEVELS[1]
    if not any(r >= dss_revision for r in doc_timestamp_revisions):
        return LEVELS[2]
    return LEVELS[3]


async def validate_pdf(pdf: bytes, signing_url: str, http: httpx.AsyncClient | None = None) -> PdfCheck:
    """Validate every signature of ``pdf`` with pyHanko, trusting only kyso's root and using only the
    chain and CRLs kyso's PKI endpoints serve (no fetching, hard-fail); raises if any does not validate."""
    own = http is None
    client = http or httpx.AsyncClient()
    try:
        got = {
            p: (await client.get(signing_url + p)).content
            for p in ("/pki/ca/root.cer", "/pki/ca/issuing.cer", "/pki/crl/issuing.crl", "/pki/crl/root.crl")
        }
    finally:
        if own:
            await client.aclose()

    def context() -> ValidationContext:
        return ValidationContext(
            trust_roots=[asn1_x509.Certificate.load(got["/pki/ca/root.cer"])],
            other_certs=[asn1_x509.Certificate.load(got["/pki/ca/issuing.cer"])],
            crls=[got["/pki/crl/issuing.crl"], got["/pki/crl/root.crl"]],
            allow_fetching=False,
            revocation_mode="hard-fail",
        )

    reader = PdfFileReader(io.BytesIO(pdf))
    signers_, summaries, stamps, signatures = [], [], [], []
    for sig in reader.embedded_signatures:
        if sig.sig_object_type == "/DocTimeStamp":
            ts = await async_validate_pdf_timestamp(sig, validation_context=context())
            if not (ts.intact and ts.valid and ts.trusted):
                raise ValueError(f"document timestamp {sig.field_name}: {ts.summary()}")
            stamps.append(sig.signed_revision)
            continue
        st = await async_validate_pdf_signature(sig, context())
        if not st.bottom_line:
            raise ValueError(f"signature {sig.field_name}: {st.summary()}")
        signers_.append(str(st.signing_cert.subject.native.get("common_name")))
        summaries.append(st.summary())
        signatures.append(sig)
    if not signers_:
        raise ValueError("no signature")
    dss = _dss_revision(reader)
    levels = [pades_level(sig, dss, stamps) for sig in signatures]
    return PdfCheck(signers_, summaries, len(stamps), "/DSS" in reader.root, levels)
