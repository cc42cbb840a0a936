"""Registration use cases: VNeID identity → confirmation → account → order → status view."""

from __future__ import annotations

import logging
import time
import uuid
from datetime import date, datetime, timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from kyso_contracts import (
    AccountCreated,
    CertActivated,
    CertIssued,
    CloudEvent,
    ContractSigned,
    OrderPlaced,
    OtpPurpose,
    PaymentConfirmed,
    PaymentFailed,
    SmsOtpVerified,
    SubscriberIdentity,
)
from kyso_kit.auth import TokenIssuer, forbidden
from kyso_kit.crypto import hash_secret, verify_secret
from kyso_kit.errors import ApiError, not_found
from kyso_kit.inbox import mark_applied, once
from kyso_kit.outbox import new_document_outbox
from kyso_kit.runtime import ServiceRuntime
from kyso_kit.timeutil import as_utc, local, now

from . import domain
from .settings import RegistrationSettings

log = logging.getLogger(__name__)

INVALID_CREDENTIALS = (
    "invalid_credentials",
    "Phone number or password is incorrect",
    "Số điện thoại hoặc mật khẩu không đúng",
)
# A fixed argon2id hash so an unknown phone costs the same time as a wrong password.
_DUMMY_HASH = hash_secret("kyso-timing-equaliser")


