"""Steps 1–2 and the phone: VNeID hands over a signed identity, the citizen confirms it, and the
phones they verify by SMS OTP are remembered for the account step."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import ClassVar

from pydantic import ValidationError

from kyso_contracts import CloudEvent, OtpPurpose, SmsOtpVerified
from kyso_kit.changes import Changes
from kyso_kit.clock import Clock
from kyso_kit.errors import Conflict, Forbidden, Invalid, Rejected, Unauthenticated, not_found
from kyso_kit.store import Doc, DuplicateKey, Store

from . import domain
from .schemas import IdentityView, RegistrationView, VneidIdentity


def registration_view(doc: Doc) -> RegistrationView:
    return RegistrationView(
        registration_id=doc["_id"],
        status=doc["status"],
        identity=IdentityView(**doc["identity"]),
        verified_phones=[v["phone"] for v in doc.get("verified_phones", [])],
        account_id=doc.get("account_id"),
    )


class Identities:
    SMS_PURPOSE: ClassVar[OtpPurpose] = OtpPurpose.PHONE_VERIFICATION  # the SMS codes this use case acts on

    def __init__(
        self, store: Store, vneid: domain.VneidVerifier, clock: Clock, max_age_seconds: int, changes: Changes
    ) -> None:
        self.registrations = store.collection("registrations")
        self.changes = changes
        self.vneid = vneid
        self.clock = clock
        self.max_age_seconds = max_age_seconds

    async def init(self) -> None:
        await self.registrations.ensure_index([("vneid_nonce", 1)], unique=True)

    async def accept(self, assertion: str) -> RegistrationView:
        identity = self.vneid.identity(assertion)
        if identity is None:
            raise Unauthenticated(
                "invalid_vneid_signature",
                "The identity is not signed by VNeID",
                "Thông tin định danh không có chữ ký hợp lệ của VNeID",
            )
        try:
            VneidIdentity.model_validate(identity)
        except ValidationError as exc:
            raise Invalid(
                "invalid_identity",
                "The signed identity is incomplete or malformed",
                "Thông tin định danh không đầy đủ hoặc sai định dạng",
                details=domain.validation_details(exc),
            ) from None
        if identity.get("eid_level") != 2:
            raise Forbidden(
                "eid_level_too_low",
                "A level-2 electronic identification account is required",
                "Cần tài khoản định danh điện tử mức độ 2",
            )
        if not domain.vneid_fresh(
            datetime.fromisoformat(identity["issued_at"]), self.clock.now(), self.max_age_seconds
        ):
            raise Rejected(
                "identity_expired",
                "The VNeID assertion is too old or from the future",
                "Thông tin định danh từ VNeID đã hết hạn",
            )
        doc = {
            "_id": uuid.uuid4().hex,
            "vneid_nonce": identity["nonce"],
            "status": "pending_confirmation",
            "identity": {
                k: identity[k]
                for k in ("citizen_id", "full_name", "date_of_birth", "eid_level", "province", "locality")
                if identity.get(k) is not None
            },
            "certificate_type": identity.get("certificate_type", "PERSONAL"),
            "verified_phones": [],
            "created_at": self.clock.now(),
        }
        try:
            await self.registrations.insert(doc)
        except DuplicateKey:
            raise Conflict(
                "identity_replayed", "This VNeID assertion was already used", "Thông tin định danh này đã được sử dụng"
            ) from None
        return registration_view(doc)

    async def confirm(self, reg_id: str) -> RegistrationView:
        doc = await self.registrations.update_and_get(
            {"_id": reg_id, "status": {"$in": ["pending_confirmation", "confirmed"]}},
            {"$set": {"status": "confirmed", "confirmed_at": self.clock.now()}},
        )
        if doc is None:
            await self.get(reg_id)
            raise Conflict(
                "already_completed", "This registration already has an account", "Đăng ký này đã có tài khoản"
            )
        return registration_view(doc)

    async def get(self, reg_id: str) -> Doc:
        doc = await self.registrations.get(reg_id)
        if doc is None:
            raise not_found("registration", "đăng ký")
        return doc

    async def view(self, reg_id: str, *, phone: str | None = None, wait_seconds: float = 0) -> RegistrationView:
        """The registration; with ``phone``, as soon as that phone is verified (or after ``wait_seconds``)."""

        async def read() -> RegistrationView:
            return registration_view(await self.get(reg_id))

        if phone is None:
            return await read()
        return await self.changes.read_when(reg_id, read, lambda v: phone in v.verified_phones, wait_seconds)

    async def mark_account_created(self, reg_id: str, account_id: str) -> None:
        # The account document is the source of truth; this is only the view's convenience copy.
        await self.registrations.update(
            {"_id": reg_id}, {"$set": {"status": "account_created", "account_id": account_id}}
        )

    async def when_sms_otp_verified_mark_phone(self, event: CloudEvent[SmsOtpVerified]) -> None:
        e = event.data
        if e.purpose != self.SMS_PURPOSE:
            return
        await self.registrations.update(
            {"_id": e.subject},
            {"$push": {"verified_phones": {"phone": e.phone, "challenge_id": e.challenge_id, "at": e.verified_at}}},
            caused_by=event.id,
        )
        self.changes.notify(e.subject)
