"""Unlocking a signing PIN locked after five wrong tries.

The key is sealed under the master key *and* an argon2id stretch of the PIN, so nobody — not an
operator, not kyso with its master key — can set a new PIN without the old one: that is what sole
control means here. The subscriber unlocks by proving who they are again (a password entered in the
last five minutes and an SMS code of purpose ``unlock`` for this certificate, used up by the try)
and the PIN they know; the key is then sealed under the new PIN and the count starts again. A
forgotten PIN cannot be recovered: the subscriber revokes the certificate and renews it (a new key).
"""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

from kyso_contracts import CloudEvent, OtpPurpose, SmsOtpVerified
from kyso_kit.auth import Principal
from kyso_kit.clock import Clock
from kyso_kit.errors import Conflict, Invalid
from kyso_kit.store import Store
from kyso_kit.timeutil import as_utc
from kyso_signing.credentials import keywrap
from kyso_signing.credentials.custody import KeyCustody
from kyso_signing.credentials.domain import CertificateStatus as S
from kyso_signing.credentials.errors import not_in_force
from kyso_signing.credentials.records import certificates, issued_for

PROOF_TTL = timedelta(minutes=10)


class PinUnlock:
    SMS_PURPOSE: ClassVar[OtpPurpose] = OtpPurpose.UNLOCK  # the SMS codes this use case acts on

    def __init__(self, store: Store, custody: KeyCustody, clock: Clock) -> None:
        self.certs = certificates(store)
        self.custody = custody
        self.clock = clock

    async def when_sms_otp_verified_allow_unlock(self, event: CloudEvent[SmsOtpVerified]) -> None:
        e = event.data
        if e.purpose != self.SMS_PURPOSE:
            return
        cert = await self.certs.get(e.subject)
        if cert is None or cert["account_id"] != e.account_id:
            return  # an unlock code for something else (an OTP method)
        await self.certs.update(
            {"_id": cert["_id"]},
            {"$set": {"pin_unlock_proof": {"challenge_id": e.challenge_id, "verified_at": e.verified_at}}},
            caused_by=event.id,
        )

    async def unlock(self, who: Principal, certificate_id: str, current_pin: str, new_pin: str) -> None:
        problem = keywrap.pin_problem(new_pin)
        if problem:
            raise Invalid("weak_pin", problem, "Mã PIN phải gồm 6–8 chữ số và không quá dễ đoán")
        cert = await issued_for(self.certs, who, certificate_id, "sign")
        if cert["status"] not in (S.ACTIVE, S.SUSPENDED) or cert.get("key", {}).get("stage") != "pin":
            raise not_in_force()
        proof = cert.get("pin_unlock_proof")
        if not proof or as_utc(proof["verified_at"]) + PROOF_TTL < self.clock.now():
            raise Conflict(
                "otp_required",
                "Verify an SMS code of purpose 'unlock' for this certificate first",
                "Vui lòng xác thực mã OTP SMS mở khóa cho chứng thư này trước",
            )
        # the proof is used up by this try, right or wrong: guessing costs a new SMS code each time
        used = await self.certs.update(
            {"_id": certificate_id, "pin_unlock_proof.challenge_id": proof["challenge_id"]},
            {"$unset": {"pin_unlock_proof": ""}},
        )
        if not used:
            raise Conflict("otp_required", "That SMS code was used already", "Mã OTP đã được sử dụng")
        sealed = await self.custody.reseal(cert, current_pin, new_pin)
        await self.certs.update(
            {"_id": certificate_id, "key.sealed": cert["key"]["sealed"]},
            {"$set": {"key.sealed": sealed, "pin_failures": 0, "pin_changed_at": self.clock.now()}},
        )
