"""After issuance: revocation, suspension (certificateHold) and resumption, expiry and renewal.

Every change is one guarded write of the certificate with its event; the CRL is regenerated at once
after it (and by the periodic job should this process die in between), and OCSP answers of the old
status are never reused (they carry the certificate's ``revision``).

A subscriber revokes or suspends with a fresh password *and* an SMS code bound to the digest of the
request statement (the same dynamic linking as the contract consent); an operator acts directly.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, ClassVar

from kyso_contracts import CertActivated, CloudEvent, OtpPurpose, Payload, SmsOtpVerified
from kyso_kit.auth import Principal, ensure_may, ensure_role
from kyso_kit.clock import Clock
from kyso_kit.errors import Conflict, Invalid
from kyso_kit.records import Contended, Decision, decided
from kyso_kit.store import Doc, Store
from kyso_kit.timeutil import as_utc, local
from kyso_signing.credentials import domain
from kyso_signing.credentials.domain import CertificateStatus as S
from kyso_signing.credentials.records import Certificate, certificates, issued_for, repository
from kyso_signing.credentials.refusals import check_allowed
from kyso_signing.credentials.registration import DUE, Registration
from kyso_signing.credentials.views import LifecycleAction, OtpToAsk, RevocationRequestView

log = logging.getLogger(__name__)

REQUEST_TTL = timedelta(minutes=10)
CHANGED_WHILE_READING = 5

Changed = Callable[[Doc], Awaitable[Any]]


def request_statement(doc: Doc, request_id: str, action: str, reason: str, at: datetime) -> bytes:
    """The text the subscriber's SMS code is bound to (its SHA-256)."""
    what = "THU HỒI / REVOKE" if action == "revoke" else "TẠM DỪNG / SUSPEND"
    return "\n".join(
        [
            f"YÊU CẦU {what} CHỨNG THƯ SỐ / CERTIFICATE {action.upper()} REQUEST",
            f"Mã yêu cầu / Request: {request_id}",
            f"Chứng thư / Certificate: {doc['_id']} — serial {doc['serial_number']}",
            f"Chủ thể / Subject: {doc['certificate']['subject_dn']}",
            f"Lý do / Reason: {reason}",
            f"Thời điểm / At: {local(at)}",
        ]
    ).encode()


