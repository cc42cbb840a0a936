"""SmartOTP soft tokens: enrolment with an activation code, verification (window, drift, replay,
lock-out), resync, transaction-bound codes, and re-enrolment after a forgotten PIN."""

from __future__ import annotations

import hmac
import uuid
from datetime import datetime, timedelta
from typing import Any, Literal

from kyso_contracts import (
    OtpEnrolled,
    OtpPurpose,
    OtpTokenLocked,
    OtpTokenRevoked,
    Payload,
    SmartOtpTransactionVerified,
)
from kyso_kit.client_address import limit_key
from kyso_kit.clock import Clock
from kyso_kit.crypto import SecretBox
from kyso_kit.errors import Conflict, Invalid
from kyso_kit.machines import sources, step
from kyso_kit.policy import Action, Principal, ensure_may
from kyso_kit.records import Contended, Decision, Repository, decided
from kyso_kit.store import Doc, Store

from . import domain
from .domain import TOKEN_TRANSITIONS, TokenStatus
from .errors import code_format, invalid_activation_code, invalid_otp, too_many_activation_attempts
from .records import Token
from .settings import OtpSettings
from .sms import SmsOtp
from .terms import TERMS_TEXT

RevokeReason = Literal["pin_forgotten", "re_enrolment", "operator"]
"""Why a token is revoked: the contract's literals (``OtpTokenRevoked.reason``)."""
LIVE = domain.LIVE_TOKEN
AWAITING = sources(TOKEN_TRANSITIONS, "activate")
HOUR = 3600


