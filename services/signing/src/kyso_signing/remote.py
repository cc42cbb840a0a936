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
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from cryptography.exceptions import InvalidTag

from kyso_contracts import (
    CloudEvent,
    OtpPurpose,
    SignatureCompleted,
    SignatureExpired,
    SignatureRejected,
    SignatureRequested,
    SignedDocument,
    SmartOtpTransactionVerified,
    SmsOtpVerified,
)
from kyso_contracts.transactions import DocumentsTransaction
from kyso_kit.auth import Principal, ensure_may
from kyso_kit.changes import Changes
from kyso_kit.clock import Clock
from kyso_kit.crypto import SecretBox, off_loop
from kyso_kit.errors import Conflict, Forbidden, Invalid, Rejected, not_found
from kyso_kit.store import Doc, Store
from kyso_kit.timeutil import as_utc

from . import keywrap, pki, signer
from . import pades as pades_mod
from .clients import Client
from .domain import CertificateStatus as S
from .pki import KeyAlgorithm

log = logging.getLogger(__name__)

WAITING, SIGNED, REJECTED, EXPIRED = "waiting_for_user_confirm", "signed", "rejected", "expired"
REQUEST_TTL = timedelta(minutes=5)
SAD_TTL = timedelta(seconds=300)
MAX_DOCUMENTS = 50
PIN_MAX_FAILURES = 5
OTP_WAIT_SECONDS = 5.0
_RACES = 8


@dataclass(frozen=True)
class Document:
    label: str
    hash: str  # base64 or base64url as sent
    hash_algorithm: str  # sha256 | sha384 | sha512


def _documents(docs: list[Document]) -> tuple[list[dict[str, Any]], list[bytes]]:
    if not 1 <= len(docs) <= MAX_DOCUMENTS:
        raise Invalid(
            "too_many_documents",
            f"A request signs 1 to {MAX_DOCUMENTS} documents",
            f"Mỗi yêu cầu ký từ 1 đến {MAX_DOCUMENTS} tài liệu",
        )
    out, raw = [], []
    for d in docs:
        h = signer.HASHES.get(d.hash_algorithm)
        if h is None:
            raise Invalid("unsupported_hash_algorithm", "Use sha256, sha384 or sha512", "Thuật toán băm không hỗ trợ")
        try:
            digest = signer.decode_hash(d.hash, h)
        except ValueError as exc:
            raise Invalid("invalid_hash", f"{d.label}: {exc}", "Giá trị băm không hợp lệ") from None
        raw.append(digest)
        out.append({"label": d.label, "hash_b64": base64.b64encode(digest).decode(), "hash_algorithm": h.name})
    return out, raw


def documents_digest(raw: list[bytes]) -> str:
    """What the transaction-bound OTP is computed over (``kyso_contracts.transactions``)."""
    return DocumentsTransaction(document_hashes=[r.hex() for r in raw]).digest()


def wrong_state(doc: Doc) -> Conflict:
    return Conflict(
        f"request_{doc['status']}",
        f"The signing request is {doc['status'].replace('_', ' ')}",
        "Yêu cầu ký không còn chờ xác nhận",
    )


def not_in_force() -> Conflict:
    return Conflict(
        "credential_not_active",
        "The certificate is not active (not activated, suspended, revoked or expired)",
        "Chứng thư số không ở trạng thái hoạt động",
    )


def pin_locked() -> Forbidden:
    return Forbidden(
        "pin_locked",
        "The signing PIN is locked after 5 wrong tries; unlock it with your password and an SMS code",
        "Mã PIN ký số đã bị khóa sau 5 lần nhập sai; mở khóa bằng mật khẩu và mã OTP SMS",
    )


