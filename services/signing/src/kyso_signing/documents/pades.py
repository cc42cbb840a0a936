"""PAdES signatures with pyHanko (ETSI EN 319 142-1): the provider's seal on service contracts
(B-LTA) and the subscriber's signature on the acceptance record, completed from a signature the
subscriber confirmed through remote signing (B-LTA too: B-LT, then a document timestamp).

Everything an offline validator needs travels in the PDF: the signature timestamp from kyso's own
RFC 3161 authority (asked in-process, through the same request/response code as ``/tsa``), and in
the document security store the chain and revocation data issued *after* each certificate it covers
(ETSI EN 319 102-1 as the EU DSS library applies it refuses older data: "the revocation data has been
issued before the certificate's issuance time"). An end-entity certificate (the signer's, the TSA's)
is covered by an OCSP answer made when the signature is completed (``Trust.ocsps_der``); only when
there is none, by the issuing CA's CRL, which is published on status changes and when due, not on
issuance, so it predates a certificate issued since. The issuing CA is covered by the root's ARL.
Validation data is never fetched: a ``ValidationContext`` here only ever holds what the CA itself
publishes.

A remotely confirmed PAdES signature is split in two. ``pki.cms.signed_attributes`` builds the CMS
signed attributes for a document digest (content type, message digest, ESS signing-certificate-v2 — no
signing time, as PAdES wants it in the signature dictionary); they depend only on the digest and the
certificate, so the digest the subscriber's key signs, SHA-256 of their DER, can be computed when the
request is confirmed and the CMS assembled any time later (``cms``).
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from io import BytesIO

from asn1crypto import algos, tsp
from asn1crypto import cms as acms
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign import fields, signers
from pyhanko.sign.general import SigningError
from pyhanko.sign.signers.pdf_byterange import PreparedByteRangeDigest
from pyhanko.sign.signers.pdf_signer import PdfTBSDocument
from pyhanko.sign.timestamps import TimeStamper
from pyhanko.sign.validation import dss

from kyso_signing.documents.ltv import Trust, asn1, chain_of, revocation_data
from kyso_signing.pki import keys as pki
from kyso_signing.pki import signer
from kyso_signing.pki.cms import signed_attributes, to_be_signed
from kyso_signing.pki.tsa import TimestampAuthority

MAX_PDF_BYTES = 10 * 1024 * 1024


class _NoFetchingNotice(logging.Filter):
    """pyHanko warns on every B-LT/B-LTA signature that fetching is off; here that is the design."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "fetching is not allowed" not in record.getMessage()


logging.getLogger("pyhanko.sign.signers.pdf_signer").addFilter(_NoFetchingNotice())
LOCATION = "Việt Nam"


class LocalTimeStamper(TimeStamper):  # type: ignore[misc]
    """pyHanko's timestamp client, answered by kyso's own TSA in this process (RFC 3161 DER both ways)."""

    def __init__(self, tsa: TimestampAuthority) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self.tsa = tsa

    async def async_request_tsa_response(self, req: tsp.TimeStampReq) -> tsp.TimeStampResp:
        return tsp.TimeStampResp.load(self.tsa.respond(req.dump()))


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
LONG_TERM = ("B-LT", "B-LTA")


def complete(
    prepared: Prepared, signature: bytes, cert: x509.Certificate, trust: Trust, stamper: TimeStamper, level: str
) -> bytes:
    """A prepared PDF and the subscriber's signature over its signed attributes, to a PAdES ``level``:
    B-B (the CMS only), B-T (+ signature timestamp), B-LT (+ validation data), B-LTA (+ document timestamp).
    In one go: the OCSP answers for B-LT/B-LTA must be in ``trust`` already (``Papers`` asks for them
    between ``cms`` and ``to_level`` instead, so that they postdate the signature timestamp)."""
    if level not in LEVELS:
        raise ValueError(f"unknown PAdES level {level}")
    signed = cms(prepared.document_digest, signature, cert, trust, None if level == "B-B" else stamper)
    return to_level(prepared, signed, trust, stamper, level)


