"""Constrained value types shared by payloads."""

from collections.abc import Callable
from datetime import datetime
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import AfterValidator, Field, StringConstraints, WithJsonSchema
from pydantic_core import PydanticCustomError


def _aware(v: datetime) -> datetime:
    if v.tzinfo is None:
        raise ValueError("datetime must be timezone-aware")
    return v


Id = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]
CitizenId = Annotated[str, StringConstraints(pattern=r"^\d{12}$")]
"""Vietnamese citizen identity number (CCCD): 12 digits."""
Phone = Annotated[str, StringConstraints(pattern=r"^\+84[1-9]\d{8}$")]
"""Vietnamese mobile number in E.164 form."""
Email = Annotated[str, StringConstraints(max_length=254, pattern=r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")]
Sha256Hex = Annotated[str, StringConstraints(pattern=r"^[0-9a-f]{64}$")]
Vnd = Annotated[int, Field(gt=0, le=10_000_000_000, description="Amount in Vietnamese đồng (integer)")]
ValidityYears = Annotated[int, Field(ge=1, le=3, description="Decree 23/2025: at most 3 years")]
UtcDateTime = Annotated[datetime, AfterValidator(_aware)]


class OtpPurpose(StrEnum):
    PHONE_VERIFICATION = "phone_verification"
    CONTRACT_CONSENT = "contract_consent"
    SMARTOTP_ENROLMENT = "smartotp_enrolment"
    METHOD_CHANGE = "method_change"
    PIN_RESET = "pin_reset"
    UNLOCK = "unlock"
    CERTIFICATE_REVOCATION = "certificate_revocation"
    SIGNATURE_CONFIRMATION = "signature_confirmation"


KeyAlgorithm = Literal["ecdsa-p256", "ecdsa-p384", "rsa-3072-pss"]
"""Subscriber key algorithms (Circular 15/2025: ECDSA ≥ 256 bits, or RSA ≥ 2048 used with PSS)."""


# --------------------------------------------------------------------------- request field types
# Shared by every service's HTTP API, so a rule the server enforces is written once and shows in
# each OpenAPI document. A field that fails one of these answers 422 with the field's own error code.

FIELD_ERRORS: dict[str, tuple[str, str]] = {
    "invalid_code_format": ("The code must be 6 digits", "Mã OTP phải gồm 6 chữ số"),
    "invalid_activation_code_format": ("The activation code must be 10 digits", "Mã kích hoạt phải gồm 10 chữ số"),
    "weak_pin": ("The PIN must be 6 to 8 digits", "Mã PIN phải gồm 6–8 chữ số và không quá dễ đoán"),
    "invalid_tax_code": (
        "The tax code (MST) must be 10 digits with a valid check digit, or those and a 3-digit branch (-001)",
        "Mã số thuế phải gồm 10 chữ số có chữ số kiểm tra hợp lệ, hoặc thêm mã chi nhánh 3 chữ số (-001)",
    ),
}


def _digits(low: int, high: int, code: str) -> Callable[[str], str]:
    def check(value: str) -> str:
        if not (value.isascii() and value.isdigit() and low <= len(value) <= high):
            raise PydanticCustomError(code, FIELD_ERRORS[code][0])
        return value

    return check


def _digits_schema(low: int, high: int) -> WithJsonSchema:
    length = f"{{{low}}}" if low == high else f"{{{low},{high}}}"
    return WithJsonSchema({"type": "string", "pattern": f"^[0-9]{length}$", "minLength": low, "maxLength": high})


_Short = StringConstraints(min_length=1, max_length=16)
OtpCode = Annotated[str, _Short, AfterValidator(_digits(6, 6, "invalid_code_format")), _digits_schema(6, 6)]
"""A six-digit one-time code (SMS OTP, SmartOTP)."""
ActivationCode = Annotated[
    str, _Short, AfterValidator(_digits(10, 10, "invalid_activation_code_format")), _digits_schema(10, 10)
]
"""The ten-digit SmartOTP activation code."""
Pin = Annotated[str, _Short, AfterValidator(_digits(6, 8, "weak_pin")), _digits_schema(6, 8)]
"""A signing PIN: 6 to 8 digits."""
_MST_WEIGHTS = (31, 29, 23, 19, 17, 13, 7, 5, 3)


def tax_code_problem(value: str) -> str | None:
    """Why ``value`` is not a Vietnamese tax code (mã số thuế), or None.

    Ten digits N1…N10 where N10 = 10 − (Σ Ni·Wi mod 11), W = 31, 29, 23, 19, 17, 13, 7, 5, 3 (a remainder
    of 0 would need a check digit of 10, so such a code is never issued; a remainder of 10 gives 0); a
    dependent unit adds a three-digit number 001–999 after a hyphen.
    """
    base, sep, branch = value.partition("-")
    if not (base.isascii() and base.isdigit() and len(base) == 10):
        return "not 10 digits"
    if sep and not (branch.isascii() and branch.isdigit() and len(branch) == 3 and branch != "000"):
        return "branch must be 001-999"
    remainder = sum(int(d) * w for d, w in zip(base, _MST_WEIGHTS, strict=False)) % 11
    if remainder == 0 or (10 - remainder) % 10 != int(base[9]):
        return "wrong check digit"
    return None


def _tax_code(value: str) -> str:
    if tax_code_problem(value) is not None:
        raise PydanticCustomError("invalid_tax_code", FIELD_ERRORS["invalid_tax_code"][0])
    return value


TaxCode = Annotated[
    str,
    StringConstraints(min_length=1, max_length=16),
    AfterValidator(_tax_code),
    WithJsonSchema(
        {"type": "string", "pattern": r"^[0-9]{10}(-[0-9]{3})?$", "minLength": 10, "maxLength": 14},
    ),
]
"""A Vietnamese tax code (MST): 10 digits with its check digit, optionally ``-NNN`` for a branch."""
PackageCode = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Z0-9_]+$")]
Password = Annotated[str, StringConstraints(min_length=1, max_length=256)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=500)]