class SmartOtp:
    def __init__(self, store: Store, settings: OtpSettings, sms: SmsOtp, clock: Clock) -> None:
        self.s = settings
        self.sms = sms
        self.clock = clock
        self.records = Repository(store, "smartotp_tokens", Token, events=True, attempts=32)
        self.tokens = self.records.aggregates
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
            {"account_id": account_id, "status": {"$in": sources(TOKEN_TRANSITIONS, "supersede")}},
            {"$set": {"status": TokenStatus.SUPERSEDED.value}},
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
                "status": TokenStatus.AWAITING_DEVICE.value,
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
        now, seed = self.clock.now(), domain.new_seed()
        sealed = self.box.seal(seed, aad=f"smartotp:{token_id}")
        outcome: list[str] = []  # what the decision that was written said

        def decide(tok: Token) -> Decision[Token] | None:
            live = tok.status in AWAITING and tok.activation_expires_at is not None and tok.activation_expires_at > now
            if backstop is not None and (not live or tok.activation_failures > 0):
                raise too_many_activation_attempts(backstop)
            if not live or tok.activation_hash is None:
                outcome.append("closed")
                return None
            if not hmac.compare_digest(tok.activation_hash, code_hash):
                # counted before it is answered: of parallel wrong tries, each one answered is one counted
                outcome.append("wrong")
                failed = tok.activation_failures + 1
                void = failed >= self.s.activation_max_failures
                to = TokenStatus.VOIDED if void else TokenStatus(tok.status)
                status = step(TOKEN_TRANSITIONS, "SmartOTP token", TokenStatus(tok.status), "fail_activation", to)
                voided = {"voided_at": now} if void else {}
                return decided(tok.model_copy(update={"activation_failures": failed, "status": status, **voided}))
            # One write binds the token to this device and stores its sealed seed: a second device
            # presenting the same code finds the token changed, decides again and finds it bound.
            outcome.append("bound")
            status = step(TOKEN_TRANSITIONS, "SmartOTP token", TokenStatus(tok.status), "activate")
            bound = {"status": status, "device_id": device_id, "drift": 0, "last_step": -1, "failures": 0}
            return decided(tok.model_copy(update={**bound, "activated_at": now, "seed": sealed}))

        try:
            done = await self.records.modify(token_id, decide)
        except Contended:
            raise invalid_activation_code(0) from None  # the enrolment kept changing under this try: as used
        if done is None and backstop is not None:
            raise too_many_activation_attempts(backstop)
        if done is None or outcome[-1] == "closed":
            await self.sms.limits.record("activation-address", address)
            raise invalid_activation_code(0)
        if outcome[-1] == "wrong":
            await self.sms.limits.record("activation-address", address)
            raise invalid_activation_code(self.s.activation_max_failures - done.record.activation_failures)
        p = self.policy
        return {
            "token_id": done.record.id,
            "otpauth_uri": domain.key_uri(seed, f"{done.record.account_id}", p),
            "algorithm": p.algorithm,
            "digits": p.digits,
            "period": p.period,
            "transaction_suite": domain.TRANSACTION_SUITE,
            "server_time": self.clock.time(),
        }

    # ------------------------------------------------------------------ verification

    async def _owned(self, who: Principal, token_id: str, action: Action = "write") -> Doc:
        tok = await self.tokens.get(token_id)
        if tok is None:
            raise invalid_otp()
        ensure_may(who, tok["account_id"], action)
        return tok

    async def set_operator_lock(self, account_id: str, locked: bool) -> None:
        """Mirror the account's SmartOTP operator lock onto its tokens, so verification needs no extra read."""
        await self.tokens.update_many(
            {"account_id": account_id, "status": {"$in": sources(TOKEN_TRANSITIONS, "lock_by_operator")}},
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
        server_now, now = self.clock.time(), self.clock.now()
        hint = domain.clock_hint(device_time, server_now, self.policy)
        verdicts: list[domain.Verdict] = []  # what the decision that was written said

        def decide(tok: Token) -> Decision[Token]:
            # One primary-key read, then one write guarded by the revision that was read, which either
            # records this try as a failure or uses the code: parallel tries are counted one by one, every
            # answer stands for a counted try, and no more than ``max_failures`` wrong tries are answered.
            ensure_may(Principal(account_id), tok.account_id, "sign")  # someone else's token: 403
            status = TokenStatus(tok.status)
            if (
                status not in LIVE
                or tok.failures >= self.policy.max_failures
                or tok.operator_locked
                or tok.seed is None
            ):
                raise invalid_otp(**hint)  # locked answers exactly like wrong
            seed = self.box.open(tok.seed, aad=f"smartotp:{token_id}")
            before = domain.TokenState(tok.drift, tok.last_step, tok.failures)
            if code2 is not None:
                verdict = domain.resync(seed, code, code2, server_now, before, self.policy)
            else:
                verdict = domain.verify(seed, code, server_now, before, self.policy, transaction_digest)
            verdicts.append(verdict)
            if not verdict.accepted:
                step(TOKEN_TRANSITIONS, "SmartOTP token", status, "fail")
                return decided(tok.model_copy(update={"failures": tok.failures + 1}))
            st = verdict.state
            used = {"status": step(TOKEN_TRANSITIONS, "SmartOTP token", status, "use"), "failures": 0}
            used |= {"last_step": st.last_step, "drift": st.drift, "last_used_at": now}
            # Of two concurrent uses of one code exactly one wins; the other decides again: a replay.
            return decided(
                tok.model_copy(update=used), *self._use_events(tok, account_id, st, transaction_digest, reference, now)
            )

        try:
            done = await self.records.modify(token_id, decide)
        except Contended:
            raise invalid_otp(**hint) from None  # the token kept changing under this try: answer like wrong
        if done is None:
            raise invalid_otp(**hint)
        if not verdicts[-1].accepted:
            if done.record.failures >= self.policy.max_failures:
                await self._announce_lock(done.record.to_doc())
            raise invalid_otp(**hint)
        return {"valid": True, "token_id": token_id, "status": "active", "drift_steps": done.record.drift}

    def _use_events(
        self,
        tok: Token,
        account_id: str,
        st: domain.TokenState,
        transaction_digest: str | None,
        reference: str | None,
        now: datetime,
    ) -> list[Payload]:
        """What a code that is used announces: the enrolment (its first code), and the second factor of a
        signature confirmation (signing learns of it from ``SmartOtpTransactionVerified``)."""
        events: list[Payload] = []
        if tok.status == TokenStatus.PENDING_FIRST_CODE:
            assert tok.device_id is not None
            events.append(
                OtpEnrolled(
                    token_id=tok.id,
                    account_id=account_id,
                    device_id=tok.device_id,
                    algorithm=self.policy.algorithm,
                    digits=self.policy.digits,
                    period_seconds=self.policy.period,
                    enrolled_at=now,
                )
            )
        if transaction_digest is not None:
            events.append(
                SmartOtpTransactionVerified(
                    token_id=tok.id,
                    account_id=account_id,
                    transaction_digest=transaction_digest,
                    reference=reference,
                    time_step=st.last_step,
                    verified_at=now,
                )
            )
        return events

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
        return await self.tokens.find_one({"account_id": account_id, "status": TokenStatus.ACTIVE.value})

    # ------------------------------------------------------------------ forgotten PIN, unlock

    async def reset_forgotten_pin(self, account_id: str, sms_challenge_id: str) -> dict[str, Any]:
        """Credential + SMS OTP → the old token is revoked → a new activation code to enrol again."""
        await self.sms.consume(sms_challenge_id, OtpPurpose.PIN_RESET, account_id)
        revoked = await self.revoke_all(account_id, "pin_forgotten")
        out = await self._issue_activation(account_id, self.s.terms_version)
        return {**out, "revoked_token_ids": revoked}

    async def revoke_all(self, account_id: str, reason: RevokeReason) -> list[str]:
        revoked = []
        for tok in await self.tokens.find({"account_id": account_id, "status": {"$in": LIVE}}, projection={"_id": 1}):
            t = self.clock.now()
            event = OtpTokenRevoked(token_id=tok["_id"], account_id=account_id, reason=reason, revoked_at=t)
            if await self.tokens.update(
                {"_id": tok["_id"], "status": {"$in": sources(TOKEN_TRANSITIONS, "revoke")}},
                {"$set": {"status": TokenStatus.REVOKED.value, "revoked_at": t, "revoked_reason": reason}},
                events=[event],
            ):
                revoked.append(tok["_id"])
        return revoked

    async def clear_failures(self, account_id: str) -> None:
        await self.tokens.update_many(
            {"account_id": account_id, "status": {"$in": LIVE}}, {"$set": {"failures": 0, "lock_announced": False}}
        )
