"""SmartOTP soft tokens: enrolment with an activation code, verification (window, drift, replay,
lock-out), resync, transaction-bound codes, and re-enrolment after a forgotten PIN."""

from __future__ import annotations

import hmac
import uuid
from datetime import timedelta
from typing import Any

from kyso_contracts import (
    OtpEnrolled,
    OtpPurpose,
    OtpTokenLocked,
    OtpTokenRevoked,
    Payload,
    SmartOtpTransactionVerified,
)
from kyso_kit.auth import Principal, ensure_may
from kyso_kit.client_address import limit_key
from kyso_kit.clock import Clock
from kyso_kit.crypto import SecretBox
from kyso_kit.errors import Conflict, Invalid
from kyso_kit.store import Doc, Store
from kyso_kit.timeutil import as_utc

from . import domain
from .errors import code_format, invalid_activation_code, invalid_otp, too_many_activation_attempts
from .settings import OtpSettings
from .sms import SmsOtp

LIVE = ["pending_first_code", "active"]
_MAX_RACES = 32
HOUR = 3600

TERMS_TEXT = {
    "2025-01": (
        "Điều khoản sử dụng SmartOTP (phiên bản 2025-01): mã SmartOTP chỉ được tạo trên thiết bị đã kích hoạt; "
        "mã PIN SmartOTP không bao giờ rời khỏi thiết bị; không chia sẻ mã OTP cho bất kỳ ai. / SmartOTP terms "
        "(2025-01): codes are generated only on the activated device; the SmartOTP PIN never leaves the device; "
        "never share a code."
    ),
}


