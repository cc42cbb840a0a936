"""OTP use cases: SMS challenges and SmartOTP enrolment/verification. One atomic write per state change."""

from __future__ import annotations

import base64
import hmac
import logging
import time
import uuid
from datetime import timedelta
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from kyso_contracts import AccountCreated, CloudEvent, OtpEnrolled, OtpPurpose, SmsOtpVerified
from kyso_kit.crypto import SecretBox
from kyso_kit.errors import ApiError
from kyso_kit.inbox import mark_applied, once
from kyso_kit.outbox import with_events
from kyso_kit.runtime import ServiceRuntime
from kyso_kit.timeutil import as_utc, now

from . import domain
from .delivery import SmsSender
from .settings import OtpSettings

log = logging.getLogger(__name__)

INVALID_OTP = ApiError(400, "invalid_otp", "The code is invalid or expired", "Mã OTP không đúng hoặc đã hết hạn")


def invalid_otp(**details: Any) -> ApiError:
    return ApiError(
        INVALID_OTP.status, INVALID_OTP.code, INVALID_OTP.message_en, INVALID_OTP.message_vi, details=details
    )


SMS_TEXT = "kyso: ma OTP {code} de {purpose}. Hieu luc {minutes} phut. Khong chia se ma nay voi bat ky ai."
PURPOSE_VI = {
    OtpPurpose.PHONE_VERIFICATION: "xac thuc so dien thoai",
    OtpPurpose.CONTRACT_CONSENT: "ky hop dong dich vu",
    OtpPurpose.SMARTOTP_ENROLMENT: "dang ky SmartOTP",
    OtpPurpose.METHOD_CHANGE: "doi phuong thuc xac thuc",
    OtpPurpose.PIN_RESET: "dat lai ma PIN",
    OtpPurpose.UNLOCK: "mo khoa",
}


