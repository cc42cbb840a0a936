"""SMS OTP challenges: bound to a purpose, a subject and optionally a digest; six digits, five minutes,
single use, stored as a keyed hash, five tries, resend with cooldown, and sliding-window caps on sends.

Whose caps: a phone-verification code is asked for by nobody in particular (no account exists yet),
so its sends are capped per phone number; every other code is asked for by a signed-in account for
its own phone, so its sends are capped per account. An anonymous caller who fills a phone number's
cap therefore delays only phone verification of that number, never the codes an account needs to
consent, sign or unlock. Guessing is capped per challenge (five tries), never per address."""

from __future__ import annotations

import base64
import hmac
import logging
import uuid
from datetime import timedelta
from typing import Any

from kyso_contracts import AccountCreated, CloudEvent, OtpPurpose, SmsOtpVerified
from kyso_kit.changes import Changes
from kyso_kit.clock import Clock
from kyso_kit.errors import Conflict, Forbidden, Invalid, NotFound, TooMany, Upstream
from kyso_kit.limits import SlidingWindow
from kyso_kit.logs import mask_phone
from kyso_kit.machines import allowed, sources
from kyso_kit.store import Store
from kyso_kit.timeutil import as_utc

from . import domain
from .delivery import SmsSender
from .domain import CHALLENGE_TRANSITIONS
from .domain import ChallengeStatus as Ch
from .errors import code_format, invalid_otp, method_locked, too_many
from .settings import OtpSettings

log = logging.getLogger(__name__)

SMS_TEXT = "kyso: ma OTP {code} de {purpose}. Hieu luc {minutes} phut. Khong chia se ma nay voi bat ky ai."
PURPOSE_VI = {
    OtpPurpose.PHONE_VERIFICATION: "xac thuc so dien thoai",
    OtpPurpose.CONTRACT_CONSENT: "ky hop dong dich vu",
    OtpPurpose.SMARTOTP_ENROLMENT: "dang ky SmartOTP",
    OtpPurpose.METHOD_CHANGE: "doi phuong thuc xac thuc",
    OtpPurpose.PIN_RESET: "dat lai ma PIN SmartOTP",
    OtpPurpose.UNLOCK: "mo khoa phuong thuc xac thuc",
    OtpPurpose.CERTIFICATE_REVOCATION: "thu hoi hoac tam dung chung thu so",
    OtpPurpose.SIGNATURE_CONFIRMATION: "xac nhan ky so tai lieu",
}


ACCOUNT_WAIT_SECONDS = 5.0
HOUR = 3600


