"""OTP rules with no I/O: SMS codes, and the SmartOTP token as a pure state machine
(window, learned drift, replay, fail counter and lock, resync, transaction-bound codes)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace
from enum import StrEnum
from urllib.parse import quote, urlencode

import pyotp

from kyso_contracts import otp_algorithms as algorithms
from kyso_contracts.otp_algorithms import Algorithm
from kyso_kit.machines import sources

SMS_DIGITS = 6
SEED_BYTES = 32  # 256 bits; RFC 4226 §4 asks for at least 128, Circular 50 / our policy at least 160
ACTIVATION_DIGITS = 10

# OCRA suite of transaction-bound codes: SHA-256 HMAC, 6 digits, a 32-byte (64 hex) question that is
# the transaction digest, and the 30-second time step.
TRANSACTION_SUITE = "OCRA-1:HOTP-SHA256-6:QH64-T30S"
DIGESTS = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}


# --------------------------------------------------------------------------- the two state machines


class ChallengeStatus(StrEnum):
    """An SMS challenge::

    pending ──verify──────▶ verified      (the right code in time; SmsOtpVerified; then used once: ``consumed``)
    pending ──exhaust─────▶ dead          (the last allowed try was wrong)
    pending ──undeliver───▶ undeliverable (the SMS could not be sent: nobody can guess at it either)
    pending ──resend──────▶ pending       (a new code; the try counter stays)
    """

    PENDING = "pending"
    VERIFIED = "verified"
    DEAD = "dead"
    UNDELIVERABLE = "undeliverable"


CHALLENGE_TRANSITIONS: dict[tuple[ChallengeStatus, str], frozenset[ChallengeStatus]] = {
    (ChallengeStatus.PENDING, "verify"): frozenset({ChallengeStatus.VERIFIED}),
    (ChallengeStatus.PENDING, "exhaust"): frozenset({ChallengeStatus.DEAD}),
    (ChallengeStatus.PENDING, "undeliver"): frozenset({ChallengeStatus.UNDELIVERABLE}),
    (ChallengeStatus.PENDING, "resend"): frozenset({ChallengeStatus.PENDING}),
    (ChallengeStatus.PENDING, "try"): frozenset({ChallengeStatus.PENDING}),
    (ChallengeStatus.VERIFIED, "consume"): frozenset({ChallengeStatus.VERIFIED}),
}


class TokenStatus(StrEnum):
    """A SmartOTP token::

        awaiting_device ──activate──▶ pending_first_code ──use──▶ active ──use──▶ active
        awaiting_device ──void──────▶ voided        (too many wrong activation codes)
        awaiting_device ──supersede─▶ superseded    (a newer activation code was handed out)
        pending_first_code / active ──revoke──▶ revoked (forgotten PIN, method change, operator)

    A wrong code (``fail``) keeps the status and counts; ``max_failures`` of them lock the token.
    """

    AWAITING_DEVICE = "awaiting_device"
    PENDING_FIRST_CODE = "pending_first_code"
    ACTIVE = "active"
    SUPERSEDED = "superseded"
    VOIDED = "voided"
    REVOKED = "revoked"


_T = TokenStatus
TOKEN_TRANSITIONS: dict[tuple[TokenStatus, str], frozenset[TokenStatus]] = {
    (_T.AWAITING_DEVICE, "activate"): frozenset({_T.PENDING_FIRST_CODE}),
    (_T.AWAITING_DEVICE, "fail_activation"): frozenset({_T.AWAITING_DEVICE, _T.VOIDED}),
    (_T.AWAITING_DEVICE, "supersede"): frozenset({_T.SUPERSEDED}),
    (_T.AWAITING_DEVICE, "lock_by_operator"): frozenset({_T.AWAITING_DEVICE}),
    (_T.PENDING_FIRST_CODE, "use"): frozenset({_T.ACTIVE}),
    (_T.ACTIVE, "use"): frozenset({_T.ACTIVE}),
    (_T.PENDING_FIRST_CODE, "fail"): frozenset({_T.PENDING_FIRST_CODE}),
    (_T.ACTIVE, "fail"): frozenset({_T.ACTIVE}),
    (_T.PENDING_FIRST_CODE, "revoke"): frozenset({_T.REVOKED}),
    (_T.ACTIVE, "revoke"): frozenset({_T.REVOKED}),
    (_T.PENDING_FIRST_CODE, "lock_by_operator"): frozenset({_T.PENDING_FIRST_CODE}),
    (_T.ACTIVE, "lock_by_operator"): frozenset({_T.ACTIVE}),
}

LIVE_TOKEN = sources(TOKEN_TRANSITIONS, "use")
"""Tokens that accept a code: those the table lets ``use`` (pending its first code, or active)."""


# --------------------------------------------------------------------------- SMS


def new_sms_code() -> str:
    return f"{secrets.randbelow(10**SMS_DIGITS):0{SMS_DIGITS}d}"


def sms_code_hash(pepper: bytes, challenge_id: str, code: str) -> str:
    """Keyed hash: a stolen database does not give away six-digit codes by brute force."""
    return hmac.new(pepper, f"{challenge_id}:{code}".encode(), hashlib.sha256).hexdigest()


def is_code_shape(code: str, digits: int = SMS_DIGITS) -> bool:
    return len(code) == digits and code.isascii() and code.isdigit()


def new_activation_code() -> str:
    """Ten digits, shown to the user once, typed on the new device (single use, short expiry)."""
    return f"{secrets.randbelow(10**ACTIVATION_DIGITS):0{ACTIVATION_DIGITS}d}"


def activation_code_hash(code: str) -> str:
    return hashlib.sha256(f"kyso-activation:{code}".encode()).hexdigest()


# --------------------------------------------------------------------------- SmartOTP token


@dataclass(frozen=True)
class TokenPolicy:
    algorithm: Algorithm = "SHA256"
    digits: int = 6
    period: int = 30
    window: int = 1  # steps either side of (now + drift)
    max_drift: int = 10  # steps (5 minutes) the learned drift may reach
    resync_search: int = 20  # steps either side searched by a two-code resync
    max_failures: int = 5


@dataclass(frozen=True)
class TokenState:
    drift: int = 0
    last_step: int = -1
    failures: int = 0

    def locked(self, policy: TokenPolicy) -> bool:
        return self.failures >= policy.max_failures


@dataclass(frozen=True)
class Verdict:
    accepted: bool
    state: TokenState
    step: int | None = None


def new_seed() -> bytes:
    return secrets.token_bytes(SEED_BYTES)


def seed_b32(seed: bytes) -> str:
    return base64.b32encode(seed).decode().rstrip("=")


def key_uri(seed: bytes, account_label: str, policy: TokenPolicy, issuer: str = "kyso") -> str:
    """The Key Uri Format (otpauth://totp/...) understood by authenticator apps and our SDK."""
    query = urlencode({"secret": seed_b32(seed), "issuer": issuer, "algorithm": policy.algorithm,
                       "digits": policy.digits, "period": policy.period})  # fmt: skip
    return f"otpauth://totp/{quote(issuer)}:{quote(account_label)}?{query}"


def transaction_digest_ok(digest: str) -> bool:
    return len(digest) == 64 and all(c in "0123456789abcdef" for c in digest)


def hotp(seed: bytes, counter: int, policy: TokenPolicy) -> str:
    """RFC 4226 HOTP (RFC 6238 TOTP when ``counter`` is the time step), by pyotp."""
    return str(pyotp.HOTP(seed_b32(seed), digits=policy.digits, digest=DIGESTS[policy.algorithm]).at(counter))


def code_at(seed: bytes, step: int, policy: TokenPolicy, transaction_digest: str | None = None) -> str:
    if transaction_digest is None:
        return hotp(seed, step, policy)
    return algorithms.ocra(TRANSACTION_SUITE, seed, transaction_digest, time_steps=step)


def _clamp(v: int, bound: int) -> int:
    return max(-bound, min(bound, v))


def _learned_drift(step: int, now: int, policy: TokenPolicy) -> int:
    """Drift is learned only when the device is outside the normal ±window tolerance.

    A code accepted one step off is ordinary (network latency, a step boundary crossed in flight);
    learning -1 from it would make the next code of a correct clock fail at the other edge.
    """
    offset = step - now
    return _clamp(offset, policy.max_drift) if abs(offset) > policy.window else 0


def verify(
    seed: bytes,
    code: str,
    unix_time: float,
    state: TokenState,
    policy: TokenPolicy,
    transaction_digest: str | None = None,
) -> Verdict:
    """Accept a code one step either side of (now + learned drift), never at or before the last used step.

    A locked token rejects everything without looking at the code. Any rejection counts as a failure.
    """
    if state.locked(policy):
        return Verdict(False, state)
    now = algorithms.time_step(unix_time, policy.period)
    centre = now + state.drift
    if is_code_shape(code, policy.digits):
        for step in range(centre - policy.window, centre + policy.window + 1):
            if step > state.last_step and hmac.compare_digest(code_at(seed, step, policy, transaction_digest), code):
                return Verdict(True, TokenState(_learned_drift(step, now, policy), step, 0), step)
    return Verdict(False, replace(state, failures=state.failures + 1))


def resync(seed: bytes, code1: str, code2: str, unix_time: float, state: TokenState, policy: TokenPolicy) -> Verdict:
    """Two consecutive codes found anywhere within ±resync_search steps re-learn the drift (privacyIDEA-style)."""
    if state.locked(policy):
        return Verdict(False, state)
    now = algorithms.time_step(unix_time, policy.period)
    if is_code_shape(code1, policy.digits) and is_code_shape(code2, policy.digits):
        for step in range(now - policy.resync_search, now + policy.resync_search):
            if step <= state.last_step:
                continue
            if hmac.compare_digest(code_at(seed, step, policy), code1) and hmac.compare_digest(
                code_at(seed, step + 1, policy), code2
            ):
                return Verdict(True, TokenState(_learned_drift(step + 1, now, policy), step + 1, 0), step + 1)
    return Verdict(False, replace(state, failures=state.failures + 1))


def clock_hint(device_time: float | None, server_time: float, policy: TokenPolicy) -> dict[str, object]:
    """What a client may learn after a rejected code: whether its clock is off, never whether the code was right."""
    hint: dict[str, object] = {"server_time": server_time, "period": policy.period}
    if device_time is not None:
        skew = device_time - server_time
        hint["clock_skew_seconds"] = round(skew, 1)
        hint["time_sync_recommended"] = abs(skew) > policy.period / 2
    return hint