def to_level(prepared: Prepared, signature_cms: bytes, trust: Trust, stamper: TimeStamper, level: str) -> bytes:
    """The signature's CMS (with its timestamp from B-T on) into the prepared PDF, and for B-LT/B-LTA the
    validation data (with ``trust.ocsps_der``) and for B-LTA a document timestamp."""
    if level not in LEVELS:
        raise ValueError(f"unknown PAdES level {level}")
    if level not in LONG_TERM:
        return embed(prepared, signature_cms)
    return finish(prepared, signature_cms, trust, stamper if level == "B-LTA" else None)


def embed(prepared: Prepared, signature_cms: bytes) -> bytes:
    """Put the CMS into the placeholder."""
    out = BytesIO(prepared.pdf)
    digest = PreparedByteRangeDigest(prepared.document_digest, prepared.start, prepared.end)
    asyncio.run(PdfTBSDocument.async_finish_signing(out, digest, acms.ContentInfo.load(signature_cms)))
    return out.getvalue()


SEAL_FIELD = "KysoProviderSeal"
TIMESTAMP_RESERVED_HEX = 8192
"""Room for a document timestamp token, in hex digits: 4 KiB, three times what ours takes (1.4 KB)."""


def finish(prepared: Prepared, signature_cms: bytes, trust: Trust, timestamper: TimeStamper | None = None) -> bytes:
    """Put the CMS into the placeholder, then add the validation data (DSS): PAdES B-LT; with a
    ``timestamper``, then a document timestamp over it all (and its own validation data): B-LTA.
    The document timestamp is kyso's TSA too, covered by the same revocation data; pyHanko embeds all
    that the context it is given holds, so it is given just that."""
    signed = embed(prepared, signature_cms)
    chain = chain_of(signature_cms, trust)
    ocsps, crls = revocation_data(chain, trust)

    async def run() -> bytes:
        lt = BytesIO(signed)
        dss.DocumentSecurityStore.add_dss(lt, None, certs=chain, ocsps=ocsps, crls=crls)
        if timestamper is None:
            return lt.getvalue()
        stamper = signers.PdfTimeStamper(timestamper)
        for reserved in (TIMESTAMP_RESERVED_HEX, None):  # a fixed room spares the dry run; else let it size
            lta = BytesIO()
            try:
                await stamper.async_timestamp_pdf(
                    IncrementalPdfFileWriter(BytesIO(lt.getvalue()), strict=False),
                    "sha256",
                    validation_context=trust.context(crls=crls, ocsps=ocsps),
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


def seal_signature(
    pdf: bytes, key: pki.PrivateKey, cert: x509.Certificate, trust: Trust, tsa: TimestampAuthority, reason: str
) -> tuple[Prepared, bytes]:
    """The provider's seal up to its timestamped CMS: the same steps as a subscriber's remote signature
    (placeholder, signed attributes, CMS with signature timestamp), the key being the provider's own."""
    prepared = prepare(pdf, cert, trust, SEAL_FIELD, reason)
    signature = signer.sign_digest(key, to_be_signed(prepared.document_digest, cert), signer.HASHES["sha256"])
    return prepared, cms(prepared.document_digest, signature, cert, trust, LocalTimeStamper(tsa))


def seal(
    pdf: bytes, key: pki.PrivateKey, cert: x509.Certificate, trust: Trust, tsa: TimestampAuthority, reason: str
) -> bytes:
    """The provider's seal: PAdES B-LTA — signature timestamp, validation data, document timestamp (OCSP
    answers, if any, in ``trust`` already; ``Papers.seal`` asks for them once the CMS is made)."""
    prepared, signature_cms = seal_signature(pdf, key, cert, trust, tsa, reason)
    return to_level(prepared, signature_cms, trust, LocalTimeStamper(tsa), "B-LTA")
