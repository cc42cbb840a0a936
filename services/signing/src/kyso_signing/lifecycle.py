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
from kyso_kit.errors import Conflict, Invalid, not_found
from kyso_kit.store import Doc, Store
from kyso_kit.timeutil import as_utc, local

from . import domain
from .domain import CertificateStatus as S
from .schemas import LifecycleAction, OtpToAsk, RevocationRequestView

log = logging.getLogger(__name__)

REQUEST_TTL = timedelta(minutes=10)
CHANGED_WHILE_READING = 5

Refresh = Callable[[], Awaitable[Any]]
Changed = Callable[[Doc], Awaitable[Any]]


def already_revoked() -> Conflict:
    return Conflict("already_revoked", "The certificate is already revoked", "Chứng thư số đã bị thu hồi")


def not_suspended() -> Conflict:
    return Conflict(
        "not_suspended",
        "Only a suspended certificate can be resumed",
        "Chỉ chứng thư số đang tạm dừng mới được khôi phục",
    )


def not_in_force(status: str) -> Conflict:
    return Conflict(
        "certificate_not_in_force",
        f"The certificate is {status}; this cannot be done to it",
        "Chứng thư số không còn hiệu lực cho thao tác này",
    )


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

    def __init__(self, store: Store, clock: Clock) -> None:
        self.certs = store.collection("certificates", events=True)
        self.state = store.collection("pki_state")
        self.events = store.events
        self.clock = clock
        self.after_change: list[Refresh] = []  # the CRL publisher registers itself here
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
    ) -> Doc | None:
        """Move ``doc`` on with the event ``build`` makes; None if the status changed meanwhile."""
        status, payload = build(S(doc["status"]))
        update: dict[str, Any] = {"$set": {"status": status.value, **fields}, "$inc": {"revision": 1}}
        if unset:
            update["$unset"] = unset
        moved = await self.certs.update_and_get(
            {"_id": doc["_id"], "status": doc["status"]},
            update,
            events=[self.events(payload, causation_id=caused_by)],
            caused_by=caused_by,
        )
        if moved is not None:
            for changed in self.after_status_change:
                try:
                    await changed(moved)
                except Exception:  # their periodic sweeps catch up (a SAD also checks the revision)
                    log.exception("reacting to a status change failed")
            for refresh in self.after_change:
                try:
                    await refresh()
                except Exception:  # the periodic job publishes it on its next tick
                    log.exception("refreshing revocation status after a change failed")
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
        )
        if moved is not None and isinstance(doc.get("key"), dict):
            log.info("certificate revoked, key destroyed", extra={"certificate_id": doc["_id"], "reason": reason})
        return moved

    async def suspend(self, doc: Doc, by: str, *, caused_by: str | None = None) -> Doc | None:
        t = self.clock.now()
        return await self._change(
            doc,
            lambda s: domain.suspended(s, domain.Ref.of(doc), serial_number=doc["serial_number"], at=t, by=by),
            {"suspension": {"at": t, "by": by}, "crl_listed": True},
            caused_by=caused_by,
        )

    async def resume(self, doc: Doc, by: str, *, caused_by: str | None = None) -> Doc | None:
        t = self.clock.now()
        return await self._change(
            doc,
            lambda s: domain.resumed(s, domain.Ref.of(doc), serial_number=doc["serial_number"], at=t, by=by),
            {"crl_listed": False, "resumed_at": t},
            unset={"suspension": ""},
            caused_by=caused_by,
        )

    # ------------------------------------------------------------------ operators

    async def _issued(self, certificate_id: str) -> Doc:
        doc = await self.certs.get(certificate_id)
        if doc is None or "certificate" not in doc:
            raise not_found("certificate", "chứng thư số")
        return doc

    async def operator_act(
        self, who: Principal, certificate_id: str, action: LifecycleAction, reason: str, invalidity: datetime | None
    ) -> Doc:
        ensure_role(who, "operator")
        for _ in range(CHANGED_WHILE_READING):
            doc = await self._issued(certificate_id)
            check_allowed(doc, action)
            if action == "revoke":
                moved = await self.revoke(doc, reason, "operator", invalidity_date=invalidity)
            elif action == "suspend":
                moved = await self.suspend(doc, "operator")
            else:
                moved = await self.resume(doc, "operator")
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
        for _ in range(CHANGED_WHILE_READING):
            if S(old["status"]) not in domain.ISSUED:
                return  # revoked or expired already
            if await self.revoke(old, "superseded", "renewal", superseded_by=new["_id"], caused_by=event.id):
                return
            old = await self.certs.get(old_id)
            if old is None:
                return

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


def check_allowed(doc: Doc, action: LifecycleAction) -> None:
    """Refuse, with a stable code, what the state machine does not allow (before anything changes)."""
    status = S(doc["status"])
    if status == S.REVOKED:
        raise already_revoked()
    if action == "resume" and status != S.SUSPENDED:
        raise not_suspended()
    if action == "suspend" and status == S.SUSPENDED:
        raise Conflict("already_suspended", "The certificate is already suspended", "Chứng thư số đang tạm dừng")
    act = {"revoke": "revoke", "suspend": "suspend", "resume": "resume"}[action]
    if (status, act) not in domain.TRANSITIONS:
        raise not_in_force(status.value)