class Lifecycle:
    SMS_PURPOSE: ClassVar[OtpPurpose] = OtpPurpose.CERTIFICATE_REVOCATION  # the SMS codes this use case acts on

    def __init__(self, store: Store, clock: Clock, registration: Registration) -> None:
        self.certs = certificates(store)
        self.repo = repository(store)  # the status changes: typed, one guarded write each
        self.state = store.collection("pki_state")
        self.events = store.events
        self.clock = clock
        self.registration = registration  # the CA registry, and so the CRL and OCSP, follow each change
        self.after_status_change: list[Changed] = []  # given the certificate as moved (remote signing: SADs end)

    async def init(self) -> None:
        await self.certs.ensure_index([("crl_listed", 1)])
        await self.certs.ensure_index([("expires_on", 1)])
        await self.certs.ensure_index([("revocation_request_id", 1)], unique=True, sparse=True)

    # ------------------------------------------------------------------ the one way a status changes

    async def _change(
        self,
        doc: Doc,
        build: Callable[[S], tuple[S, Payload]],
        fields: dict[str, Any],
        *,
        unset: dict[str, Any] | None = None,
        caused_by: str | None = None,
        when: Callable[[Doc], bool] | None = None,
    ) -> Doc | None:
        """Move the certificate on with the event ``build`` makes, in one write guarded by the record's
        revision (``Repository.modify``: read again and decided again if anything wrote in between). By
        default only from the status ``doc`` has (None if it changed meanwhile); with ``when``, from
        whatever status the record has now, if ``when`` accepts it (it may raise a refusal instead)."""
        read_status = doc["status"]

        def decide(cert: Certificate) -> Decision[Certificate] | None:
            current = cert.to_doc()
            if (when is None and current["status"] != read_status) or (when is not None and not when(current)):
                return None
            status, payload = build(S(current["status"]))
            after = {k: v for k, v in current.items() if k not in (unset or {})}
            after |= {**fields, **DUE, "status": status.value, "revision": cert.revision + 1}
            return decided(Certificate.model_validate(after), self.events(payload, causation_id=caused_by))

        try:
            done = await self.repo.modify(doc["_id"], decide, caused_by=caused_by, attempts=CHANGED_WHILE_READING)
        except Contended:
            return None  # it kept changing: as if it changed meanwhile
        moved = done.record.to_doc() if done is not None and done.changed else None
        if moved is not None:
            for changed in self.after_status_change:
                try:
                    await changed(moved)
                except Exception:  # their periodic sweeps catch up (a SAD also checks the revision)
                    log.exception("reacting to a status change failed")
            await self.registration.changed(moved)  # never raises: should it fail, catch_up registers it
        return moved

    async def revoke(
        self,
        doc: Doc,
        reason: str,
        by: str,
        *,
        invalidity_date: datetime | None = None,
        superseded_by: str | None = None,
        caused_by: str | None = None,
        when: Callable[[Doc], bool] | None = None,
    ) -> Doc | None:
        """Revoke for good and destroy the private key (the CRL and OCSP report it at once)."""
        t = self.clock.now()
        r = domain.Revocation(doc["serial_number"], reason, t, by, invalidity_date, superseded_by)
        record = {"reason": reason, "revoked_at": t, "by": by, "invalidity_date": invalidity_date}
        if superseded_by:
            record["superseded_by"] = superseded_by
        moved = await self._change(
            doc,
            lambda s: domain.revoked(s, domain.Ref.of(doc), r),
            {"revocation": record, "crl_listed": True, "key_destroyed_at": t},
            unset={"key": "", "suspension": ""},
            caused_by=caused_by,
            when=when,
        )
        if moved is not None and isinstance(doc.get("key"), dict):
            log.info("certificate revoked, key destroyed", extra={"certificate_id": doc["_id"], "reason": reason})
        return moved

    async def suspend(
        self, doc: Doc, by: str, *, caused_by: str | None = None, when: Callable[[Doc], bool] | None = None
    ) -> Doc | None:
        t = self.clock.now()
        return await self._change(
            doc,
            lambda s: domain.suspended(s, domain.Ref.of(doc), serial_number=doc["serial_number"], at=t, by=by),
            {"suspension": {"at": t, "by": by}, "crl_listed": True},
            caused_by=caused_by,
            when=when,
        )

    async def resume(
        self, doc: Doc, by: str, *, caused_by: str | None = None, when: Callable[[Doc], bool] | None = None
    ) -> Doc | None:
        t = self.clock.now()
        return await self._change(
            doc,
            lambda s: domain.resumed(s, domain.Ref.of(doc), serial_number=doc["serial_number"], at=t, by=by),
            {"crl_listed": False, "resumed_at": t},
            unset={"suspension": ""},
            caused_by=caused_by,
            when=when,
        )

    # ------------------------------------------------------------------ operators

    async def _issued(self, certificate_id: str) -> Doc:
        return await issued_for(self.certs, None, certificate_id)

    async def operator_act(
        self, who: Principal, certificate_id: str, action: LifecycleAction, reason: str, invalidity: datetime | None
    ) -> Doc:
        ensure_role(who, "operator")
        doc = await self._issued(certificate_id)
        check_allowed(doc, action)  # refused before anything is written

        def allowed(now: Doc) -> bool:  # decided again on the record as it is at the write
            check_allowed(now, action)
            return True

        if action == "revoke":
            moved = await self.revoke(doc, reason, "operator", invalidity_date=invalidity, when=allowed)
        elif action == "suspend":
            moved = await self.suspend(doc, "operator", when=allowed)
        else:
            moved = await self.resume(doc, "operator", when=allowed)
        if moved is not None:
            return moved
        raise Conflict(
            "changed_meanwhile",
            "The certificate changed meanwhile; try again",
            "Chứng thư số vừa thay đổi, vui lòng thử lại",
        )

    # ------------------------------------------------------------------ subscribers: request, then an SMS code

    async def request(
        self,
        who: Principal,
        certificate_id: str,
        action: LifecycleAction,
        reason: str,
        invalidity: datetime | None,
    ) -> RevocationRequestView:
        if action == "resume":
            raise Invalid(
                "resume_by_operator",
                "Only an operator can resume a certificate",
                "Chỉ nhân viên vận hành mới được khôi phục chứng thư số",
            )
        doc = await self._issued(certificate_id)
        ensure_may(who, doc["account_id"], "sign")  # only the subscriber (an operator uses the operator API)
        check_allowed(doc, action)
        t = self.clock.now()
        request_id = uuid.uuid4().hex
        statement = request_statement(doc, request_id, action, reason, t)
        digest = hashlib.sha256(statement).hexdigest()
        request = {
            "request_id": request_id,
            "action": action,
            "reason": reason,
            "invalidity_date": invalidity,
            "sha256": digest,
            "at": t,
            "expires_at": t + REQUEST_TTL,
        }
        done = await self.certs.update(
            {"_id": doc["_id"], "status": doc["status"]},
            {"$set": {"revocation_request": request, "revocation_request_id": request_id}},
        )
        if not done:
            raise Conflict(
                "changed_meanwhile",
                "The certificate changed meanwhile; try again",
                "Chứng thư số vừa thay đổi, vui lòng thử lại",
            )
        return RevocationRequestView(
            request_id=request_id,
            certificate_id=doc["_id"],
            action=action,
            reason=reason,
            statement=statement.decode(),
            sha256=digest,
            expires_at=(t + REQUEST_TTL).isoformat(),
            otp=OtpToAsk(purpose=self.SMS_PURPOSE.value, subject=request_id, binding_sha256=digest),
        )

    async def when_sms_otp_verified_apply_request(self, event: CloudEvent[SmsOtpVerified]) -> None:
        e = event.data
        if e.purpose != self.SMS_PURPOSE:
            return
        doc = await self.certs.find_one({"revocation_request_id": e.subject})
        if doc is None:
            log.warning("verified code for an unknown revocation request", extra={"request_id": e.subject})
            return
        req = doc["revocation_request"]
        problem = None
        if e.account_id != doc["account_id"]:
            problem = "other_account"
        elif e.binding_sha256 != req["sha256"]:
            problem = "bound_to_other_document"
        elif as_utc(e.verified_at) > as_utc(req["expires_at"]):
            problem = "expired"
        if problem is not None:
            await self.certs.update(
                {"_id": doc["_id"], "revocation_request_id": e.subject},
                {"$set": {"revocation_request.rejected": problem}},
                caused_by=event.id,
            )
            return
        if S(doc["status"]) == S.REVOKED or (req["action"] == "suspend" and S(doc["status"]) == S.SUSPENDED):
            return  # done before (a repeated delivery), or someone else got there first
        if S(doc["status"]) not in domain.ISSUED or (req["action"] == "suspend" and S(doc["status"]) != S.ACTIVE):
            return
        if req["action"] == "revoke":
            inv = req.get("invalidity_date")
            await self.revoke(doc, req["reason"], "subscriber", invalidity_date=inv, caused_by=event.id)
        else:
            await self.suspend(doc, "subscriber", caused_by=event.id)

    # ------------------------------------------------------------------ renewal and expiry

    async def when_cert_activated_supersede_previous(self, event: CloudEvent[CertActivated]) -> None:
        """A renewal's certificate is active: the certificate it renews is revoked as superseded."""
        new = await self.certs.get(event.data.certificate_id)
        if new is None:
            return
        old_id = (new.get("order") or {}).get("renews_certificate_id")
        if not old_id:
            return
        old = await self.certs.get(old_id)
        if old is None or old["account_id"] != new["account_id"]:
            log.warning("renewal names a certificate of someone else", extra={"certificate_id": new["_id"]})
            return
        await self.revoke(
            old,
            "superseded",
            "renewal",
            superseded_by=new["_id"],
            caused_by=event.id,
            when=lambda now: S(now["status"]) in domain.ISSUED,  # not if revoked or expired already
        )

    async def expire_due(self) -> int:
        """Mark certificates past their notAfter expired (CertExpired). Days are indexed buckets, so a
        sweep reads only the certificates that expire on the days since the last sweep."""
        now = self.clock.now()
        today = now.date()
        state = await self.state.get("expiry")
        day = datetime.fromisoformat(state["through"]).date() if state else today - timedelta(days=1)
        n = 0
        while day <= today:
            for doc in await self.certs.find({"expires_on": day.isoformat()}):
                if S(doc["status"]) in domain.ISSUED and as_utc(doc["certificate"]["not_after"]) <= now:
                    n += await self._expire(doc) is not None
            day += timedelta(days=1)
        await self.state.update(
            {"_id": "expiry"}, {"$set": {"through": today.isoformat()}}, upsert_with={"_id": "expiry"}
        )
        return n

    async def _expire(self, doc: Doc) -> Doc | None:
        at = as_utc(doc["certificate"]["not_after"])

        def build(s: S) -> tuple[S, Payload]:
            return domain.expired(s, domain.Ref.of(doc), serial_number=doc["serial_number"], at=at)

        return await self._change(doc, build, {"expired_at": at})