class SmartOtp:
    def __init__(self, store: Store, settings: OtpSettings, sms: SmsOtp, clock: Clock) -> None:
        self.s = settings
        self.sms = sms
        self.clock = clock
        self.tokens = store.collection("smartotp_tokens", events=True)
        self.methods = store.collection("otp_methods", events=True)
        assert settings.master_key_b64
        self.box = SecretBox(settings.master_key_b64)
        self.policy = domain.TokenPolicy(max_failures=settings.token_max_failures)

    async def init_indexes(self) -> None:
        await self.tokens.ensure_index([("activation_hash", 1)], unique=True, sparse=True)
        await self.tokens.ensure_index([("account_id", 1), ("status", 1)])

    def terms(self) -> dict[str, str]:
        return {"version": self.s.terms_version, "text": TERMS_TEXT.get(self.s.terms_version, "")}

    # ------------------------------------------------------------------ enrolment

    async def enrol(self, account_id: str, terms_version: str, sms_challenge_id: str) -> dict[str, Any]:
        if terms_version != self.s.terms_version:
            raise Conflict(
                "terms_outdated",
                "Accept the current SmartOTP terms",
                "Vui lòng đồng ý phiên bản điều khoản SmartOTP hiện hành",
                details={"current_version": self.s.terms_version},
            )
        if await self.tokens.find_one({"account_id": account_id, "status": {"$in": LIVE}}):
            raise Conflict(
                "smartotp_already_enrolled",
                "SmartOTP is already active; use the forgotten-PIN flow to move it",
                "SmartOTP đã được kích hoạt; dùng chức năng quên mã PIN để cài lại",
            )
        await self.sms.consume(sms_challenge_id, OtpPurpose.SMARTOTP_ENROLMENT, account_id)
        return await self._issue_activation(account_id, terms_version)

    async def _issue_activation(self, account_id: str, terms_version: str) -> dict[str, Any]:
        # Any activation code handed out earlier and never used stops working.
        await self.tokens.update_many(
            {"account_id": account_id, "status": "awaiting_device"}, {"$set": {"status": "superseded"}}
        )
        methods = await self.methods.get(account_id) or {}
        operator_locked = bool((methods.get("locks") or {}).get("smartotp"))
        token_id = uuid.uuid4().hex
        code = domain.new_activation_code()
        expires = self.clock.now() + timedelta(seconds=self.s.activation_ttl_seconds)
        await self.tokens.insert(
            {
                "_id": token_id,
                "account_id": account_id,
                "terms_version": terms_version,
                "status": "awaiting_device",
                "operator_locked": operator_locked,
                "activation_hash": domain.activation_code_hash(code),
                "activation_failures": 0,
                "activation_expires_at": expires,
                "created_at": self.clock.now(),
            }
        )
        return {
            "token_id": token_id,
            "activation_code": code,
            "expires_at": expires.isoformat(),
            "ttl_seconds": self.s.activation_ttl_seconds,
        }

    async def activate(
        self, token_id: str, activation_code: str, device_id: str, client: str = "unknown"
    ) -> dict[str, Any]:
        """Bind the enrolment ``token_id`` to this device if ``activation_code`` is its code.

        Guessing is bounded by the enrolment: ``activation_max_failures`` wrong codes void it, and the
        subscriber enrols again (fresh password and SMS code). The enrolment id comes only with the
        code, to the subscriber, so nobody else can void it. Wrong codes from one address are also
        counted, as a backstop against spraying many enrolments: past the bound, that address is
        answered 429 for enrolments that already saw a wrong code (or do not exist), and a first try
        at an untouched enrolment is still answered, so a subscriber behind the same NAT as a guesser
        activates at once."""
        if not domain.is_code_shape(activation_code, domain.ACTIVATION_DIGITS):
            raise Invalid(
                "invalid_activation_code_format",
                "The activation code must be 10 digits",
                "Mã kích hoạt phải gồm 10 chữ số",
            )
        address = limit_key(client)
        backstop = await self.sms.limits.over(
            "activation-address", address, self.s.activation_failures_per_address_per_hour, HOUR
        )
        code_hash = domain.activation_code_hash(activation_code)
        for _ in range(_MAX_RACES):
            tok = await self.tokens.get(token_id)
            live = (
                tok is not None
                and tok["status"] == "awaiting_device"
                and as_utc(tok["activation_expires_at"]) > self.clock.now()
            )
            failures = int(tok.get("activation_failures", 0)) if tok is not None else 0
            if backstop is not None and (not live or failures > 0):
                raise too_many_activation_attempts(backstop)
            if tok is None or not live:
                await self.sms.limits.record("activation-address", address)
                raise invalid_activation_code(0)
            guard: Doc = {"_id": token_id, "status": "awaiting_device"}
            guard["activation_failures"] = failures if "activation_failures" in tok else {"$exists": False}
            if not hmac.compare_digest(tok["activation_hash"], code_hash):
                # counted before it is answered: of parallel wrong tries, each one answered is one counted
                failed = failures + 1
                void = failed >= self.s.activation_max_failures
                change: Doc = {"activation_failures": failed}
                if void:
                    change |= {"status": "voided", "voided_at": self.clock.now()}
                if not await self.tokens.update(guard, {"$set": change}):
                    continue
                await self.sms.limits.record("activation-address", address)
                raise invalid_activation_code(self.s.activation_max_failures - failed)
            # One atomic write binds the token to this device and stores its sealed seed: a second
            # device presenting the same code finds the status changed and fails.
            seed = domain.new_seed()
            pending = await self.tokens.update_and_get(
                guard,
                {
                    "$set": {
                        "status": "pending_first_code",
                        "device_id": device_id,
                        "drift": 0,
                        "last_step": -1,
                        "failures": 0,
                        "activated_at": self.clock.now(),
                        "seed": self.box.seal(seed, aad=f"smartotp:{token_id}"),
                    }
                },
            )
            if pending is None:
                continue
            p = self.policy
            return {
                "token_id": pending["_id"],
                "otpauth_uri": domain.key_uri(seed, f"{pending['account_id']}", p),
                "algorithm": p.algorithm,
                "digits": p.digits,
                "period": p.period,
                "transaction_suite": domain.TRANSACTION_SUITE,
                "server_time": self.clock.time(),
            }
        raise invalid_activation_code(0)  # the enrolment kept changing under this try: answer like used

    # ------------------------------------------------------------------ verification

    async def _owned(self, who: Principal, token_id: str, action: str = "write") -> Doc:
        tok = await self.tokens.get(token_id)
        if tok is None:
            raise invalid_otp()
        ensure_may(who, tok["account_id"], action)  # type: ignore[arg-type]
        return tok

    async def set_operator_lock(self, account_id: str, locked: bool) -> None:
        """Mirror the account's SmartOTP operator lock onto its tokens, so verification needs no extra read."""
        await self.tokens.update_many(
            {"account_id": account_id, "status": {"$in": [*LIVE, "awaiting_device"]}},
            {"$set": {"operator_locked": locked}},
        )

    async def verify(
        self,
        account_id: str,
        token_id: str,
        code: str,
        device_time: float | None = None,
        transaction_digest: str | None = None,
        code2: str | None = None,
        reference: str | None = None,
    ) -> dict[str, Any]:
        if not domain.is_code_shape(code, self.policy.digits) or (
            code2 is not None and not domain.is_code_shape(code2, self.policy.digits)
        ):
            raise code_format(self.policy.digits)
        server_now = self.clock.time()
        hint = domain.clock_hint(device_time, server_now, self.policy)
        for _ in range(_MAX_RACES):
            # One primary-key read, then one compare-and-set write that either records this try as a
            # failure or uses the code. The write is guarded by the state the verdict was computed
            # from, so parallel tries are counted one by one: every answer stands for a counted try,
            # and no more than ``max_failures`` wrong tries are ever answered.
            tok = await self.tokens.get(token_id)
            if tok is None:
                raise invalid_otp(**hint)
            if tok["account_id"] != account_id:
                await self._owned(Principal(account_id), token_id, "sign")  # someone else's token: 403
            if (
                tok["status"] not in LIVE
                or tok.get("failures", 0) >= self.policy.max_failures
                or tok.get("operator_locked")
                or "seed" not in tok
            ):
                raise invalid_otp(**hint)  # locked answers exactly like wrong
            seed = self.box.open(tok["seed"], aad=f"smartotp:{token_id}")
            before = domain.TokenState(tok["drift"], tok["last_step"], tok["failures"])
            if code2 is not None:
                verdict = domain.resync(seed, code, code2, server_now, before, self.policy)
            else:
                verdict = domain.verify(seed, code, server_now, before, self.policy, transaction_digest)
            guard = {
                "_id": token_id,
                "status": tok["status"],
                "last_step": tok["last_step"],
                "failures": tok["failures"],
                "operator_locked": {"$ne": True},
            }
            if not verdict.accepted:
                if not await self.tokens.update(guard, {"$inc": {"failures": 1}}):
                    continue  # another try changed the token first: evaluate again on the new state
                if tok["failures"] + 1 >= self.policy.max_failures:
                    await self._announce_lock({**tok, "failures": tok["failures"] + 1})
                raise invalid_otp(**hint)
            events: list[Payload] = []
            if tok["status"] == "pending_first_code":
                events.append(
                    OtpEnrolled(
                        token_id=token_id,
                        account_id=account_id,
                        device_id=tok["device_id"],
                        algorithm=self.policy.algorithm,
                        digits=self.policy.digits,
                        period_seconds=self.policy.period,
                        enrolled_at=self.clock.now(),
                    )
                )
            st = verdict.state
            if transaction_digest is not None:
                # the second factor of a signature confirmation: signing learns of it from this event
                events.append(
                    SmartOtpTransactionVerified(
                        token_id=token_id,
                        account_id=account_id,
                        transaction_digest=transaction_digest,
                        reference=reference,
                        time_step=st.last_step,
                        verified_at=self.clock.now(),
                    )
                )
            # Of two concurrent uses of one code exactly one wins; the other re-reads and is a replay.
            if await self.tokens.update(
                guard,
                {
                    "$set": {
                        "last_step": st.last_step,
                        "drift": st.drift,
                        "failures": 0,
                        "status": "active",
                        "last_used_at": self.clock.now(),
                    }
                },
                events=events,
            ):
                return {"valid": True, "token_id": token_id, "status": "active", "drift_steps": st.drift}
        raise invalid_otp(**hint)  # the token kept changing under this try: answer like wrong

    async def _announce_lock(self, tok: Doc) -> None:
        t = self.clock.now()
        locked = OtpTokenLocked(
            token_id=tok["_id"], account_id=tok["account_id"], failures=tok["failures"], locked_at=t
        )
        await self.tokens.update(
            {"_id": tok["_id"], "lock_announced": {"$ne": True}},
            {"$set": {"lock_announced": True, "locked_at": t}},
            events=[locked],
        )

    async def status(self, who: Principal, token_id: str) -> dict[str, Any]:
        tok = await self._owned(who, token_id, "read")
        return {
            "token_id": token_id,
            "status": tok["status"],
            "device_id": tok.get("device_id"),
            "locked": tok.get("failures", 0) >= self.policy.max_failures,
            "drift_steps": tok.get("drift", 0),
            "period": self.policy.period,
        }

    async def active_token(self, account_id: str) -> Doc | None:
        return await self.tokens.find_one({"account_id": account_id, "status": "active"})

    # ------------------------------------------------------------------ forgotten PIN, unlock

    async def reset_forgotten_pin(self, account_id: str, sms_challenge_id: str) -> dict[str, Any]:
        """Credential + SMS OTP → the old token is revoked → a new activation code to enrol again."""
        await self.sms.consume(sms_challenge_id, OtpPurpose.PIN_RESET, account_id)
        revoked = await self.revoke_all(account_id, "pin_forgotten")
        out = await self._issue_activation(account_id, self.s.terms_version)
        return {**out, "revoked_token_ids": revoked}

    async def revoke_all(self, account_id: str, reason: str) -> list[str]:
        revoked = []
        for tok in await self.tokens.find({"account_id": account_id, "status": {"$in": LIVE}}, projection={"_id": 1}):
            t = self.clock.now()
            event = OtpTokenRevoked(token_id=tok["_id"], account_id=account_id, reason=reason, revoked_at=t)  # type: ignore[arg-type]
            if await self.tokens.update(
                {"_id": tok["_id"], "status": {"$in": LIVE}},
                {"$set": {"status": "revoked", "revoked_at": t, "revoked_reason": reason}},
                events=[event],
            ):
                revoked.append(tok["_id"])
        return revoked

    async def clear_failures(self, account_id: str) -> None:
        await self.tokens.update_many(
            {"account_id": account_id, "status": {"$in": LIVE}}, {"$set": {"failures": 0, "lock_announced": False}}
        )
