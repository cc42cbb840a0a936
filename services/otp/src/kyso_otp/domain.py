"""OTP rules with no I/O: SMS codes, TOTP windows with drift and replay protection."""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

import pyotp

SMS_DIGITS = 6
TOTP_DIGEST = "SHA256"
TOTP_DIGITS = 6
TOTP_PERIOD = 30
SEED_BYTES = 32  # 256 bits; Circular 50 / RFC 4226 ask for at least 160
MAX_DRIFT_STEPS = 10


def new_sms_code() -> str:
    return f"{secrets.randbelow(10**SMS_DIGITS):0{SMS_DIGITS}d}"


def sms_code_hash(pepper: bytes, challenge_id: str, code: str) -> str:
    """Keyed hash: a stolen database does not give away six-digit codes by brute force."""
    return hmac.new(pepper, f"{challenge_id}:{code}".encode(), hashlib.sha256).hexdigest()


def is_code_shape(code: str, digits: int = SMS_DIGITS) -> bool:
    return len(code) == digits and code.isascii() and code.isdigit()


def new_activation_code() -> str:
    """Ten digits, shown to the user once, typed on the new device (single use, short expiry)."""
    return f"{secrets.randbelow(10**10):010d}"


def activation_code_hash(code: str) -> str:
    return hashlib.sha256(f"kyso-activation:{code}".encode()).hexdigest()


def new_seed() -> bytes:
    return secrets.token_bytes(SEED_BYTES)


def seed_b32(seed: bytes) -> str:
    return base64.b32encode(seed).decode().rstrip("=")


def _totp(seed: bytes) -> pyotp.TOTP:
    return pyotp.TOTP(
        seed_b32(seed), digits=TOTP_DIGITS, digest=getattr(hashlib, TOTP_DIGEST.lower()), interval=TOTP_PERIOD
    )


def key_uri(seed: bytes, account_label: str, issuer: str = "kyso") -> str:
    return _totp(seed).provisioning_uri(name=account_label, issuer_name=issuer)


def time_step(unix_time: float) -> int:
    return int(unix_time // TOTP_PERIOD)


def code_at_step(seed: bytes, step: int) -> str:
    return _totp(seed).generate_otp(step)


@dataclass(frozen=True)
class TotpMatch:
    step: int
    drift: int


def match_totp(seed: bytes, code: str, unix_time: float, drift: int, last_step: int) -> TotpMatch | None:
    """Accept a code one step either side of (now + learned drift), never at or before ``last_step``."""
    if not is_code_shape(code, TOTP_DIGITS):
        return None
    now = time_step(unix_time)
    centre = now + drift
    found: TotpMatch | None = None
    for step in (centre - 1, centre, centre + 1):
        if step <= last_step:
            continue
        if hmac.compare_digest(code_at_step(seed, step), code):
            found = TotpMatch(step=step, drift=max(-MAX_DRIFT_STEPS, min(MAX_DRIFT_STEPS, step - now)))
    return found
