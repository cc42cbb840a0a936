"""The service contract: numbered once an order is paid, its PDF drawn up when the subscriber first opens it,
consented to with an OTP bound to that PDF's hash, sealed by the provider once consented to."""

from __future__ import annotations

import logging
import uuid
from dataclasses import asdict
from typing import ClassVar

from kyso_contracts import (
    CloudEvent,
    ContractSealed,
    ContractSigned,
    OrderCancelled,
    OrderExpired,
    OrderPlaced,
    OtpPurpose,
    PaymentConfirmed,
    SmsOtpVerified,
)
from kyso_kit.auth import Principal, ensure_may
from kyso_kit.changes import Changes
from kyso_kit.clock import Clock
from kyso_kit.crypto import off_loop
from kyso_kit.errors import not_found
from kyso_kit.store import Doc, Store
from kyso_kit.timeutil import local
from kyso_signing.credentials import domain
from kyso_signing.credentials.domain import CertificateStatus as S
from kyso_signing.credentials.issuance import Issuance
from kyso_signing.credentials.records import certificates
from kyso_signing.credentials.views import ConsentRejection, ContractView
from kyso_signing.documents import layout as documents
from kyso_signing.documents.files import Papers

log = logging.getLogger(__name__)


class Contracts:
    SMS_PURPOSE: ClassVar[OtpPurpose] = OtpPurpose.CONTRACT_CONSENT  # the SMS codes this use case acts on

    def __init__(
        self, store: Store, issuance: Issuance, clock: Clock, papers: Papers, changes: Changes | None = None
    ) -> None:
        self.certs = certificates(store)
        self.changes = changes or Changes()
        self.events = store.events
        self.issuance = issuance
        self.clock = clock
        self.papers = papers

    async def init(self) -> None:
        await self.certs.ensure_index([("order_id", 1)], unique=True)
        await self.certs.ensure_index([("contract_id", 1)], unique=True, sparse=True)

    def _new(self) -> Doc:
        return {"_id": uuid.uuid4().hex, "created_at": self.clock.now(), "status": S.COLLECTING.value}

    async def when_order_placed_remember_order(self, event: CloudEvent[OrderPlaced]) -> None:
        o = event.data
        await self.certs.update(
            {"order_id": o.order_id},
            {"$set": {"order": o.model_dump(mode="json"), "account_id": o.account_id}},
            caused_by=event.id,
            upsert_with=self._new(),
        )
        await self._prepare_if_ready(o.order_id, event.id)

    async def when_payment_confirmed_prepare_contract(self, event: CloudEvent[PaymentConfirmed]) -> None:
        p = event.data
        await self.certs.update(
            {"order_id": p.order_id},
            {"$set": {"paid": True, "payment_id": p.payment_id, "paid_amount_vnd": p.amount_vnd}},
            caused_by=event.id,
            upsert_with=self._new(),
        )
        await self._prepare_if_ready(p.order_id, event.id)

    async def when_order_closed_stop(self, event: CloudEvent[OrderCancelled] | CloudEvent[OrderExpired]) -> None:
        """The order was cancelled or expired: unless its contract was consented to already, nothing is drawn
        up or issued for it (``IssuanceStopped``, on which payment closes the payment and refunds what was
        paid, even a payment that raced the closing). After consent the order is served as consented."""
        o = event.data
        reason: domain.StopReason = "cancelled" if isinstance(o, OrderCancelled) else "order_expired"
        for _ in range(8):
            doc = await self.certs.find_one({"order_id": o.order_id})
            if doc is None:  # closed before this service heard of the order: remember it closed
                new = self._new()
                ref = domain.Ref(certificate_id=new["_id"], order_id=o.order_id, account_id=o.account_id)
                status, stop = domain.stopped(S.COLLECTING, ref, reason, self.clock.now())
                await self.certs.update(
                    {"order_id": o.order_id},
                    {"$set": {"account_id": o.account_id, "closed": True}},
                    caused_by=event.id,
                    upsert_with=new | {"status": status.value},
                    events=[self.events(stop, causation_id=event.id)],
                )
                return
            if S(doc["status"]) not in domain.CANCELLABLE:
                if S(doc["status"]) != S.CANCELLED:
                    log.warning("order closed after consent: served as consented", extra={"order_id": o.order_id})
                return
            status, stop = domain.stopped(S(doc["status"]), domain.Ref.of(doc), reason, self.clock.now())
            if await self.certs.update(
                {"_id": doc["_id"], "status": doc["status"]},
                {"$set": {"status": status.value, "closed": True}},
                events=[self.events(stop, causation_id=event.id)],
            ):
                self.changes.notify(o.order_id)
                return

    async def _prepare_if_ready(self, order_id: str, cause: str) -> None:
        # Order and payment arrive on different topics in either order; the contract is drawn up
        # when both are known, exactly once (the status guard).
        doc = await self.certs.find_one({"order_id": order_id})
        if not doc or doc["status"] != S.COLLECTING or not doc.get("paid") or not doc.get("order"):
            return
        t = self.clock.now()
        status, events = domain.prepared(
            S(doc["status"]),
            domain.Ref.of(doc),
            paid_vnd=doc["paid_amount_vnd"],
            order_vnd=doc["order"]["amount_vnd"],
            payment_id=doc["payment_id"],
            at=t,
        )
        guard = {"_id": doc["_id"], "status": S.COLLECTING.value}
        if status == S.AMOUNT_MISMATCH:
            await self.certs.update(
                guard, {"$set": {"status": status.value}}, events=[self.events(e, causation_id=cause) for e in events]
            )
            log.warning("paid amount differs from order amount", extra={"order_id": order_id, "cause": cause})
            return
        # The contract's number and date are fixed now; its PDF is drawn up when the subscriber first opens
        # it (a burst of payments renders nothing; the consent code binds to the hash of what they saw).
        contract_id = uuid.uuid4().hex
        contract = {"contract_id": contract_id, "prepared_at": t}
        # contract_id also at the top level: an indexed equality lookup when the consent code arrives
        await self.certs.update(
            guard, {"$set": {"status": status.value, "contract": contract, "contract_id": contract_id}}
        )
        self.changes.notify(order_id)

    async def _drawn_up(self, doc: Doc) -> Doc:
        """The certificate's record with its contract PDF drawn up and stored (once: the first to draw it up
        wins, and every later reader gets those bytes). Only a contract that waits for consent is drawn up;
        one closed before anyone opened it never is."""
        c = doc["contract"]
        if "sha256" in c or S(doc["status"]) != S.AWAITING_CONSENT:
            return doc
        rendered = await off_loop(
            documents.service_contract, c["contract_id"], self.papers.provider_name, doc["order"], c["prepared_at"]
        )
        sha = await self.papers.put(rendered.pdf, "contract", doc["account_id"])  # stored before it is pointed at
        after = await self.certs.update_and_get(
            {"_id": doc["_id"], "contract.sha256": {"$exists": False}},
            {"$set": {"contract.sha256": sha, "contract.text": rendered.text}},
        )
        return after or await self.certs.get(doc["_id"]) or doc

    async def for_order(
        self, who: Principal, order_id: str, wait_seconds: float = 0, *, sealed: bool = False
    ) -> ContractView:
        """The order's contract (its PDF drawn up now if nobody opened it before); it exists once the order is
        paid, so a caller may wait up to ``wait_seconds`` for it (or, with ``sealed``, for its sealed copy)."""
        doc = await self.changes.read_when(
            order_id,
            lambda: self.certs.find_one({"order_id": order_id}),
            lambda d: d is not None and "contract" in d and (not sealed or "sealed_sha256" in d["contract"]),
            wait_seconds,
        )
        if doc is None or "contract" not in doc:
            raise not_found("contract", "hợp đồng")
        ensure_may(who, doc["account_id"], "read")
        doc = await self._drawn_up(doc)
        c = doc["contract"]
        if "sha256" not in c:
            raise not_found("contract", "hợp đồng")  # closed before anyone opened it: never drawn up
        base = f"/v1/contracts/{c['contract_id']}/pdf"
        return ContractView(
            certificate_id=doc["_id"],
            order_id=order_id,
            contract_id=c["contract_id"],
            text=c["text"],
            sha256=c["sha256"],
            status=doc["status"],
            signed=S(doc["status"]) in domain.CONTRACT_SIGNED,
            pdf_url=f"{base}?version=unsigned",
            sealed_sha256=c.get("sealed_sha256"),
            sealed_pdf_url=f"{base}?version=sealed" if c.get("sealed_sha256") else None,
            consent_rejections=[
                ConsentRejection(consent_challenge_id=r["challenge_id"], reason=r["reason"], at=local(r["at"]))
                for r in doc.get("consent_rejections", [])
            ],
        )

    async def pdf(self, who: Principal, contract_id: str, sealed: bool) -> bytes:
        doc = await self.certs.find_one({"contract_id": contract_id})
        if doc is None:
            raise not_found("contract", "hợp đồng")
        ensure_may(who, doc["account_id"], "read")
        doc = await self._drawn_up(doc)
        sha = doc["contract"].get("sealed_sha256") if sealed else doc["contract"].get("sha256")
        if not sha:
            raise not_found("sealed_contract", "hợp đồng đã đóng dấu")  # sealed once the subscriber consents
        return await self.papers.get(sha)

    async def when_sms_otp_verified_sign_contract(self, event: CloudEvent[SmsOtpVerified]) -> None:
        e = event.data
        if e.purpose != self.SMS_PURPOSE:
            return
        doc = await self.certs.find_one({"contract_id": e.subject})
        if doc is None:
            raise LookupError(f"no contract {e.subject}")  # not yet prepared here: retried, then dead-lettered
        problem = domain.consent_problem(
            account_id=e.account_id or "",
            owner=doc["account_id"],
            binding=e.binding_sha256,
            contract_sha256=doc["contract"].get("sha256") or "",  # never opened: nothing to consent to
        )
        if problem is not None:
            await self._reject(doc, event, problem)
            return
        await self.issuance.issue_on_consent(doc, event)

    async def when_contract_signed_seal(self, event: CloudEvent[ContractSigned]) -> None:
        """The provider's seal (PAdES B-LTA) over the contract consented to: the subscriber's copy, applied after
        the certificate is issued (issuance does not wait ~25 ms of PDF work for it), once however often the
        event comes. A crash before the seal is stored redelivers the event; sealing twice stores the first."""
        doc = await self.certs.get(event.data.certificate_id)
        if doc is None or "sealed_sha256" in doc["contract"]:
            return
        c = doc["contract"]
        consented = f"Đã giao kết bằng OTP {c['consent_challenge_id']} lúc {local(c['signed_at'])} / consented by OTP"
        sealed = await self.papers.seal(await self.papers.get(c["sha256"]), consented)
        sha = await self.papers.put(sealed, "contract-sealed", doc["account_id"])  # stored before it is pointed at
        t = self.clock.now()
        done = ContractSealed(
            **asdict(domain.Ref.of(doc)),
            contract_id=c["contract_id"],
            contract_sha256=c["sha256"],
            sealed_contract_sha256=sha,
            level="PAdES-B-LTA",
            sealed_at=t,
        )
        if await self.certs.update(
            {"_id": doc["_id"], "contract.sealed_sha256": {"$exists": False}},
            {"$set": {"contract.sealed_sha256": sha, "contract.sealed_at": t}},
            events=[self.events(done, causation_id=event.id)],
        ):
            self.changes.notify(doc["order_id"])

    async def _reject(self, doc: Doc, event: CloudEvent[SmsOtpVerified], reason: str) -> None:
        """The code authorised something else: a visible rejection, the contract still waits for consent."""
        if doc["status"] != S.AWAITING_CONSENT:
            return
        t = self.clock.now()
        _, rejected = domain.consent_rejected(
            S(doc["status"]),
            domain.Ref.of(doc),
            contract_id=event.data.subject,
            challenge_id=event.data.challenge_id,
            reason=reason,
            at=t,
        )
        await self.certs.update(
            {"_id": doc["_id"], "status": S.AWAITING_CONSENT.value},
            {"$push": {"consent_rejections": {"challenge_id": event.data.challenge_id, "reason": reason, "at": t}}},
            events=[rejected],
            caused_by=event.id,
        )
