"""What the otp API accepts and answers (the OpenAPI document is generated from these)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from kyso_contracts import OtpPurpose
from kyso_contracts.transactions import Transaction
from kyso_contracts.types import ActivationCode, Id, OtpCode, Phone, Sha256Hex

Method = Literal["sms", "smartotp"]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChallengeRequest(Strict):
    """Phone verification (no account yet) names the ``phone``; every other purpose names the signed-in
    ``account_id`` and the code goes to that account's registered phone."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "if": {"properties": {"purpose": {"const": OtpPurpose.PHONE_VERIFICATION.value}}},
            "then": {"required": ["phone"]},
            "else": {"required": ["account_id"]},
        },
    )

    purpose: OtpPurpose
    subject: Id = Field(description="What the code is for: a registration, contract, token… id")
    phone: Phone | None = Field(default=None, description="Only for phone verification")
    account_id: Id | None = None
    binding_sha256: Sha256Hex | None = Field(default=None, description="Digest the code authorises")


class CodeRequest(Strict):
    code: OtpCode
    device_time: float | None = Field(default=None, description="The device's Unix time, for a clock-drift hint")


class TransactionCodeRequest(CodeRequest):
    transaction: Transaction
    reference: Id | None = Field(
        default=None, description="What the code confirms, e.g. a signing request id (passed on to signing)"
    )


class ResyncRequest(Strict):
    code1: OtpCode
    code2: OtpCode


class EnrolmentRequest(Strict):
    account_id: Id
    terms_version: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    terms_accepted: bool = Field(
        json_schema_extra={"const": True}, description="Must be true (422 terms_not_accepted otherwise)"
    )
    sms_challenge_id: Id


class ActivationRequest(Strict):
    token_id: Id = Field(
        description="The enrolment the code belongs to (``token_id`` of the enrolment answer, handed to the "
        "device with the code): wrong codes count against this enrolment, and enough of them void it"
    )
    activation_code: ActivationCode
    device_id: Id


class PinResetRequest(Strict):
    sms_challenge_id: Id


class PreferredRequest(Strict):
    method: Method


class LockRequest(Strict):
    reason: Annotated[str, StringConstraints(min_length=3, max_length=500)]


class UnlockRequest(Strict):
    sms_challenge_id: Id | None = None
    token_id: Id | None = None
    code: OtpCode | None = None


class ChallengeView(BaseModel):
    challenge_id: Id
    expires_at: str
    phone_masked: str
    ttl_seconds: int
    resend_after_seconds: int


class ResendView(BaseModel):
    challenge_id: Id
    expires_at: str
    resends_left: int
    resend_after_seconds: int


class ChallengeVerified(BaseModel):
    verified: Literal[True]
    challenge_id: Id
    purpose: OtpPurpose
    subject: Id


class ServerTime(BaseModel):
    server_time: float
    period: int
    step: int
    seconds_left_in_step: float


class Terms(BaseModel):
    version: str
    text: str


class ActivationCodeView(BaseModel):
    token_id: Id
    activation_code: str = Field(description="Ten digits, single use, shown once")
    expires_at: str
    ttl_seconds: int
    revoked_token_ids: list[Id] = Field(default_factory=list)


class DeviceActivation(BaseModel):
    token_id: Id
    otpauth_uri: str = Field(description="The seed, returned once (Key Uri Format)")
    algorithm: str
    digits: int
    period: int
    transaction_suite: str
    server_time: float


class TokenStatus(BaseModel):
    token_id: Id
    status: str
    device_id: str | None = None
    locked: bool
    drift_steps: int
    period: int


class Verification(BaseModel):
    valid: Literal[True]
    token_id: Id
    status: str
    drift_steps: int
    transaction_digest: Sha256Hex | None = None


class MethodState(BaseModel):
    available: bool
    locked: bool
    lock_reason: str | None = None
    token_id: Id | None = None


class MethodsView(BaseModel):
    account_id: Id
    preferred: Method
    methods: dict[Method, MethodState]


class SmsMessage(BaseModel):
    id: str
    phone: Phone
    text: str
    sent_at: str


class SmsInbox(BaseModel):
    messages: list[SmsMessage]
