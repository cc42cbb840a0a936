"""The SmartOTP terms a subscriber accepts when enrolling, by version (the version is a setting)."""

from __future__ import annotations

TERMS_TEXT = {
    "2025-01": (
        "Điều khoản sử dụng SmartOTP (phiên bản 2025-01): mã SmartOTP chỉ được tạo trên thiết bị đã kích hoạt; "
        "mã PIN SmartOTP không bao giờ rời khỏi thiết bị; không chia sẻ mã OTP cho bất kỳ ai. / SmartOTP terms "
        "(2025-01): codes are generated only on the activated device; the SmartOTP PIN never leaves the device; "
        "never share a code."
    ),
}
