"""The files a subscriber keeps: the service contract (sealed by the provider after consent) and the
acceptance record (signed by the subscriber with the new certificate).

Files are content-addressed: a file's ``_id`` is its SHA-256, so writing one twice is harmless, two
deliveries racing each store their own bytes, and a record can only ever point at exactly the bytes
whose hash it holds. A file is stored *before* any record points at it. Being immutable (and never
deleted), the files this process stored or read lately are kept in memory too: each journey reads its
contract and prepared record back (50–90 KB each) right after storing them.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import os
import uuid
from collections import OrderedDict
from datetime import datetime
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from kyso_contracts import AcceptanceRecordSigned, CloudEvent, SignatureCompleted
from kyso_kit.auth import Principal, ensure_may
from kyso_kit.clock import Clock
from kyso_kit.crypto import off_loop
from kyso_kit.errors import Conflict, Invalid, TooLarge, not_found
from kyso_kit.store import Doc, DuplicateKey, Store

from . import documents, pades, pki
from .authority import Authority
from .clients import Client
from .crl import RevocationLists
from .domain import CertificateStatus as S
from .ocsp import Responder
from .remote import SIGNED, Document, RemoteSigning, not_in_force, wrong_state
from .tsa import TimestampAuthority

ACCEPTANCE_CLIENT = Client("kyso-acceptance", "kyso — Biên bản nghiệm thu / acceptance record")
ACCEPTANCE_FIELD = "KysoAcceptance"
PDF = "application/pdf"
RECENT_FILES_BYTES = 32 * 1024 * 1024
OCSP_NONCE_BYTES = 16

log = logging.getLogger(__name__)


class Papers:
    def __init__(
        self,
        store: Store,
        authority: Authority,
        crls: RevocationLists,
        stamper: TimestampAuthority,
        clock: Clock,
        provider_name: str,
        responder: Responder,
    ) -> None:
        self.files = store.collection("documents")
        self.authority = authority
        self.crls = crls
        self.responder = responder
        self.stamper = stamper
        self.clock = clock
        self.provider_name = provider_name
        self._recent: OrderedDict[str, bytes] = OrderedDict()
        self._recent_bytes = 0

    def _remember(self, sha256: str, data: bytes) -> None:
        if sha256 in self._recent:
            self._recent.move_to_end(sha256)
            return
        self._recent[sha256] = data
        self._recent_bytes += len(data)
        while self._recent_bytes > RECENT_FILES_BYTES:
            _, dropped = self._recent.popitem(last=False)
            self._recent_bytes -= len(dropped)

    async def put(self, pdf: bytes, kind: str, account_id: str) -> str:
        sha = documents.sha256_hex(pdf)
        try:
            await self.files.insert(
                {"_id": sha, "kind": kind, "account_id": account_id, "media_type": PDF, "bytes": pdf,
                 "size": len(pdf), "created_at": self.clock.now()}
            )  # fmt: skip
        except DuplicateKey:
            pass  # the very same bytes are stored already
        self._remember(sha, pdf)  # only once stored: a cached file is always a stored one
        return sha

    async def get(self, sha256: str) -> bytes:
        if (data := self._recent.get(sha256)) is not None:
            self._recent.move_to_end(sha256)
            return data
        doc = await self.files.get(sha256)
        if doc is None:
            raise LookupError(f"file {sha256} is not stored")  # a record never points at a missing file
        data = bytes(doc["bytes"])
        self._remember(sha256, data)
        return data

    async def trust(self) -> pades.Trust:
        """The chain and the CRLs the CA publishes (a due CRL is published first: never one past its nextUpdate)."""
        crls = await self.crls.evidence()
        return pades.Trust(self.authority.root_certificate, self.authority.ca_certificate, crls, self.clock.now())

    def timestamper(self) -> pades.LocalTimeStamper:
        return pades.LocalTimeStamper(self.stamper)

    async def with_status(self, trust: pades.Trust, signature_cms: bytes) -> pades.Trust:
        """``trust`` and an OCSP answer made now for each end-entity certificate of a long-term signature
        whose timestamped CMS is made: the signer's and the TSA's (which also makes a B-LTA's document
        timestamp). Each is issued after the certificate it covers, which the CRLs need not be (they are
        not published on issuance), and after the signature timestamp. A nonce makes each answer a new
        one, not one cached before the signature; an answer the responder cannot give is left out, and
        the CRL covers that certificate instead."""
        certs = {pki.der(c): c for c in [*pades.end_entities(signature_cms, trust), self.authority.tsa_certificate]}
        answers = []
        for cert in certs.values():
            request = (
                ocsp.OCSPRequestBuilder()
                .add_certificate(cert, trust.issuing, hashes.SHA256())
                .add_extension(x509.OCSPNonce(os.urandom(OCSP_NONCE_BYTES)), critical=False)
                .build()
                .public_bytes(serialization.Encoding.DER)
            )
            answer = await self.responder.respond(request)
            if ocsp.load_der_ocsp_response(answer.der).response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
                log.warning("no OCSP answer to embed", extra={"serial": pki.serial_hex(cert.serial_number)})
                continue
            answers.append(answer.der)
        return dataclasses.replace(trust, ocsps_der=tuple(answers))

    async def _to_level(self, prepared: pades.Prepared, signature_cms: bytes, trust: pades.Trust, level: str) -> bytes:
        if level in pades.LONG_TERM:
            trust = await self.with_status(trust, signature_cms)
        return await off_loop(pades.to_level, prepared, signature_cms, trust, self.timestamper(), level)

    async def prepare(self, pdf: bytes, cert_pem: str, field: str, reason: str) -> dict[str, Any]:
        """Add ``cert``'s signature placeholder to ``pdf`` and store the result; what a record keeps to
        finish it once the subscriber's signature is there."""
        trust = await self.trust()
        cert = pki.load_certificate(cert_pem)
        prepared = await off_loop(pades.prepare, pdf, cert, trust, field, reason)
        sha = await self.put(prepared.pdf, "prepared", "")
        return {
            "prepared_sha256": sha,
            "document_digest_b64": base64.b64encode(prepared.document_digest).decode(),
            "byte_range": [prepared.start, prepared.end],
        }

    async def complete(
        self, info: dict[str, Any], signature_b64: str, cert_pem: str, level: str, kind: str, account_id: str
    ) -> tuple[bytes, str]:
        """The prepared PDF ``info`` names, signed with ``signature_b64`` (over the PAdES signed attributes),
        to ``level`` (B-B … B-LTA), and stored: its bytes and SHA-256."""
        start, end = info["byte_range"]
        prepared = pades.Prepared(
            await self.get(info["prepared_sha256"]), base64.b64decode(info["document_digest_b64"]), start, end
        )
        if level not in pades.LEVELS:
            raise ValueError(f"unknown PAdES level {level}")
        trust = await self.trust()
        cert = pki.load_certificate(cert_pem)
        signature = base64.b64decode(signature_b64)
        stamper = None if level == "B-B" else self.timestamper()
        signature_cms = await off_loop(pades.cms, prepared.document_digest, signature, cert, trust, stamper)
        signed = await self._to_level(prepared, signature_cms, trust, level)
        return signed, await self.put(signed, kind, account_id)

    async def seal(self, pdf: bytes, reason: str) -> bytes:
        """The provider's seal over ``pdf``: PAdES B-LTA."""
        trust = await self.trust()
        a = self.authority
        prepared, signature_cms = await off_loop(
            pades.seal_signature, pdf, a.seal_key, a.seal_certificate, trust, self.stamper, reason
        )
        return await self._to_level(prepared, signature_cms, trust, "B-LTA")


