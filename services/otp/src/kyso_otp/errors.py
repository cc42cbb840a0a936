"""Errors of the otp service. "Wrong", "expired", "used" and "locked" deliberately look the same."""

from __future__ import annotations

from typing import Any

from kyso_kit.errors import ApiError


def invalid_otp(**details: Any) -> ApiError:
    return ApiError(
        400, "invalid_otp", "The code is invalid or expired", "Mã OTP không đúng hoặc đã hết hạn", details=details
    )


def too_many(code: str, message_en: str, message_vi: str, retry_after: int) -> ApiError:
    retry_after = max(1, int(retry_after))
    return ApiError(
        429,
        code,
        message_en,
        message_vi,
        headers={"Retry-After": str(retry_after)},
        details={"retry_after_seconds": retry_after},
    )


def method_locked(method: str) -> ApiError:
    return ApiError(
        403,
        "method_locked",
        f"The {method} method is locked for this account",
        "Phương thức xác thực này đang bị khóa",
        details={"method": method},
    )


def code_format(digits: int = 6) -> ApiError:
    return ApiError(422, "invalid_code_format", f"The code must be {digits} digits", f"Mã OTP phải gồm {digits} chữ số")
