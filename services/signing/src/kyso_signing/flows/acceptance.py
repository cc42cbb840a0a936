"""The acceptance record: drawn up when a certificate is activated, signed by the subscriber through
remote signing like any relying party's document, then completed to PAdES B-LTA."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

from kyso_contracts import AcceptanceRecordSigned, CloudEvent, SignatureCompleted
from kyso_kit.auth import Principal
from kyso_kit.clock import Clock
from kyso_kit.crypto import off_loop
from kyso_kit.errors import Conflict, not_found
from kyso_kit.store import Doc, Store
from kyso_signing.credentials.domain import CertificateStatus as S
from kyso_signing.credentials.records import certificates, issued_for
from kyso_signing.documents import layout as documents
from kyso_signing.documents.files import Papers
from kyso_signing.remote.clients import Client
from kyso_signing.remote.domain import Document
from kyso_signing.remote.requests import RemoteSigning

ACCEPTANCE_CLIENT = Client("kyso-acceptance", "kyso — Biên bản nghiệm thu / acceptance record")
ACCEPTANCE_FIELD = "KysoAcceptance"
log = logging.getLogger(__name__)


def _acceptance_label(cert: dict[str, Any]) -> str:
    return f"Biên bản nghiệm thu / Acceptance record — {cert['serial_number'][:16]}"


class Acceptance:
    """The acceptance record goes through remote signing like any relying party's document: kyso asks,
    the subscriber confirms in the app (one-time code + signing PIN), then the PDF is completed (B-LTA)."""

    def __init__(self, store: Store, papers: Papers, remote: RemoteSigning, clock: Clock) -> None:
        self.certs = certificates(store)
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
        doc = await issued_for(self.certs, who, certificate_id, "sign")
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
        doc = await issued_for(self.certs, who, certificate_id, "read")
        rec = doc.get("acceptance") or {}
        sha = rec.get("signed_sha256") if signed else rec.get("sha256")
        if not sha:
            raise not_found("acceptance_record", "biên bản nghiệm thu")
        return await self.papers.get(sha)