def _acceptance_label(cert: dict[str, Any]) -> str:
    return f"Biên bản nghiệm thu / Acceptance record — {cert['serial_number'][:16]}"


class Acceptance:
    """The acceptance record goes through remote signing like any relying party's document: kyso asks,
    the subscriber confirms in the app (one-time code + signing PIN), then the PDF is completed (B-LTA)."""

    def __init__(self, store: Store, papers: Papers, remote: RemoteSigning, clock: Clock) -> None:
        self.certs = store.collection("certificates", events=True)
        self.events = store.events
        self.papers = papers
        self.remote = remote
        self.clock = clock

    async def draw_up(self, doc: Doc, at: datetime) -> tuple[bytes, dict[str, Any]]:
        """Render and store the record and its prepared (placeholder) version: the record's bytes, and
        what the certificate keeps."""
        record = await off_loop(
            documents.acceptance_record, doc["_id"], doc["certificate"], self.papers.provider_name, at
        )
        await self.papers.put(record.pdf, "acceptance-record", doc["account_id"])
        prepared = await self.papers.prepare(
            record.pdf,
            doc["certificate"]["certificate_pem"],
            ACCEPTANCE_FIELD,
            "Nghiệm thu dịch vụ / Service acceptance",
        )
        return record.pdf, {"sha256": record.sha256, "text": record.text, "at": at} | prepared

    async def ask(self, who: Principal | None, certificate_id: str) -> Doc:
        """Ask the subscriber to sign the record (again, if an earlier request expired or was rejected)."""
        doc = await self.certs.get(certificate_id)
        if doc is None or "certificate" not in doc:
            raise not_found("certificate", "chứng thư số")
        if who is not None:
            ensure_may(who, doc["account_id"], "sign")
        rec = doc.get("acceptance") or {}
        if "prepared_sha256" not in rec:
            raise Conflict("not_activated", "Activate the certificate first", "Vui lòng kích hoạt chứng thư số trước")
        if "signed_sha256" in rec:
            raise Conflict("already_signed", "The acceptance record is signed", "Biên bản nghiệm thu đã được ký")
        if doc["status"] != S.ACTIVE:
            raise Conflict("credential_not_active", "The certificate is not active", "Chứng thư số không hoạt động")
        req = await self.remote.submit(
            ACCEPTANCE_CLIENT,
            [Document(_acceptance_label(doc["certificate"]), rec["document_digest_b64"], "sha256")],
            description="Ký biên bản nghiệm thu dịch vụ chứng thư số / Sign the service acceptance record",
            certificate_id=doc["_id"],
            pades=True,
        )
        await self.certs.update({"_id": doc["_id"]}, {"$set": {"acceptance.request_id": req["_id"]}})
        return req

    async def when_signature_completed_finish(self, event: CloudEvent[SignatureCompleted]) -> None:
        e = event.data
        if e.client_id != ACCEPTANCE_CLIENT.client_id:
            return
        doc = await self.certs.get(e.certificate_id)
        if doc is None:
            return
        rec = doc.get("acceptance") or {}
        if "signed_sha256" in rec or rec.get("document_digest_b64") != e.documents[0].hash_b64:
            return  # finished already, or a request for an older draft
        _, sha = await self.papers.complete(
            rec,
            e.signatures_b64[0],
            doc["certificate"]["certificate_pem"],
            "B-LTA",
            "acceptance-record-signed",
            doc["account_id"],
        )
        t = self.clock.now()
        finished = AcceptanceRecordSigned(
            certificate_id=doc["_id"],
            order_id=doc["order_id"],
            account_id=doc["account_id"],
            serial_number=doc["certificate"]["serial_number"],
            request_id=e.request_id,
            acceptance_record_sha256=rec["sha256"],
            signed_pdf_sha256=sha,
            level="PAdES-B-LTA",
            signed_at=t,
        )
        await self.certs.update(
            {"_id": doc["_id"], "acceptance.signed_sha256": {"$exists": False}},
            {
                "$set": {
                    "acceptance.signed_sha256": sha,
                    "acceptance.signed_at": t,
                    "acceptance.request_id": e.request_id,
                }
            },
            events=[self.events(finished, causation_id=event.id)],
        )

    async def file(self, who: Principal, certificate_id: str, signed: bool) -> bytes:
        doc = await self.certs.get(certificate_id)
        if doc is None or "certificate" not in doc:
            raise not_found("certificate", "chứng thư số")
        ensure_may(who, doc["account_id"], "read")
        rec = doc.get("acceptance") or {}
        sha = rec.get("signed_sha256") if signed else rec.get("sha256")
        if not sha:
            raise not_found("acceptance_record", "biên bản nghiệm thu")
        return await self.papers.get(sha)


