from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from kyso_kit.settings import SecretKind, ServiceSettings


class OtpSettings(ServiceSettings):
    service_name: str = "otp"
    secrets: ClassVar[dict[str, tuple[SecretKind, str]]] = {
        "master_key_b64": ("secret", "otp-seeds"),
        "sms_pepper_b64": ("secret", "otp-sms-pepper"),
    }
    http_port: int = Field(default=8004, validation_alias="HTTP_PORT", description="HTTP port")
    master_key_b64: str | None = Field(
        default=None,
        validation_alias="OTP_MASTER_KEY",
        description="Base64 32-byte AES-GCM key that encrypts SmartOTP seeds at rest (required in production)",
    )
    sms_pepper_b64: str | None = Field(
        default=None,
        validation_alias="OTP_SMS_PEPPER",
        description="Base64 key of the HMAC that stores SMS codes (required in production)",
    )
    sms_gateway_url: str | None = Field(
        default=None,
        validation_alias="OTP_SMS_GATEWAY_URL",
        description="HTTP SMS gateway endpoint; unset in development means the dev inbox",
    )
    sms_gateway_token: str | None = Field(
        default=None, validation_alias="OTP_SMS_GATEWAY_TOKEN", description="Bearer credential of the SMS gateway"
    )
    sms_ttl_seconds: int = Field(
        default=300,
        ge=30,
        le=300,
        validation_alias="OTP_SMS_TTL_SECONDS",
        description="SMS OTP lifetime (Circular 50/2024: at most 5 minutes)",
    )
    sms_max_attempts: int = Field(
        default=5,
        ge=1,
        le=10,
        validation_alias="OTP_SMS_MAX_ATTEMPTS",
        description="Wrong tries before a challenge is dead",
    )
    sms_per_phone_per_hour: int = Field(
        default=10,
        ge=1,
        validation_alias="OTP_SMS_PER_PHONE_PER_HOUR",
        description="Phone-verification codes (asked without an account) one phone number may receive in "
        "any 60 minutes; an account's own codes are counted per account instead",
    )
    sms_per_account_per_hour: int = Field(
        default=10,
        ge=1,
        validation_alias="OTP_SMS_PER_ACCOUNT_PER_HOUR",
        description="Codes a signed-in account may have sent to its phone in any 60 minutes",
    )
    sms_per_subject_per_hour: int = Field(
        default=5,
        ge=1,
        validation_alias="OTP_SMS_PER_SUBJECT_PER_HOUR",
        description="Challenges one subject (registration, contract…) may get in any 60 minutes",
    )
    sms_resend_cooldown_seconds: int = Field(
        default=60,
        ge=10,
        le=600,
        validation_alias="OTP_SMS_RESEND_COOLDOWN_SECONDS",
        description="Wait between two sends of one challenge",
    )
    sms_max_resends: int = Field(
        default=3, ge=0, le=10, validation_alias="OTP_SMS_MAX_RESENDS", description="Resends allowed per challenge"
    )
    terms_version: str = Field(
        default="2025-01",
        validation_alias="OTP_TERMS_VERSION",
        description="Current version of the SmartOTP terms a user must accept",
    )
    fresh_credential_seconds: int = Field(
        default=300,
        ge=30,
        le=1800,
        validation_alias="OTP_FRESH_CREDENTIAL_SECONDS",
        description="How recently the password must have been entered for sensitive changes",
    )
    activation_max_failures: int = Field(
        default=5,
        ge=1,
        le=10,
        validation_alias="OTP_ACTIVATION_MAX_FAILURES",
        description="Wrong activation codes that void an enrolment (the subscriber enrols again with a fresh SMS code)",
    )
    activation_failures_per_address_per_hour: int = Field(
        default=100,
        ge=1,
        validation_alias="OTP_ACTIVATION_FAILURES_PER_ADDRESS_PER_HOUR",
        description="Backstop against spraying many enrolments: past this many wrong activation codes from "
        "one client address (an IPv6 /64) in any 60 minutes, that address is refused for enrolments that "
        "already saw a wrong code; a first try at an untouched enrolment is still answered",
    )
    activation_ttl_seconds: int = Field(
        default=600,
        ge=60,
        le=3600,
        validation_alias="OTP_ACTIVATION_TTL_SECONDS",
        description="Lifetime of a SmartOTP activation code",
    )
    token_max_failures: int = Field(
        default=5,
        ge=1,
        le=10,
        validation_alias="OTP_TOKEN_MAX_FAILURES",
        description="Consecutive wrong SmartOTP codes that lock a token",
    )

    @model_validator(mode="after")
    def _gateway(self) -> OtpSettings:
        if self.profile == "production" and not self.sms_gateway_url:
            raise ValueError("OTP_SMS_GATEWAY_URL must be set in production")
        return self