class RemoteSigning:
    SMS_PURPOSE: ClassVar[OtpPurpose] = OtpPurpose.SIGNATURE_CONFIRMATION  # the SMS codes this use case acts on

    def __init__(
        self,
        store: Store,
        master_key_b64: str,
        clock: Clock,
        changes: Changes | None = None,
        otp_wait_seconds: float = OTP_WAIT_SECONDS,
    ) -> None:
        self.otp_wait_seconds = otp_wait_seconds
        self.requests = store.collection("signing_requests", events=True)
        self.certs = store.collection("certificates", events=True)
        self.sads = store.collection("sads")
        self.events = store.events
        self.master_key = base64.b64decode(master_key_b64)
        self.box = SecretBox(master_key_b64)
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
            cert = await self.certs.get(certificate_id)
            if cert is None or "certificate" not in cert or (account_id and cert["account_id"] != account_id):
                raise not_found("credential", "chứng thư số")
            return cert
        if not account_id:
            raise Invalid(
                "subscriber_required", "Name the subscriber or the credential", "Cần mã thuê bao hoặc chứng thư"
            )
        mine = [d for d in await self.certs.find({"account_id": account_id}) if "certificate" in d]
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
        attributes over it (``pades.signed_attributes``), not the digest itself."""
        docs, raw = _documents(documents)
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

    async def _otp_verified(self, doc: Doc, otp: dict[str, Any], cause: str) -> None:
        if doc["status"] != WAITING or as_utc(doc["expires_at"]) <= self.clock.now():
            return
        done = await self.requests.update(
            {"_id": doc["_id"], "status": WAITING, "otp": {"$exists": False}}, {"$set": {"otp": otp}}, caused_by=cause
        )
        if done:
            self.changes.notify(doc["_id"])

    async def when_sms_otp_verified_record(self, event: CloudEvent[SmsOtpVerified]) -> None:
        e = event.data
        if e.purpose != self.SMS_PURPOSE:
            return
        doc = await self.requests.get(e.subject)
        if doc is None or doc["account_id"] != e.account_id or e.binding_sha256 != doc["documents_digest"]:
            log.warning("an SMS code that confirms no waiting request of its account", extra={"request": e.subject})
            return
        otp = {"method": "sms", "challenge_id": e.challenge_id, "verified_at": e.verified_at}
        await self._otp_verified(doc, otp, event.id)

    async def when_smartotp_verified_record(self, event: CloudEvent[SmartOtpTransactionVerified]) -> None:
        e = event.data
        doc = await self.requests.get(e.reference) if e.reference else None
        if doc is None:  # no reference given: the oldest waiting request of the account with these documents
            now = self.clock.now()
            same = [
                d
                for d in await self.requests.find({"account_id": e.account_id})
                if d["status"] == WAITING
                and d["documents_digest"] == e.transaction_digest
                and as_utc(d["expires_at"]) > now
            ]
            doc = min(same, key=lambda d: as_utc(d["created_at"])) if same else None
        if doc is None or doc["account_id"] != e.account_id or doc["documents_digest"] != e.transaction_digest:
            return  # a transaction code for something else (a payment, another batch)
        otp = {"method": "smartotp", "token_id": e.token_id, "time_step": e.time_step, "verified_at": e.verified_at}
        await self._otp_verified(doc, otp, event.id)

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

    # ------------------------------------------------------------------ the signing PIN

    async def _count_pin_try(self, read: Doc) -> int:
        """Count one PIN try before any hashing; the number of failures *including* this try. ``read`` is
        the certificate as the caller just read it; it is read again only when another try got in first."""
        cert_id, cert = read["_id"], read
        for _ in range(_RACES):
            failures = int(cert.get("pin_failures", 0))
            if failures >= PIN_MAX_FAILURES:
                raise pin_locked()
            guard = {"_id": cert_id, "pin_failures": failures} if "pin_failures" in cert else {
                "_id": cert_id, "pin_failures": {"$exists": False}
            }  # fmt: skip
            if await self.certs.update(guard, {"$set": {"pin_failures": failures + 1}}):
                return failures + 1
            again = await self.certs.get(cert_id)
            if again is None:
                raise not_found("credential", "chứng thư số")
            cert = again
        raise Conflict("busy", "Too many tries at once; try again", "Quá nhiều yêu cầu cùng lúc, vui lòng thử lại")

    async def unseal(self, cert: Doc, pin: str) -> pki.PrivateKey:
        """The subscriber's key, if ``pin`` is right (counted, locked after five wrong in a row)."""
        if cert["status"] != S.ACTIVE or cert.get("key", {}).get("stage") != "pin":
            raise not_in_force()
        tries = await self._count_pin_try(cert)
        owner = f"subscriber:{cert['_id']}"
        try:
            der = await off_loop(keywrap.open_with_pin, self.master_key, pin, owner, cert["key"]["sealed"])
        except InvalidTag:
            left = PIN_MAX_FAILURES - tries
            if left <= 0:
                raise pin_locked() from None
            raise Rejected(
                "wrong_pin",
                f"Wrong signing PIN; {left} tries left before it locks",
                f"Sai mã PIN ký số; còn {left} lần thử trước khi bị khóa",
            ) from None
        await self.certs.update({"_id": cert["_id"], "pin_failures": tries}, {"$set": {"pin_failures": 0}})
        return pki.key_from_der(der, keep=False)

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
        key = await self.unseal(cert, pin)
        hashes = [signer.HASHES[d["hash_algorithm"]] for d in doc["documents"]]
        raw = [base64.b64decode(d["hash_b64"]) for d in doc["documents"]]

        # signDoc may ask for PAdES signatures over the same authorised digests
        also_pades = "csc" in doc and all(h.name == "sha256" for h in hashes)
        certificate = (
            pki.load_certificate(cert["certificate"]["certificate_pem"]) if doc.get("pades") or also_pades else None
        )
        sha256 = signer.HASHES["sha256"]

        def sign_all() -> list[bytes]:
            over = [pades_mod.to_be_signed(r, certificate) for r in raw] if certificate and doc.get("pades") else raw
            sigs = [signer.sign_digest(key, r, h) for r, h in zip(over, hashes, strict=True)]
            if certificate is not None and also_pades:
                sigs += [signer.sign_digest(key, pades_mod.to_be_signed(r, certificate), sha256) for r in raw]
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

    async def record_sad(
        self, sad_sha256: str, doc: Doc, cert: Doc, signatures: list[str], pades_signatures: list[str], at: datetime
    ) -> None:
        """The SAD's own record: what ``signHash`` reads and rewrites (a bitmask of spent digests), keyed
        by the SAD's SHA-256 — and the one place the signatures are kept. It is written *before* the
        request is marked signed: should this process die in between, the request is still waiting
        and the record belongs to a SAD nobody was ever given (the sweep destroys it at expiry)."""
        await self.sads.insert(
            {
                "_id": sad_sha256,
                "request_id": doc["_id"],
                "client_id": doc["client_id"],
                "certificate_id": doc["certificate_id"],
                "certificate_revision": int(cert.get("revision", 0)),
                "key_algorithm": doc["key_algorithm"],
                "hash": doc["documents"][0]["hash_algorithm"],
                "digests": [base64.b64decode(d["hash_b64"]) for d in doc["documents"]],
                "signatures": signatures,
                "pades_signatures": pades_signatures,
                "expires_at": at + SAD_TTL,
                "used": 0,
                "live": True,
            }
        )

    async def end_sad(self, sad: Doc, why: str) -> bool:
        """Destroy a SAD's unused signatures (and the sealed SAD on its request): it can sign no more."""
        done = await self.sads.update(
            {"_id": sad["_id"], "live": True},
            {"$set": {"signatures": [], "pades_signatures": [], "ended": why}, "$unset": {"live": ""}},
        )
        if done:
            await self.requests.update(
                {"_id": sad["request_id"], "sad_sha256": sad["_id"]}, {"$unset": {"csc.sad_sealed": ""}}
            )
        return done

    async def end_sads_of(self, cert: Doc) -> int:
        """The certificate's status changed (``Lifecycle`` calls this after every change): every SAD of
        the credential ends — a suspension, a revocation or an expiry ends them for good, even if the
        certificate is resumed while they would still be within their 300 s."""
        n = 0
        for sad in await self.sads.find({"certificate_id": cert["_id"], "live": True}):
            n += await self.end_sad(sad, f"certificate {cert['status']}")
        return n

    async def end_due_sads(self) -> int:
        """Every second: end the SADs that expired, and those whose certificate changed since they were
        issued (should the process have died before ``end_sads_of`` ran)."""
        now, n = self.clock.now(), 0
        live = await self.sads.find({"live": True})
        certs: dict[str, Doc | None] = {}
        for sad in live:
            if as_utc(sad["expires_at"]) <= now:
                n += await self.end_sad(sad, "expired")
                continue
            cid = sad["certificate_id"]
            if cid not in certs:
                certs[cid] = await self.certs.get(cid, {"status": 1, "revision": 1})
            cert = certs[cid]
            if cert is None or cert["status"] != S.ACTIVE or cert.get("revision", 0) != sad["certificate_revision"]:
                n += await self.end_sad(sad, f"certificate {cert['status'] if cert else 'gone'}")
        return n

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

    def sad_of(self, doc: Doc) -> str | None:
        sealed = (doc.get("csc") or {}).get("sad_sealed")
        return self.box.open(sealed, aad=f"sad:{doc['_id']}").decode() if sealed else None


def expires_in(doc: Doc, now: datetime) -> int:
    return max(0, int((as_utc(doc["csc"]["sad_expires_at"]) - now).total_seconds()))