class PdfRequests:
    """A relying party's own PDF, signed through remote signing (SmartCA's "sign a file"): kyso adds the
    signature field, the subscriber confirms the byte-range digest in the app, kyso completes the PDF
    to the PAdES level asked for, and the relying party downloads it."""

    def __init__(self, store: Store, papers: Papers, remote: RemoteSigning, clock: Clock) -> None:
        self.requests = store.collection("signing_requests", events=True)
        self.certs = store.collection("certificates", events=True)
        self.papers = papers
        self.remote = remote
        self.clock = clock

    async def submit(
        self,
        client: Client,
        pdf: bytes,
        *,
        label: str,
        description: str,
        level: str,
        reason: str | None,
        account_id: str | None,
        certificate_id: str | None,
        client_address: str | None,
    ) -> Doc:
        try:
            pades.check_pdf(pdf)
        except pades.BadPdf as exc:
            raise (TooLarge if exc.code == "pdf_too_large" else Invalid)(exc.code, exc.en, exc.vi) from None
        cert = await self.remote.credential(account_id, certificate_id)
        if cert["status"] != S.ACTIVE:
            raise not_in_force()  # before any work on the file
        field = f"Kyso-{uuid.uuid4().hex[:12]}"
        try:
            info = await self.papers.prepare(pdf, cert["certificate"]["certificate_pem"], field, reason or description)
        except pades.BadPdf as exc:
            raise Invalid(exc.code, exc.en, exc.vi) from None
        return await self.remote.submit(
            client,
            [Document(label, info["document_digest_b64"], "sha256")],
            description=description,
            certificate_id=cert["_id"],
            client_address=client_address,
            pades=True,
            extra={"pdf": info | {"level": level, "field": field, "size": len(pdf)}},
        )

    async def signed_pdf(self, client: Client, request_id: str) -> bytes:
        doc = await self.remote.of_client(client, request_id)
        if "pdf" not in doc:
            raise not_found("pdf", "tệp PDF")  # a request of digests only
        if doc["status"] != SIGNED:
            raise wrong_state(doc)
        return await self.finish(doc)

    async def finish(self, doc: Doc) -> bytes:
        """The signed PDF of a signed request: completed once (later calls read the stored file)."""
        info = doc["pdf"]
        if "signed_sha256" in info:
            return await self.papers.get(info["signed_sha256"])
        cert = await self.certs.get(doc["certificate_id"])
        if cert is None:
            raise not_found("credential", "chứng thư số")
        signed, sha = await self.papers.complete(
            info,
            doc["signatures_b64"][0],
            cert["certificate"]["certificate_pem"],
            info["level"],
            "signed-pdf",
            doc["account_id"],
        )
        if not await self.requests.update(
            {"_id": doc["_id"], "pdf.signed_sha256": {"$exists": False}},
            {"$set": {"pdf.signed_sha256": sha, "pdf.finished_at": self.clock.now()}},
        ):
            again = await self.requests.get(doc["_id"])  # finished meanwhile by another call: theirs counts
            if again is not None and "signed_sha256" in again.get("pdf", {}):
                return await self.papers.get(again["pdf"]["signed_sha256"])
        return signed

    async def when_signature_completed_finish(self, event: CloudEvent[SignatureCompleted]) -> None:
        doc = await self.requests.get(event.data.request_id)
        if doc is not None and "pdf" in doc and doc["status"] == SIGNED:
            await self.finish(doc)