class RegistrationService:
    def __init__(self, runtime: ServiceRuntime, settings: RegistrationSettings) -> None:
        self.rt = runtime
        self.s = settings
        db = runtime.db
        self.registrations = db["registrations"]
        self.accounts = db["accounts"]
        self.orders = db["orders"]
        assert settings.vneid_public_key_pem and settings.auth_signing_key_pem
        self.vneid = domain.VneidVerifier(settings.vneid_public_key_pem)
        self.tokens = TokenIssuer(settings.auth_signing_key_pem, settings.access_token_ttl_seconds)

    async def init_indexes(self) -> None:
        await self.registrations.create_index([("vneid_nonce", 1)], unique=True)
        await self.accounts.create_index([("registration_id", 1)], unique=True)
        await self.accounts.create_index([("phone", 1)], unique=True)
        await self.orders.create_index([("account_id", 1)])

    # ------------------------------------------------------------------ steps 1–2: VNeID hand-over

    async def accept_identity(self, identity: dict[str, Any], signature_b64: str) -> dict[str, Any]:
        if not self.vneid.valid(identity, signature_b64):
            raise ApiError(
                401,
                "invalid_vneid_signature",
                "The identity is not signed by VNeID",
                "Thông tin định danh không có chữ ký hợp lệ của VNeID",
            )
        if identity.get("eid_level") != 2:
            raise ApiError(
                403,
                "eid_level_too_low",
                "A level-2 electronic identification account is required",
                "Cần tài khoản định danh điện tử mức độ 2",
            )
        issued = datetime.fromisoformat(identity["issued_at"])
        age = (now() - as_utc(issued)).total_seconds()
        if age > self.s.identity_max_age_seconds or age < -60:
            raise ApiError(
                400,
                "identity_expired",
                "The VNeID assertion is too old or from the future",
                "Thông tin định danh từ VNeID đã hết hạn",
            )
        reg_id = uuid.uuid4().hex
        doc = {
            "_id": reg_id,
            "vneid_nonce": identity["nonce"],
            "status": "pending_confirmation",
            "identity": {k: identity[k] for k in ("citizen_id", "full_name", "date_of_birth", "eid_level")},
            "certificate_type": identity.get("certificate_type", "PERSONAL"),
            "verified_phones": [],
            "created_at": now(),
        }
        try:
            await self.registrations.insert_one(doc)
        except DuplicateKeyError:
            raise ApiError(
                409,
                "identity_replayed",
                "This VNeID assertion was already used",
                "Thông tin định danh này đã được sử dụng",
            ) from None
        return self._registration_view(doc)

    async def confirm(self, reg_id: str) -> dict[str, Any]:
        doc = await self.registrations.find_one_and_update(
            {"_id": reg_id, "status": {"$in": ["pending_confirmation", "confirmed"]}},
            {"$set": {"status": "confirmed", "confirmed_at": now()}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            await self._registration(reg_id)
            raise ApiError(
                409, "already_completed", "This registration already has an account", "Đăng ký này đã có tài khoản"
            )
        return self._registration_view(doc)

    async def get_registration(self, reg_id: str) -> dict[str, Any]:
        return self._registration_view(await self._registration(reg_id))

    async def _registration(self, reg_id: str) -> dict[str, Any]:
        doc = await self.registrations.find_one({"_id": reg_id})
        if doc is None:
            raise not_found("registration", "đăng ký")
        return doc

    @staticmethod
    def _registration_view(doc: dict[str, Any]) -> dict[str, Any]:
        return {
            "registration_id": doc["_id"],
            "status": doc["status"],
            "identity": doc["identity"],
            "verified_phones": [v["phone"] for v in doc.get("verified_phones", [])],
            "account_id": doc.get("account_id"),
        }

    # ------------------------------------------------------------------ step 3: account

    async def when_sms_otp_verified_mark_phone(self, event: CloudEvent[SmsOtpVerified]) -> None:
        e = event.data
        if e.purpose != OtpPurpose.PHONE_VERIFICATION:
            return
        await self.registrations.update_one(
            once(event.id, {"_id": e.subject}),
            mark_applied(
                {"$push": {"verified_phones": {"phone": e.phone, "challenge_id": e.challenge_id, "at": e.verified_at}}},
                event.id,
            ),
        )

    async def create_account(self, reg_id: str, phone: str, email: str, password: str) -> dict[str, Any]:
        reg = await self._registration(reg_id)
        if reg["status"] == "pending_confirmation":
            raise ApiError(
                409,
                "registration_not_confirmed",
                "Confirm the registration data first",
                "Vui lòng xác nhận thông tin đăng ký trước",
            )
        if reg["status"] == "account_created":
            raise ApiError(
                409, "account_exists", "This registration already has an account", "Đăng ký này đã có tài khoản"
            )
        if phone not in {v["phone"] for v in reg.get("verified_phones", [])}:
            raise ApiError(
                409,
                "phone_not_verified",
                "Verify this phone number with the SMS code first",
                "Vui lòng xác thực số điện thoại bằng mã OTP trước",
            )
        problems = domain.password_problems(password, phone, email)
        if problems:
            raise ApiError(
                422,
                "weak_password",
                "Password rejected: " + "; ".join(problems),
                "Mật khẩu chưa đủ mạnh",
                details={"problems": problems},
            )
        account_id = uuid.uuid4().hex
        t = now()
        event = self.rt.event(
            AccountCreated(
                account_id=account_id,
                registration_id=reg_id,
                citizen_id=reg["identity"]["citizen_id"],
                phone=phone,
                email=email,
                created_at=t,
            )
        )
        try:
            await self.accounts.insert_one(
                {
                    "_id": account_id,
                    "registration_id": reg_id,
                    "citizen_id": reg["identity"]["citizen_id"],
                    "phone": phone,
                    "email": email,
                    "password_hash": hash_secret(password),
                    "created_at": t,
                    "failed_logins": 0,
                    **new_document_outbox([event]),
                }
            )
        except DuplicateKeyError:
            raise ApiError(
                409,
                "account_exists",
                "An account already exists for this registration or phone",
                "Đã có tài khoản cho đăng ký hoặc số điện thoại này",
            ) from None
        self.rt.relay.nudge("accounts", account_id)
        # The account document is the source of truth; this is only the view's convenience copy.
        await self.registrations.update_one(
            {"_id": reg_id}, {"$set": {"status": "account_created", "account_id": account_id}}
        )
        return {
            "account_id": account_id,
            "access_token": self.tokens.issue(account_id, auth_time=int(time.time()), amr=["pwd"]),
            "token_type": "Bearer",
            "expires_in": self.tokens.ttl,
        }

    async def get_account(self, account_id: str) -> dict[str, Any]:
        acct = await self.accounts.find_one({"_id": account_id}, {"password_hash": 0, "outbox": 0})
        if acct is None:
            raise not_found("account", "tài khoản")
        return {
            "account_id": acct["_id"],
            "phone": acct["phone"],
            "email": acct["email"],
            "registration_id": acct["registration_id"],
        }

    async def login(self, phone: str, password: str) -> dict[str, Any]:
        acct = await self.accounts.find_one({"phone": phone})
        t = now()
        if acct is None:
            verify_secret(_DUMMY_HASH, password)
            raise ApiError(401, *INVALID_CREDENTIALS)
        locked_until = acct.get("locked_until")
        if locked_until is not None and as_utc(locked_until) > t:
            raise ApiError(401, *INVALID_CREDENTIALS)  # locked and wrong answer alike; no hashing while locked
        if not verify_secret(acct["password_hash"], password):
            after = await self.accounts.find_one_and_update(
                {"_id": acct["_id"]}, {"$inc": {"failed_logins": 1}}, return_document=ReturnDocument.AFTER
            )
            if after and after["failed_logins"] >= self.s.login_max_failures:
                await self.accounts.update_one(
                    {"_id": acct["_id"]},
                    {"$set": {"locked_until": t + timedelta(seconds=self.s.login_lock_seconds), "failed_logins": 0}},
                )
            raise ApiError(401, *INVALID_CREDENTIALS)
        await self.accounts.update_one({"_id": acct["_id"]}, {"$set": {"failed_logins": 0, "last_login_at": t}})
        return {
            "account_id": acct["_id"],
            "access_token": self.tokens.issue(acct["_id"], auth_time=int(time.time()), amr=["pwd"]),
            "token_type": "Bearer",
            "expires_in": self.tokens.ttl,
        }

    # ------------------------------------------------------------------ step 4: order

    async def place_order(self, account_id: str, package_code: str) -> dict[str, Any]:
        package = domain.PACKAGES.get(package_code)
        if package is None:
            raise ApiError(422, "unknown_package", "No such certificate package", "Gói chứng thư số không tồn tại")
        acct = await self.accounts.find_one({"_id": account_id})
        if acct is None:
            raise not_found("account", "tài khoản")
        reg = await self._registration(acct["registration_id"])
        ident = reg["identity"]
        order_id = uuid.uuid4().hex
        t = now()
        event = self.rt.event(
            OrderPlaced(
                order_id=order_id,
                account_id=account_id,
                registration_id=reg["_id"],
                subscriber=SubscriberIdentity(
                    citizen_id=ident["citizen_id"],
                    full_name=ident["full_name"],
                    date_of_birth=date.fromisoformat(ident["date_of_birth"]),
                ),
                email=acct["email"],
                package_code=package.code,
                validity_years=package.validity_years,
                amount_vnd=package.price_vnd,
                placed_at=t,
            )
        )
        doc = {
            "_id": order_id,
            "account_id": account_id,
            "registration_id": reg["_id"],
            "package_code": package.code,
            "validity_years": package.validity_years,
            "amount_vnd": package.price_vnd,
            "placed_at": t,
            "status_rank": domain.STATUS_RANK["awaiting_payment"],
            "timeline": [{"event": "order_placed", "at": t, "event_id": event.id}],
            "certificate": {},
            "applied_events": [],
            **new_document_outbox([event]),
        }
        await self.orders.insert_one(doc)
        self.rt.relay.nudge("orders", order_id)
        return self._order_view(doc)

    async def get_order(self, account_id: str, order_id: str) -> dict[str, Any]:
        doc = await self.orders.find_one({"_id": order_id})
        if doc is None:
            raise not_found("order", "đơn hàng")
        if doc["account_id"] != account_id:
            raise forbidden()
        return self._order_view(doc)

    @staticmethod
    def _order_view(doc: dict[str, Any]) -> dict[str, Any]:
        status = domain.RANK_STATUS[doc["status_rank"]]
        return {
            "order_id": doc["_id"],
            "account_id": doc["account_id"],
            "package_code": doc["package_code"],
            "validity_years": doc["validity_years"],
            "amount_vnd": doc["amount_vnd"],
            "status": status,
            "status_vi": domain.STATUS_VI[status],
            "certificate": doc.get("certificate") or None,
            "timeline": [{"event": t["event"], "at": local(t["at"])} for t in doc.get("timeline", [])],
        }

    # ------------------------------------------------------------------ step 6: status follows events

    async def _advance(
        self, event: CloudEvent[Any], order_id: str, status: str, extra: dict[str, Any] | None = None
    ) -> None:
        update: dict[str, Any] = {
            "$max": {"status_rank": domain.STATUS_RANK[status]},
            "$push": {"timeline": {"event": status, "at": event.time, "event_id": event.id}},
        }
        if extra:
            update["$set"] = extra
        res = await self.orders.update_one(once(event.id, {"_id": order_id}), mark_applied(update, event.id))
        if res.matched_count == 0 and await self.orders.count_documents({"_id": order_id}) == 0:
            raise LookupError(f"order {order_id} not found for {event.type}")

    async def when_payment_confirmed_mark_paid(self, event: CloudEvent[PaymentConfirmed]) -> None:
        await self._advance(event, event.data.order_id, "paid")

    async def when_payment_failed_mark_failed(self, event: CloudEvent[PaymentFailed]) -> None:
        await self._advance(event, event.data.order_id, "payment_failed")

    async def when_contract_signed_mark_signed(self, event: CloudEvent[ContractSigned]) -> None:
        await self._advance(event, event.data.order_id, "contract_signed")

    async def when_cert_issued_show_pending(self, event: CloudEvent[CertIssued]) -> None:
        d = event.data
        await self._advance(
            event,
            d.order_id,
            "pending_activation",
            {
                "certificate.certificate_id": d.certificate_id,
                "certificate.serial_number": d.serial_number,
                "certificate.subject_dn": d.subject_dn,
                "certificate.not_before": d.not_before.isoformat(),
                "certificate.not_after": d.not_after.isoformat(),
            },
        )

    async def when_cert_activated_show_active(self, event: CloudEvent[CertActivated]) -> None:
        d = event.data
        await self._advance(event, d.order_id, "active", {"certificate.activated_at": d.activated_at.isoformat()})
