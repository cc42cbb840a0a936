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


def invalid_activation_code(attempts_left: int) -> Rejected:
    """Wrong, used, expired, superseded and voided look alike; ``attempts_left`` 0 means: enrol again."""
    return Rejected(
        "invalid_activation_code",
        "The activation code is invalid, used or expired"
        + ("" if attempts_left else "; start the SmartOTP enrolment again"),
        "Mã kích hoạt không hợp lệ, đã dùng hoặc đã hết hạn"
        + ("" if attempts_left else "; vui lòng đăng ký lại SmartOTP"),
        details={"attempts_left": attempts_left},
    )


def too_many_activation_attempts(retry_after: float) -> TooMany:
    return TooMany(
        "too_many_activation_attempts",
        "Too many wrong activation codes from this network; try again later",
        "Nhập sai mã kích hoạt quá nhiều lần từ mạng này, vui lòng thử lại sau",
        retry_after,
    )
