"""Remote signing: a relying party asks, the subscriber alone authorises (SCAL2), kyso signs.

1. A relying party submits 1–50 documents (a label and a digest each) for a subscriber; the request
   is bound to one certificate and waits 5 minutes for the subscriber (``SignatureRequested``).
2. In the kyso app the subscriber sees the description, labels and digests and verifies a one-time
   code computed over the digest of exactly these documents — a SmartOTP transaction code or an SMS
   code bound to it — at the otp service, which announces it (``SmartOtpTransactionVerified`` /
   ``SmsOtpVerified``); the code never reaches this service. Then the subscriber confirms with the
   signing PIN, which unseals the key once for the whole batch. Or rejects.
3. Each digest is signed; the request becomes ``signed`` with the signatures in input order and an
   evidence record (``SignatureCompleted``). Unconfirmed requests expire (``SignatureExpired``).

The signing PIN: every try is counted *before* the argon2id work (a compare-and-set on the
certificate), five wrong in a row lock the credential with no reset by time, a right one clears the
count. A relying party only ever sees "waiting", "signed", "rejected" or "expired".

For the CSC API the same request carries a SAD once confirmed: server-side state (its SHA-256 is the
lookup key) bound to the subscriber, the credential, the client and the exact digests; each digest
is consumed once, by a guarded write, so concurrent uses of one SAD sign each digest exactly once.
The key is unsealed only at confirmation, so every authorised digest is signed then — and those
signatures are kept only in the SAD's own record, which ``signHash`` alone reads: never on the
request (its status shows no signatures), never in its webhook. They are destroyed when the SAD
expires or the certificate's status changes (suspension, revocation, expiry), and a SAD is bound
to the certificate's ``revision``, so one issued before a suspension never signs after resumption.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import secrets
import uuid
from datetime import timedelta
from typing import Any

from kyso_contracts import (
    SignatureCompleted,
    SignatureExpired,
    SignatureRejected,
    SignatureRequested,
    SignedDocument,
)
from kyso_kit.auth import Principal, ensure_may
from kyso_kit.changes import Changes
from kyso_kit.clock import Clock
from kyso_kit.crypto import SecretBox, off_loop
from kyso_kit.errors import Conflict, Invalid, not_found
from kyso_kit.store import Doc, Store
from kyso_kit.timeutil import as_utc
from kyso_signing.credentials.custody import KeyCustody
from kyso_signing.credentials.domain import CertificateStatus as S
from kyso_signing.credentials.errors import not_in_force
from kyso_signing.credentials.records import certificates, is_issued, issued
from kyso_signing.pki import cms, signer
from kyso_signing.pki import keys as pki
from kyso_signing.pki.keys import KeyAlgorithm
from kyso_signing.remote.clients import Client
from kyso_signing.remote.codes import OneTimeCodes
from kyso_signing.remote.domain import (
    EXPIRED,
    REJECTED,
    SIGNED,
    WAITING,
    Document,
    checked_documents,
    documents_digest,
    wrong_state,
)
from kyso_signing.remote.sads import SAD_TTL, SadRecords

log = logging.getLogger(__name__)

REQUEST_TTL = timedelta(minutes=5)
OTP_WAIT_SECONDS = 5.0


class RemoteSigning(OneTimeCodes, SadRecords):
    def __init__(
        self,
        store: Store,
        custody: KeyCustody,
        box: SecretBox,
        clock: Clock,
        changes: Changes | None = None,
        otp_wait_seconds: float = OTP_WAIT_SECONDS,
    ) -> None:
        self.otp_wait_seconds = otp_wait_seconds
        self.requests = store.collection("signing_requests", events=True)
        self.certs = certificates(store)
        self.sads = store.collection("sads")
        self.events = store.events
        self.custody = custody
        self.box = box  # seals the SAD on its request
        self.clock = clock
        self.changes = changes or Changes()

    async def init(self) -> None:
        await self.requests.ensure_index([("status", 1)])
        await self.requests.ensure_index([("account_id", 1)])
        await self.requests.ensure_index([("sad_sha256", 1)], unique=True, sparse=True)
        await self.sads.ensure_index([("live", 1)], sparse=True)
        await self.sads.ensure_index([("certificate_id", 1)])

    # ------------------------------------------------------------------ 1. a relying party asks

    async def credential(self, account_id: str | None, certificate_id: str | None) -> Doc:
        if certificate_id:
            cert = await issued(self.certs, certificate_id, account_id)
            if cert is None:
                raise not_found("credential", "chứng thư số")
            return cert
        if not account_id:
            raise Invalid(
                "subscriber_required", "Name the subscriber or the credential", "Cần mã thuê bao hoặc chứng thư"
            )
        mine = [d for d in await self.certs.find({"account_id": account_id}) if is_issued(d)]
        active = [d for d in mine if d["status"] == S.ACTIVE]
        if not active:
            raise not_found("credential", "chứng thư số") if not mine else not_in_force()
        return max(active, key=lambda d: as_utc(d["certificate"]["not_before"]))

    async def submit(
        self,
        client: Client,
        documents: list[Document],
        *,
        description: str,
        account_id: str | None = None,
        certificate_id: str | None = None,
        client_address: str | None = None,
        csc: dict[str, Any] | None = None,
        pades: bool = False,
        extra: dict[str, Any] | None = None,
    ) -> Doc:
        """``pades``: each digest is a PDF byte-range digest, and what the key signs is the PAdES signed
        attributes over it (``pki.cms.signed_attributes``), not the digest itself."""
        docs, raw = checked_documents(documents)
        cert = await self.credential(account_id, certificate_id)
        if cert["status"] != S.ACTIVE:
            raise not_in_force()
        t = self.clock.now()
        request_id = uuid.uuid4().hex
        digest = documents_digest(raw)
        requested = SignatureRequested(
            request_id=request_id,
            client_id=client.client_id,
            account_id=cert["account_id"],
            certificate_id=cert["_id"],
            description=description,
            documents=[SignedDocument(**d) for d in docs],
            documents_digest=digest,
            requested_at=t,
            expires_at=t + REQUEST_TTL,
        )
        doc: Doc = {
            "_id": request_id,
            "client_id": client.client_id,
            "client_name": client.name,
            "account_id": cert["account_id"],
            "certificate_id": cert["_id"],
            "serial_number": cert["serial_number"],
            "key_algorithm": cert["certificate"].get("key_algorithm", KeyAlgorithm.ECDSA_P256.value),
            "description": description,
            "documents": docs,
            "documents_digest": digest,
            "status": WAITING,
            "created_at": t,
            "expires_at": t + REQUEST_TTL,
            "client_address": client_address,
        }
        if csc is not None:
            doc["csc"] = csc
        if pades:
            doc["pades"] = True
        doc |= extra or {}
        await self.requests.insert(doc, events=[requested])
        return doc

    async def of_client(self, client: Client, request_id: str) -> Doc:
        doc = await self.requests.get(request_id)
        if doc is None or doc["client_id"] != client.client_id:
            raise not_found("signing_request", "yêu cầu ký")  # another client's request does not exist for it
        return doc

    # ------------------------------------------------------------------ 2. the subscriber, in the app

    async def pending(self, who: Principal) -> list[Doc]:
        now = self.clock.now()
        docs = await self.requests.find({"account_id": who.account_id})
        waiting = [d for d in docs if d["status"] == WAITING and as_utc(d["expires_at"]) > now]
        return sorted(waiting, key=lambda d: as_utc(d["created_at"]))

    async def of_subscriber(self, who: Principal, request_id: str) -> Doc:
        doc = await self.requests.get(request_id)
        if doc is None:
            raise not_found("signing_request", "yêu cầu ký")
        ensure_may(who, doc["account_id"], "read")
        return doc

    async def reject(self, who: Principal, request_id: str) -> Doc:
        doc = await self.of_subscriber(who, request_id)
        ensure_may(who, doc["account_id"], "sign")
        if doc["status"] != WAITING:
            raise wrong_state(doc)
        t = self.clock.now()
        rejected = SignatureRejected(
            request_id=doc["_id"],
            client_id=doc["client_id"],
            account_id=doc["account_id"],
            certificate_id=doc["certificate_id"],
            rejected_at=t,
        )
        moved = await self.requests.update_and_get(
            {"_id": doc["_id"], "status": WAITING}, {"$set": {"status": REJECTED, "rejected_at": t}}, events=[rejected]
        )
        if moved is None:
            raise wrong_state(await self.of_subscriber(who, request_id))
        return moved

    # ------------------------------------------------------------------ 3. confirmation and signatures

    async def confirm(self, who: Principal, request_id: str, pin: str, app_address: str | None = None) -> Doc:
        doc = await self.of_subscriber(who, request_id)
        ensure_may(who, doc["account_id"], "sign")  # sole control: only the subscriber, never an operator
        if doc["status"] != WAITING:
            raise wrong_state(doc)
        if as_utc(doc["expires_at"]) <= self.clock.now():
            raise Conflict("request_expired", "The signing request expired", "Yêu cầu ký đã hết hạn")
        if "otp" not in doc:  # the otp service's announcement may still be on its way
            doc = await self.changes.read_when(
                request_id, lambda: self.of_subscriber(who, request_id), lambda d: "otp" in d, self.otp_wait_seconds
            )
        if "otp" not in doc:
            raise Conflict(
                "otp_required",
                "Verify a one-time code bound to these documents first (SmartOTP or SMS)",
                "Vui lòng xác thực mã OTP gắn với các tài liệu này trước",
            )
        cert = await self.certs.get(doc["certificate_id"])
        if cert is None:
            raise not_in_force()
        key = await self.custody.unseal(cert, pin)  # once for the whole batch
        hashes = [signer.HASHES[d["hash_algorithm"]] for d in doc["documents"]]
        raw = [base64.b64decode(d["hash_b64"]) for d in doc["documents"]]

        # signDoc may ask for PAdES signatures over the same authorised digests
        also_pades = "csc" in doc and all(h.name == "sha256" for h in hashes)
        certificate = (
            pki.load_certificate(cert["certificate"]["certificate_pem"]) if doc.get("pades") or also_pades else None
        )
        sha256 = signer.HASHES["sha256"]

        def sign_all() -> list[bytes]:
            over = [cms.to_be_signed(r, certificate) for r in raw] if certificate and doc.get("pades") else raw
            sigs = [signer.sign_digest(key, r, h) for r, h in zip(over, hashes, strict=True)]
            if certificate is not None and also_pades:
                sigs += [signer.sign_digest(key, cms.to_be_signed(r, certificate), sha256) for r in raw]
            return sigs

        signatures = await off_loop(sign_all)
        pades_signatures = signatures[len(raw) :]
        signatures = signatures[: len(raw)]
        t = self.clock.now()
        algorithm = signer.signature_algorithm(KeyAlgorithm(doc["key_algorithm"]), hashes[0])
        sigs_b64 = [base64.b64encode(s).decode() for s in signatures]
        completed = SignatureCompleted(
            request_id=doc["_id"],
            client_id=doc["client_id"],
            account_id=doc["account_id"],
            certificate_id=doc["certificate_id"],
            serial_number=doc["serial_number"],
            signature_algorithm=algorithm,
            documents=[SignedDocument(**d) for d in doc["documents"]],
            signatures_b64=[] if "csc" in doc else sigs_b64,  # a CSC SAD's signatures never go on a topic
            confirmed_with=doc["otp"]["method"],
            signed_at=t,
        )
        update: dict[str, Any] = {
            "status": SIGNED,
            "signatures_b64": sigs_b64,
            "signature_algorithms": [signer.signature_algorithm(KeyAlgorithm(doc["key_algorithm"]), h) for h in hashes],
            "signed_at": t,
            "evidence": {
                "account_id": doc["account_id"],
                "identity_assurance": "VNeID level 2",
                "citizen_id": (cert.get("order") or {}).get("subscriber", {}).get("citizen_id"),
                "certificate_serial": doc["serial_number"],
                "pin_verified": True,
                "otp": doc["otp"],
                "client_id": doc["client_id"],
                "client_address": doc.get("client_address"),
                "app_address": app_address,
                "signed_at": t,
            },
        }
        if "csc" in doc:  # the signatures go to the SAD's record only (written first: see record_sad)
            sad = secrets.token_urlsafe(32)
            sad_sha256 = hashlib.sha256(sad.encode()).hexdigest()
            await self.record_sad(
                sad_sha256, doc, cert, sigs_b64, [base64.b64encode(p).decode() for p in pades_signatures], t
            )
            del update["signatures_b64"]
            update |= {
                "sad_sha256": sad_sha256,
                "csc.sad_sealed": self.box.seal(sad.encode(), aad=f"sad:{doc['_id']}"),
                "csc.sad_expires_at": t + SAD_TTL,
            }
        moved = await self.requests.update_and_get(
            {"_id": doc["_id"], "status": WAITING}, {"$set": update}, events=[completed]
        )
        if moved is None:
            raise wrong_state(await self.of_subscriber(who, request_id))
        return moved

    async def expire_due(self) -> int:
        """Unconfirmed requests past their time expire (counted); SADs past theirs end too."""
        await self.end_due_sads()
        now, n = self.clock.now(), 0
        for doc in await self.requests.find({"status": WAITING}):
            if as_utc(doc["expires_at"]) > now:
                continue
            expired = SignatureExpired(
                request_id=doc["_id"],
                client_id=doc["client_id"],
                account_id=doc["account_id"],
                certificate_id=doc["certificate_id"],
                expired_at=as_utc(doc["expires_at"]),
            )
            n += await self.requests.update(
                {"_id": doc["_id"], "status": WAITING}, {"$set": {"status": EXPIRED}}, events=[expired]
            )
        return n