class SmsOtp:
    def __init__(self, store: Store, settings: OtpSettings, sender: SmsSender, clock: Clock) -> None:
        self.s = settings
        self.clock = clock
        self.challenges = store.collection("sms_challenges", events=True)
        self.accounts = store.collection("accounts")
        self.methods = store.collection("otp_methods", events=True)
        self.limits = SlidingWindow(store.collection("limit_events"), clock)
        self.changes = Changes()
        self.sender = sender
        assert settings.sms_pepper_b64
        self.pepper = base64.b64decode(settings.sms_pepper_b64)

    async def init_indexes(self) -> None:
        await self.challenges.ensure_index([("subject", 1), ("purpose", 1)])
        await self.limits.init_indexes()

    async def _limit(self, purpose: OtpPurpose, phone: str, account_id: str | None, subject: str) -> None:
        """Count one send against its requester's caps (see the module docstring)."""
        if purpose == OtpPurpose.PHONE_VERIFICATION:
            scope, owner, bound = "sms-phone", phone, self.s.sms_per_phone_per_hour
        else:
            assert account_id is not None  # the caller's token named it
            scope, owner, bound = "sms-account", account_id, self.s.sms_per_account_per_hour
        # the subject's cap is the requester's too: another requester naming the same subject (a
        # registration id, a contract id) counts in a bucket of its own
        wait = await self.limits.hit_all(
            (scope, owner, bound, HOUR),
            ("sms-subject", f"{owner}:{purpose.value}:{subject}", self.s.sms_per_subject_per_hour, HOUR),
        )
        if wait is not None:
            raise too_many(
                "too_many_otp_requests",
                "Too many codes requested; try again later",
                "Yêu cầu OTP quá nhiều lần, vui lòng thử lại sau",
                wait,
            )

    async def _send(self, challenge_id: str, phone: str, purpose: OtpPurpose, code: str) -> None:
        text = SMS_TEXT.format(code=code, purpose=PURPOSE_VI[purpose], minutes=self.s.sms_ttl_seconds // 60)
        try:
            await self.sender.send(phone, text, reference=challenge_id)
        except Exception as exc:
            # The code never reached the user: close the challenge so it cannot be guessed at either.
            log.warning("SMS delivery failed", extra={"challenge_id": challenge_id, "error": type(exc).__name__})
            await self.challenges.update(
                {"_id": challenge_id, "status": {"$in": sources(CHALLENGE_TRANSITIONS, "undeliver")}},
                {"$set": {"status": Ch.UNDELIVERABLE.value}},
            )
            raise Upstream(
                "sms_delivery_failed",
                "The SMS could not be sent; try again shortly",
                "Không gửi được tin nhắn SMS, vui lòng thử lại sau",
            ) from None

    async def create(
        self, purpose: OtpPurpose, subject: str, phone: str | None, account_id: str | None, binding_sha256: str | None
    ) -> dict[str, Any]:
        if purpose == OtpPurpose.PHONE_VERIFICATION:
            if not phone:
                raise Invalid("phone_required", "A phone number is required", "Cần nhập số điện thoại")
        else:
            if not account_id:
                raise Invalid("account_required", "An account id is required", "Cần mã tài khoản")
            # The caller's token names this account, so registration has it; otp learns of it from
            # AccountCreated, which may still be on its way: wait a moment rather than answer 404.
            acct = await self.changes.read_when(
                account_id, lambda: self.accounts.get(account_id), lambda d: d is not None, ACCOUNT_WAIT_SECONDS
            )
            if acct is None:
                raise NotFound("unknown_account", "No such account", "Không tìm thấy tài khoản")
            phone = acct["phone"]
            if purpose != OtpPurpose.UNLOCK:
                methods = await self.methods.get(account_id) or {}
                if (methods.get("locks") or {}).get("sms"):
                    raise method_locked("sms")
        assert phone is not None
        await self._limit(purpose, phone, account_id, subject)
        challenge_id = uuid.uuid4().hex
        code = domain.new_sms_code()
        t = self.clock.now()
        expires = t + timedelta(seconds=self.s.sms_ttl_seconds)
        await self.challenges.insert(
            {
                "_id": challenge_id,
                "purpose": purpose.value,
                "subject": subject,
                "account_id": account_id,
                "phone": phone,
                "binding_sha256": binding_sha256,
                "code_hash": domain.sms_code_hash(self.pepper, challenge_id, code),
                "status": Ch.PENDING.value,
                "attempts": 0,
                "resends": 0,
                "created_at": t,
                "last_sent_at": t,
                "expires_at": expires,
                "consumed": False,
            }
        )
        await self._send(challenge_id, phone, purpose, code)
        return {
            "challenge_id": challenge_id,
            "expires_at": expires.isoformat(),
            "phone_masked": mask_phone(phone),
            "ttl_seconds": self.s.sms_ttl_seconds,
            "resend_after_seconds": self.s.sms_resend_cooldown_seconds,
        }

    async def resend(self, challenge_id: str) -> dict[str, Any]:
        t = self.clock.now()
        cooldown = timedelta(seconds=self.s.sms_resend_cooldown_seconds)
        current = await self.challenges.get(challenge_id)
        if current is None or not allowed(CHALLENGE_TRANSITIONS, Ch(current["status"]), "resend"):
            raise Conflict(
                "challenge_closed",
                "This challenge is closed; request a new code",
                "Yêu cầu OTP này đã kết thúc, vui lòng yêu cầu mã mới",
            )
        await self._limit(
            OtpPurpose(current["purpose"]), current["phone"], current.get("account_id"), current["subject"]
        )
        code = domain.new_sms_code()
        expires = t + timedelta(seconds=self.s.sms_ttl_seconds)
        # A resend replaces the code but keeps the try counter: resending never buys more guesses.
        doc = await self.challenges.update_and_get(
            {
                "_id": challenge_id,
                "status": {"$in": sources(CHALLENGE_TRANSITIONS, "resend")},
                "last_sent_at": {"$lte": t - cooldown},
                "resends": {"$lt": self.s.sms_max_resends},
            },
            {
                "$set": {
                    "code_hash": domain.sms_code_hash(self.pepper, challenge_id, code),
                    "last_sent_at": t,
                    "expires_at": expires,
                },
                "$inc": {"resends": 1},
            },
        )
        if doc is None:
            if current["resends"] >= self.s.sms_max_resends:
                raise TooMany(
                    "resend_limit_reached",
                    "No more resends for this challenge; request a new code",
                    "Đã hết số lần gửi lại, vui lòng yêu cầu mã mới",
                    retry_after=self.s.sms_ttl_seconds,
                )
            wait = (as_utc(current["last_sent_at"]) + cooldown - t).total_seconds()
            raise too_many(
                "resend_too_soon",
                "Wait before asking for the code again",
                "Vui lòng chờ trước khi yêu cầu gửi lại mã",
                int(wait) + 1,
            )
        await self._send(challenge_id, doc["phone"], OtpPurpose(doc["purpose"]), code)
        return {
            "challenge_id": challenge_id,
            "expires_at": expires.isoformat(),
            "resends_left": self.s.sms_max_resends - doc["resends"],
            "resend_after_seconds": self.s.sms_resend_cooldown_seconds,
        }

    async def verify(self, challenge_id: str, code: str) -> dict[str, Any]:
        if not domain.is_code_shape(code):
            raise code_format()
        # Count the try before comparing: guessing is bounded even under concurrency.
        doc = await self.challenges.update_and_get(
            {
                "_id": challenge_id,
                "status": {"$in": sources(CHALLENGE_TRANSITIONS, "try")},
                "attempts": {"$lt": self.s.sms_max_attempts},
            },
            {"$inc": {"attempts": 1}},
        )
        if doc is None:
            raise invalid_otp()
        if as_utc(doc["expires_at"]) <= self.clock.now() or not hmac.compare_digest(
            doc["code_hash"], domain.sms_code_hash(self.pepper, challenge_id, code)
        ):
            if doc["attempts"] >= self.s.sms_max_attempts:
                await self.challenges.update(
                    {"_id": challenge_id, "status": {"$in": sources(CHALLENGE_TRANSITIONS, "exhaust")}},
                    {"$set": {"status": Ch.DEAD.value}},
                )
            raise invalid_otp()
        t = self.clock.now()
        verified = SmsOtpVerified(
            challenge_id=challenge_id,
            purpose=OtpPurpose(doc["purpose"]),
            subject=doc["subject"],
            account_id=doc.get("account_id"),
            phone=doc["phone"],
            binding_sha256=doc.get("binding_sha256"),
            verified_at=t,
        )
        if not await self.challenges.update(
            {"_id": challenge_id, "status": {"$in": sources(CHALLENGE_TRANSITIONS, "verify")}},
            {"$set": {"status": Ch.VERIFIED.value, "verified_at": t}},
            events=[verified],
        ):
            raise invalid_otp()  # a concurrent verification of the same code won
        return {"verified": True, "challenge_id": challenge_id, "purpose": doc["purpose"], "subject": doc["subject"]}

    async def consume(
        self, challenge_id: str, purpose: OtpPurpose, account_id: str, max_age_seconds: int = 600
    ) -> None:
        """Use up a verified challenge of this account and purpose for one internal step (single use)."""
        t = self.clock.now()
        used = await self.challenges.update(
            {
                "_id": challenge_id,
                "status": {"$in": sources(CHALLENGE_TRANSITIONS, "consume")},
                "consumed": False,
                "purpose": purpose.value,
                "account_id": account_id,
                "verified_at": {"$gte": t - timedelta(seconds=max_age_seconds)},
            },
            {"$set": {"consumed": True, "consumed_at": t}},
        )
        if not used:
            raise Forbidden(
                "sms_otp_not_verified",
                "Verify a fresh SMS code for this step first",
                "Vui lòng xác thực mã OTP SMS cho bước này trước",
            )

    async def forget_old_challenges(self, older_than: timedelta = timedelta(days=7)) -> int:
        """Challenges long past their five minutes are deleted (the store keeps any whose events are unpublished)."""
        return await self.challenges.delete_many({"created_at": {"$lt": self.clock.now() - older_than}})

    async def when_account_created_remember_phone(self, event: CloudEvent[AccountCreated]) -> None:
        a = event.data
        await self.accounts.update(
            {"_id": a.account_id},
            {"$set": {"phone": a.phone, "citizen_id": a.citizen_id}},
            caused_by=event.id,
            upsert_with={"_id": a.account_id},
        )
        self.changes.notify(a.account_id)
