"""OCRA (RFC 6287), implemented from the RFC (standard library only, no state), and the RFC 6238
time step. HOTP and TOTP come from ``pyotp`` (RFC 4226 / RFC 6238) in the otp service and the device
SDK; no maintained library implements OCRA, so it lives here, checked against RFC 6287's vectors.

Shared by the otp service and the device SDK so both compute codes identically.

* OCRA — RFC 6287 (challenge-response); we use it for transaction-bound codes: the "question" is the
  SHA-256 digest of the transaction and the time step is part of the input, so a code verifies only
  for that exact transaction in that time window (the dynamic linking of PSD2 / Circular 50's
  "advanced" soft OTP).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from typing import Literal

Algorithm = Literal["SHA1", "SHA256", "SHA512"]
_DIGESTS = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}


def _truncate(mac: bytes, digits: int) -> str:
    offset = mac[-1] & 0x0F
    binary = int.from_bytes(mac[offset : offset + 4], "big") & 0x7FFFFFFF
    return str(binary % 10**digits).zfill(digits)


def time_step(unix_time: float, period: int = 30, t0: int = 0) -> int:
    """RFC 6238 §4.2: T = floor((now - T0) / X)."""
    return int((unix_time - t0) // period)


# --------------------------------------------------------------------------- OCRA (RFC 6287)

_SUITE = re.compile(
    r"^OCRA-1:HOTP-(?P<alg>SHA1|SHA256|SHA512)-(?P<digits>\d{1,2}):"
    r"(?P<c>C-)?Q(?P<qfmt>[ANH])(?P<qlen>\d{2})(?:-(?P<p>PSHA1|PSHA256|PSHA512))?(?:-S(?P<s>\d{3}))?"
    r"(?:-T(?P<tn>\d{1,2})(?P<tu>[SMH]))?$"
)


@dataclass(frozen=True)
class OcraSuite:
    text: str
    algorithm: Algorithm
    digits: int
    counter: bool
    question_format: str
    question_length: int
    time_step_seconds: int | None

    @classmethod
    def parse(cls, text: str) -> OcraSuite:
        m = _SUITE.match(text)
        if not m or m.group("p") or m.group("s"):
            raise ValueError(f"unsupported OCRA suite {text!r}")
        tn = m.group("tn")
        step = int(tn) * {"S": 1, "M": 60, "H": 3600}[m.group("tu")] if tn else None
        alg: Algorithm = m.group("alg")  # type: ignore[assignment]
        return cls(text, alg, int(m.group("digits")), bool(m.group("c")), m.group("qfmt"), int(m.group("qlen")), step)


def _question_bytes(suite: OcraSuite, question: str) -> bytes:
    if len(question) > suite.question_length and suite.question_format != "N":
        raise ValueError("question too long for the suite")
    if suite.question_format == "N":
        q = bytes.fromhex(f"{int(question):X}".ljust(256, "0")[:256]) if question else b""
        return q.ljust(128, b"\0")
    if suite.question_format == "H":
        return bytes.fromhex(question.ljust(256, "0")[:256])
    return question.encode().ljust(128, b"\0")


def ocra(
    suite_text: str, key: bytes, question: str, *, counter: int | None = None, time_steps: int | None = None
) -> str:
    """RFC 6287 §5: OCRA(K, {[C] | Q | [P | S | T]})."""
    suite = OcraSuite.parse(suite_text)
    data = suite.text.encode() + b"\0"
    if suite.counter:
        if counter is None:
            raise ValueError("suite needs a counter")
        data += counter.to_bytes(8, "big")
    data += _question_bytes(suite, question)
    if suite.time_step_seconds is not None:
        if time_steps is None:
            raise ValueError("suite needs a time step")
        data += time_steps.to_bytes(8, "big")
    mac = hmac.new(key, data, _DIGESTS[suite.algorithm]).digest()
    return _truncate(mac, suite.digits)
