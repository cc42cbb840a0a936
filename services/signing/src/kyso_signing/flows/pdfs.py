"""A relying party's own PDF, signed through remote signing and completed to the PAdES level asked for."""

from __future__ import annotations

import uuid

from kyso_contracts import CloudEvent, SignatureCompleted
from kyso_kit.clock import Clock
from kyso_kit.errors import Invalid, TooLarge, not_found
from kyso_kit.store import Doc, Store
from kyso_signing.credentials.domain import CertificateStatus as S
from kyso_signing.credentials.errors import not_in_force
from kyso_signing.credentials.records import certificates
from kyso_signing.documents import pades
from kyso_signing.documents.files import Papers
from kyso_signing.remote.clients import Client
from kyso_signing.remote.domain import SIGNED, Document, wrong_state
from kyso_signing.remote.requests import RemoteSigning


class PdfRequests:
    """A relying party's own PDF, signed through remote signing (SmartCA's "sign a file"): kyso adds the
    signature field, the subscriber confirms the byte-range digest in the app, kyso completes the PDF
    to the PAdES level asked for, and the relying party downloads it."""

    def __init__(self, store: Store, papers: Papers, remote: RemoteSigning, clock: Clock) -> None:
        self.requests = store.collection("signing_requests", events=True)
        self.certs = certificates(store)
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
