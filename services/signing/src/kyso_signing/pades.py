"""PAdES signatures with pyHanko (ETSI EN 319 142-1): the provider's seal on service contracts
(B-LTA) and the subscriber's signature on the acceptance record, completed from a signature the
subscriber confirmed through remote signing (B-LTA too: B-LT, then a document timestamp).

Everything an offline validator needs travels in the PDF: the signature timestamp from kyso's own
RFC 3161 authority (asked in-process, through the same request/response code as ``/tsa``), and in
the document security store the chain and the CA's current CRLs (the issuing CA's CRL covers every
end-entity certificate, the root's ARL the issuing CA). Validation data is never fetched: a
``ValidationContext`` here only ever holds what the CA itself publishes.

A remotely confirmed PAdES signature is split in two. ``signed_attributes`` builds the CMS signed
attributes for a document digest (content type, message digest, ESS signing-certificate-v2 — no
signing time, as PAdES wants it in the signature dictionary); they depend only on the digest and the
certificate, so the digest the subscriber's key signs, SHA-256 of their DER, can be computed when the
request is confirmed and the CMS assembled any time later (``cms``).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from io import BytesIO
from typing import Any

from asn1crypto import algos, core, tsp
from asn1crypto import cms as acms
from asn1crypto import crl as acrl
from asn1crypto import x509 as ax509
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.general import SigningError
from pyhanko.sign.signers.pdf_byterange import PreparedByteRangeDigest
from pyhanko.sign.signers.pdf_signer import PdfTBSDocument
from pyhanko.sign.timestamps import TimeStamper
from pyhanko.sign.validation import dss
from pyhanko_certvalidator import ValidationContext
from pyhanko_certvalidator.registry import SimpleCertificateStore

from . import pki, signer
from .asn1_fix import apply as _fix_asn1crypto
from .tsa import TimestampAuthority

_fix_asn1crypto()  # see asn1_fix: otherwise some signatures take seconds

MAX_PDF_BYTES = 10 * 1024 * 1024


class _NoFetchingNotice(logging.Filter):
    """pyHanko warns on every B-LT/B-LTA signature that fetching is off; here that is the design."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "fetching is not allowed" not in record.getMessage()


logging.getLogger("pyhanko.sign.signers.pdf_signer").addFilter(_NoFetchingNotice())
LOCATION = "Việt Nam"


def asn1(cert: x509.Certificate) -> ax509.Certificate:
    return ax509.Certificate.load(cert.public_bytes(serialization.Encoding.DER))


class LocalTimeStamper(TimeStamper):  # type: ignore[misc]
    """pyHanko's timestamp client, answered by kyso's own TSA in this process (RFC 3161 DER both ways)."""

    def __init__(self, tsa: TimestampAuthority) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.tsa = tsa

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        return tsp.TimeStampResp.load(self.tsa.respond(req.dump()))


@dataclass(frozen=True)
class Trust:
    """What the CA publishes right now: its two certificates and its two current CRLs."""

    root: x509.Certificate
    issuing: x509.Certificate
    crls_der: tuple[bytes, ...]
    moment: datetime | None = None  # "now" for path validation (the service clock)

    def context(self) -> ValidationContext:
        """A fresh validation context (they cache what they learn) with local data only, hard-fail."""
        return ValidationContext(
            trust_roots=[asn1(self.root)],
            other_certs=[asn1(self.issuing)],
            crls=list(self.crls_der),
            allow_fetching=False,
            revocation_mode="hard-fail",
            moment=self.moment,
        )

    def registry(self) -> SimpleCertificateStore:
        store: SimpleCertificateStore = SimpleCertificateStore.from_certs(  # type: ignore[no-untyped-call]
            [asn1(self.issuing), asn1(self.root)]
        )
        return store


class BadPdf(ValueError):
    """Bytes that are not a PDF we can sign: not a PDF, encrypted, damaged or too large."""

    def __init__(self, code: str, en: str, vi: str) -> None:
        super().__init__(en)
        self.code, self.en, self.vi = code, en, vi


def check_pdf(data: bytes) -> PdfFileReader:
    """A PDF we can sign: under the size limit, starting with ``%PDF-``, parseable, not encrypted."""
    if len(data) > MAX_PDF_BYTES:
        raise BadPdf("pdf_too_large", f"A PDF is at most {MAX_PDF_BYTES} bytes", "Tệp PDF tối đa 10 MB")
    if not data.lstrip(b"\x00\t\n\r ")[:5] == b"%PDF-":
        raise BadPdf("not_a_pdf", "This is not a PDF file", "Đây không phải tệp PDF")
    try:
        reader = PdfFileReader(BytesIO(data), strict=False)
        encrypted = reader.encrypted
        _ = reader.root["/Pages"]
    except Exception as exc:  # whatever the bytes make the parser do, they are not a PDF we can sign
        raise BadPdf("damaged_pdf", f"The PDF cannot be read: {type(exc).__name__}", "Không đọc được tệp PDF") from None
    if encrypted:
        raise BadPdf("encrypted_pdf", "The PDF is encrypted; send it unprotected", "Tệp PDF đã được mã hóa")
    return reader


