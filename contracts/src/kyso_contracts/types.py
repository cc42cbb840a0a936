"""Constrained value types shared by payloads."""

from datetime import datetime
from enum import StrEnum
from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints


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