class OtpService:
    def __init__(self, runtime: ServiceRuntime, settings: OtpSettings, sender: SmsSender) -> None:
        self.rt = runtime
        self.s = settings
        self.db: AsyncDatabase[Any] = runtime.db
        self.challenges = self.db["sms_challenges"]
        self.tokens = self.db["smartotp_tokens"]
        self.accounts = self.db["accounts"]
        self.sender = sender
        assert settings.master_key_b64 and settings.sms_pepper_b64
        self.box = SecretBox(settings.master_key_b64)
        self.pepper = base64.b64decode(settings.sms_pepper_b64)

    async def init_indexes(self) -> None:
        await self.challenges.create_index([("phone", 1), ("created_at", -1)])
        await self.tokens.create_index([("activation_hash", 1)], unique=True)
        await self.tokens.create_index([("account_id", 1)])

    # ------------------------------------------------------------------ SMS OTP

    async def create_challenge(
        self,
        purpose: OtpPurpose,
        subject: str,
        phone: str | None,
        account_id: str | None,
        binding_sha256: str | None,
    ) -> dict[str, Any]:
        if purpose == OtpPurpose.PHONE_VERIFICATION:
            if not phone:
                raise ApiError(422, "phone_required", "A phone number is required", "Cần nhập số điện thoại")
        else:
            if not account_id:
                raise ApiError(422, "account_required", "An account id is required", "Cần mã tài khoản")
            acct = await self.accounts.find_one({"_id": account_id})
            if acct is None:
                raise ApiError(404, "unknown_account", "No such account", "Không tìm thấy tài khoản")
            phone = acct["phone"]
        assert phone is not None
        t = now()
        recent = await self.challenges.count_documents({"phone": phone, "created_at": {"$gte": t - timedelta(hours=1)}})
        if recent >= self.s.sms_per_phone_per_hour:
            raise ApiError(
                429,
                "too_many_otp_requests",
                "Too many codes requested for this phone; try later",
                "Yêu cầu OTP quá nhiều lần, vui lòng thử lại sau",
                headers={"Retry-After": "3600"},
                details={"retry_after_seconds": 3600},
            )
        challenge_id = uuid.uuid4().hex
        code = domain.new_sms_code()
        expires = t + timedelta(seconds=self.s.sms_ttl_seconds)
        await self.challenges.insert_one(
            {
                "_id": challenge_id,
                "purpose": purpose.value,
                "subject": subject,
                "account_id": account_id,
                "phone": phone,
                "binding_sha256": binding_sha256,
                "code_hash": domain.sms_code_hash(self.pepper, challenge_id, code),
                "status": "pending",
                "attempts": 0,
                "created_at": t,
                "expires_at": expires,
                "consumed": False,
                "outbox": [],
            }
        )
        text = SMS_TEXT.format(code=code, purpose=PURPOSE_VI[purpose], minutes=self.s.sms_ttl_seconds // 60)
        await self.sender.send(phone, text, reference=challenge_id)
        return {
            "challenge_id": challenge_id,
            "expires_at": expires.isoformat(),
            "phone_masked": mask(phone),
            "ttl_seconds": self.s.sms_ttl_seconds,
        }

    async def verify_challenge(self, challenge_id: str, code: str) -> dict[str, Any]:
        if not domain.is_code_shape(code):
            raise ApiError(422, "invalid_code_format", "The code must be 6 digits", "Mã OTP phải gồm 6 chữ số")
        # Count the try before comparing: guessing is bounded even under concurrency.
        doc = await self.challenges.find_one_and_update(
            {"_id": challenge_id, "status": "pending", "attempts": {"$lt": self.s.sms_max_attempts}},
            {"$inc": {"attempts": 1}},
            return_document=ReturnDocument.AFTER,
        )
        if doc is None:
            raise invalid_otp()
        if as_utc(doc["expires_at"]) <= now() or not hmac.compare_digest(
            doc["code_hash"], domain.sms_code_hash(self.pepper, challenge_id, code)
        ):
            if doc["attempts"] >= self.s.sms_max_attempts:
                await self.challenges.update_one(
                    {"_id": challenge_id, "status": "pending"}, {"$set": {"status": "dead"}}
                )
            raise invalid_otp()
        t = now()
        event = self.rt.event(
            SmsOtpVerified(
                challenge_id=challenge_id,
                purpose=OtpPurpose(doc["purpose"]),
                subject=doc["subject"],
                account_id=doc.get("account_id"),
                phone=doc["phone"],
                binding_sha256=doc.get("binding_sha256"),
                verified_at=t,
            )
        )
        res = await self.challenges.update_one(
            {"_id": challenge_id, "status": "pending"},
            with_events({"$set": {"status": "verified", "verified_at": t}}, [event]),
        )
        if res.modified_count != 1:
            raise invalid_otp()  # a concurrent verification of the same code won
        self.rt.relay.nudge()
        return {"verified": True, "challenge_id": challenge_id, "purpose": doc["purpose"], "subject": doc["subject"]}

    # ------------------------------------------------------------------ SmartOTP

    async def start_enrolment(self, account_id: str, terms_version: str, sms_challenge_id: str) -> dict[str, Any]:
        used = await self.challenges.find_one_and_update(
            {
                "_id": sms_challenge_id,
                "status": "verified",
                "consumed": False,
                "purpose": OtpPurpose.SMARTOTP_ENROLMENT.value,
                "account_id": account_id,
            },
            {"$set": {"consumed": True}},
        )
        if used is None:
            raise ApiError(
                403,
                "sms_otp_not_verified",
                "Verify the SMS code for SmartOTP enrolment first",
                "Vui lòng xác thực mã OTP SMS để đăng ký SmartOTP",
            )
        token_id = uuid.uuid4().hex
        code = domain.new_activation_code()
        expires = now() + timedelta(seconds=self.s.activation_ttl_seconds)
        await self.tokens.insert_one(
            {
                "_id": token_id,
                "account_id": account_id,
                "terms_version": terms_version,
                "status": "awaiting_device",
                "activation_hash": domain.activation_code_hash(code),
                "activation_expires_at": expires,
                "created_at": now(),
                "outbox": [],
            }
        )
        return {"token_id": token_id, "activation_code": code, "expires_at": expires.isoformat()}

    async def activate_device(self, activation_code: str, device_id: str) -> dict[str, Any]:
        if not domain.is_code_shape(activation_code, 10):
            raise ApiError(
                422,
                "invalid_activation_code_format",
                "The activation code must be 10 digits",
                "Mã kích hoạt phải gồm 10 chữ số",
            )
        code_hash = domain.activation_code_hash(activation_code)
        candidate = await self.tokens.find_one({"activation_hash": code_hash}, {"_id": 1})
        seed = domain.new_seed()
        pending = None
        if candidate is not None:
            token_id = candidate["_id"]
            # One atomic write moves the token to the device and stores its sealed seed: a second
            # device presenting the same code finds the status changed and fails.
            pending = await self.tokens.find_one_and_update(
                {
                    "_id": token_id,
                    "activation_hash": code_hash,
                    "status": "awaiting_device",
                    "activation_expires_at": {"$gt": now()},
                },
                {
                    "$set": {
                        "status": "pending_first_code",
                        "device_id": device_id,
                        "drift": 0,
                        "last_step": -1,
                        "failures": 0,
                        "activated_at": now(),
                        "seed": self.box.seal(seed, aad=f"smartotp:{token_id}"),
                    }
                },
                return_document=ReturnDocument.AFTER,
            )
        if pending is None:
            raise ApiError(
                400,
                "invalid_activation_code",
                "The activation code is invalid, used or expired",
                "Mã kích hoạt không hợp lệ, đã dùng hoặc đã hết hạn",
            )
        return {
            "token_id": token_id,
            "otpauth_uri": domain.key_uri(seed, f"kyso:{pending['account_id']}"),
            "algorithm": domain.TOTP_DIGEST,
            "digits": domain.TOTP_DIGITS,
            "period": domain.TOTP_PERIOD,
            "server_time": time.time(),
        }

    async def verify_token_code(self, token_id: str, code: str) -> dict[str, Any]:
        if not domain.is_code_shape(code, domain.TOTP_DIGITS):
            raise ApiError(422, "invalid_code_format", "The code must be 6 digits", "Mã OTP phải gồm 6 chữ số")
        tok = await self.tokens.find_one({"_id": token_id})
        if (
            tok is None
            or tok.get("status") not in ("pending_first_code", "active")
            or "seed" not in tok
            or tok.get("failures", 0) >= self.s.token_max_failures
        ):
            raise invalid_otp()
        seed = self.box.open(tok["seed"], aad=f"smartotp:{token_id}")
        match = domain.match_totp(seed, code, time.time(), tok["drift"], tok["last_step"])
        if match is None:
            failed = await self.tokens.find_one_and_update(
                {"_id": token_id}, {"$inc": {"failures": 1}}, return_document=ReturnDocument.AFTER
            )
            if failed and failed["failures"] >= self.s.token_max_failures:
                await self.tokens.update_one(
                    {"_id": token_id, "status": {"$in": ["pending_first_code", "active"]}},
                    {"$set": {"status": "locked", "locked_at": now()}},
                )
            raise invalid_otp()
        events: list[CloudEvent[Any]] = []
        if tok["status"] == "pending_first_code":
            events.append(
                self.rt.event(
                    OtpEnrolled(
                        token_id=token_id,
                        account_id=tok["account_id"],
                        device_id=tok["device_id"],
                        algorithm=domain.TOTP_DIGEST,
                        digits=domain.TOTP_DIGITS,
                        period_seconds=domain.TOTP_PERIOD,
                        enrolled_at=now(),
                    )
                )
            )
        # Compare-and-set on last_step: of two concurrent uses of one code, exactly one wins.
        res = await self.tokens.update_one(
            {
                "_id": token_id,
                "last_step": tok["last_step"],
                "status": tok["status"],
                "failures": {"$lt": self.s.token_max_failures},
            },
            with_events(
                {
                    "$set": {
                        "last_step": match.step,
                        "drift": match.drift,
                        "failures": 0,
                        "status": "active",
                        "last_used_at": now(),
                    }
                },
                events,
            ),
        )
        if res.modified_count != 1:
            raise invalid_otp()
        if events:
            self.rt.relay.nudge()
        return {"valid": True, "token_id": token_id, "status": "active"}

    # ------------------------------------------------------------------ events

    async def when_account_created_remember_phone(self, event: CloudEvent[AccountCreated]) -> None:
        a = event.data
        try:
            await self.accounts.update_one(
                once(event.id, {"_id": a.account_id}),
                mark_applied({"$set": {"phone": a.phone, "citizen_id": a.citizen_id}}, event.id),
                upsert=True,
            )
        except DuplicateKeyError:
            pass  # already applied: the upsert collided with the existing document


def mask(phone: str) -> str:
    return phone[:4] + "*" * (len(phone) - 7) + phone[-3:]