def mechanism(cert: x509.Certificate) -> algos.SignedDigestAlgorithm:
    if isinstance(cert.public_key(), rsa.RSAPublicKey):
        params = algos.RSASSAPSSParams.load(signer.pss_params(signer.HASHES["sha256"]))
        return algos.SignedDigestAlgorithm({"algorithm": "rsassa_pss", "parameters": params})
    return algos.SignedDigestAlgorithm({"algorithm": "sha256_ecdsa"})


def _external(cert: x509.Certificate, trust: Trust, signature: bytes) -> signers.ExternalSigner:
    return signers.ExternalSigner(
        signing_cert=asn1(cert),
        cert_registry=trust.registry(),
        signature_value=signature,
        signature_mechanism=mechanism(cert),
    )


def _placeholder(cert: x509.Certificate) -> bytes:
    key = cert.public_key()
    return bytes(key.key_size // 8 if isinstance(key, rsa.RSAPublicKey) else 2 * 66 + 9)


@lru_cache(maxsize=256)
def _signing_certificate_attribute(der: bytes) -> bytes:
    """ESS signing-certificate-v2 (RFC 5035) naming the certificate ``der``, encoded once per certificate."""
    ac = ax509.Certificate.load(der)
    ess = tsp.SigningCertificateV2(
        {
            "certs": [
                tsp.ESSCertIDv2(
                    {
                        "hash_algorithm": algos.DigestAlgorithm({"algorithm": "sha256"}),
                        "cert_hash": hashlib.sha256(der).digest(),
                        "issuer_serial": tsp.IssuerSerial(
                            {
                                "issuer": [ax509.GeneralName(name="directory_name", value=ac.issuer)],
                                "serial_number": ac.serial_number,
                            }
                        ),
                    }
                )
            ]
        }
    )
    out: bytes = acms.CMSAttribute({"type": "signing_certificate_v2", "values": [ess]}).dump()
    return out


def signed_attributes(document_digest: bytes, cert: x509.Certificate) -> bytes:
    """DER of the CMS signed attributes of a PAdES baseline signature (EN 319 142-1 §6.3): content type,
    message digest (the document's SHA-256 byte-range digest), ESS signing-certificate-v2; no signing
    time. They depend only on the digest and the certificate, so they can be rebuilt at any time."""
    ess = acms.CMSAttribute.load(_signing_certificate_attribute(cert.public_bytes(serialization.Encoding.DER)))
    attrs = acms.CMSAttributes(
        [
            acms.CMSAttribute({"type": "content_type", "values": ["data"]}),
            acms.CMSAttribute({"type": "message_digest", "values": [document_digest]}),
            ess,
        ]
    )
    out: bytes = attrs.dump()
    return out


def to_be_signed(document_digest: bytes, cert: x509.Certificate) -> bytes:
    """The digest the subscriber's key signs for a PAdES signature over ``document_digest``."""
    return hashlib.sha256(signed_attributes(document_digest, cert)).digest()


def cms(
    document_digest: bytes,
    signature: bytes,
    cert: x509.Certificate,
    trust: Trust,
    timestamper: TimeStamper | None,
) -> bytes:
    """The CMS SignedData of a PAdES signature: the signed attributes rebuilt for the digest, the
    subscriber's signature over them, and (B-T) a signature timestamp as an unsigned attribute."""
    ext = _external(cert, trust, signature)
    attrs = acms.CMSAttributes.load(signed_attributes(document_digest, cert))

    async def build() -> bytes:
        content = await ext.async_sign_prescribed_attributes("sha256", signed_attrs=attrs, timestamper=timestamper)
        der: bytes = content.dump()
        return der

    return asyncio.run(build())


@dataclass(frozen=True)
class Prepared:
    """A PDF with an empty signature placeholder, and what is needed to fill it later."""

    pdf: bytes
    document_digest: bytes
    start: int
    end: int


def prepare(pdf: bytes, cert: x509.Certificate, trust: Trust, field: str, reason: str) -> Prepared:
    """Add a signature field and placeholder for ``cert``; the byte-range digest is what gets signed."""
    meta = signers.PdfSignatureMetadata(
        field_name=field,
        subfilter=fields.SigSeedSubFilter.PADES,
        md_algorithm="sha256",
        reason=reason,
        location=LOCATION,
    )
    pdf_signer = signers.PdfSigner(meta, signer=_external(cert, trust, _placeholder(cert)))

    async def run() -> Prepared:
        try:
            w = IncrementalPdfFileWriter(BytesIO(pdf), strict=False)
            digest, _, out = await pdf_signer.async_digest_doc_for_signing(w, bytes_reserved=16384)
        except Exception as exc:  # a PDF that parses can still refuse a new field (DocMDP, broken forms)
            raise BadPdf(
                "unsignable_pdf", f"This PDF cannot take a signature: {exc}", "Không thể thêm chữ ký vào tệp PDF này"
            ) from None
        assert isinstance(out, BytesIO)
        return Prepared(
            out.getvalue(), digest.document_digest, digest.reserved_region_start, digest.reserved_region_end
        )

    return asyncio.run(run())


LEVELS = ("B-B", "B-T", "B-LT", "B-LTA")


def complete(
    prepared: Prepared, signature: bytes, cert: x509.Certificate, trust: Trust, stamper: TimeStamper, level: str
) -> bytes:
    """A prepared PDF and the subscriber's signature over its signed attributes, to a PAdES ``level``:
    B-B (the CMS only), B-T (+ signature timestamp), B-LT (+ validation data), B-LTA (+ document timestamp)."""
    if level not in LEVELS:
        raise ValueError(f"unknown PAdES level {level}")
    signed = cms(prepared.document_digest, signature, cert, trust, None if level == "B-B" else stamper)
    if level in ("B-B", "B-T"):
        return embed(prepared, signed)
    return finish(prepared, signed, trust, stamper if level == "B-LTA" else None)


def embed(prepared: Prepared, signature_cms: bytes) -> bytes:
    """Put the CMS into the placeholder."""
    out = BytesIO(prepared.pdf)
    digest = PreparedByteRangeDigest(prepared.document_digest, prepared.start, prepared.end)
    asyncio.run(PdfTBSDocument.async_finish_signing(out, digest, acms.ContentInfo.load(signature_cms)))
    return out.getvalue()


def _chain_of(signature_cms: bytes, trust: Trust) -> list[Any]:
    """The certificates a validator needs for a signature we made: those in its CMS (the signer's), those in
    its signature timestamp token (the TSA's), and the CA's two. We issued all of them, so the CA's CRLs
    cover every one: the DSS is written from what we know, without re-validating our own chain."""
    content = acms.ContentInfo.load(signature_cms)
    certs: dict[bytes, Any] = {}
    signed_data = content["content"]
    for c in signed_data["certificates"]:
        certs[c.chosen.dump()] = c.chosen
    for info in signed_data["signer_infos"]:
        unsigned = info["unsigned_attrs"]
        for attr in [] if isinstance(unsigned, core.Void) else unsigned:
            if attr["type"].native != "signature_time_stamp_token":
                continue
            for token in attr["values"]:
                for c in token["content"]["certificates"]:
                    certs[c.chosen.dump()] = c.chosen
    for c in (trust.issuing, trust.root):
        certs[pki.der(c)] = asn1(c)
    return list(certs.values())


SEAL_FIELD = "KysoProviderSeal"
TIMESTAMP_RESERVED_HEX = 8192
"""Room for a document timestamp token, in hex digits: 4 KiB, three times what ours takes (1.4 KB)."""


def finish(prepared: Prepared, signature_cms: bytes, trust: Trust, timestamper: TimeStamper | None = None) -> bytes:
    """Put the CMS into the placeholder, then add the validation data (DSS): PAdES B-LT; with a
    ``timestamper``, then a document timestamp over it all (and its own validation data): B-LTA."""
    signed = embed(prepared, signature_cms)

    async def run() -> bytes:
        lt = BytesIO(signed)
        dss.DocumentSecurityStore.add_dss(
            lt, None, certs=_chain_of(signature_cms, trust), crls=[acrl.CertificateList.load(c) for c in trust.crls_der]
        )
        if timestamper is None:
            return lt.getvalue()
        stamper = signers.PdfTimeStamper(timestamper)
        for reserved in (TIMESTAMP_RESERVED_HEX, None):  # a fixed room spares the dry run; else let it size
            lta = BytesIO()
            try:
                await stamper.async_timestamp_pdf(
                    IncrementalPdfFileWriter(BytesIO(lt.getvalue()), strict=False),
                    "sha256",
                    validation_context=trust.context(),
                    bytes_reserved=reserved,
                    output=lta,
                )
            except SigningError:
                if reserved is None:
                    raise
                continue
            break
        return lta.getvalue()

    return asyncio.run(run())


def seal(
    pdf: bytes, key: pki.PrivateKey, cert: x509.Certificate, trust: Trust, tsa: TimestampAuthority, reason: str
) -> bytes:
    """The provider's seal: PAdES B-LTA — signature timestamp, validation data, document timestamp. The same
    steps as a subscriber's remote signature (placeholder, signed attributes, CMS, DSS, document timestamp),
    the key being the provider's own."""
    prepared = prepare(pdf, cert, trust, SEAL_FIELD, reason)
    signature = signer.sign_digest(key, to_be_signed(prepared.document_digest, cert), signer.HASHES["sha256"])
    return complete(prepared, signature, cert, trust, LocalTimeStamper(tsa), "B-LTA")
