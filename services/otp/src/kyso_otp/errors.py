"""Errors of the otp service. "Wrong", "expired", "used" and "locked" deliberately look the same."""

from __future__ import annotations

from typing import Any

from kyso_contracts.types import FIELD_ERRORS
from kyso_kit.errors import Forbidden, Invalid, Rejected, TooMany


def invalid_otp(**details: Any) -> Rejected:
    return Rejected(
        "invalid_otp", "The code is invalid or expired", "Mã OTP không đúng hoặc đã hết hạn", details=details
    )


def too_many(code: str, message_en: str, message_vi: str, retry_after: float) -> TooMany:
    return TooMany(code, message_en, message_vi, retry_after)


def method_locked(method: str) -> Forbidden:
    return Forbidden(
        "method_locked",
        f"The {method} method is locked for this account",
        "Phương thức xác thực này đang bị khóa",
        details={"method": method},
    )


def code_format(digits: int = 6) -> Invalid:
    en, vi = FIELD_ERRORS["invalid_code_format"]
    return Invalid("invalid_code_format", en.replace("6", str(digits)), vi.replace("6", str(digits)))
