from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from kyso_kit.settings import SecretKind, ServiceSettings


class RegistrationSettings(ServiceSettings):
    service_name: str = "registration"
    secrets: ClassVar[dict[str, tuple[SecretKind, str]]] = {
        "vneid_public_key_pem": ("public_pem", "vneid"),
        "auth_signing_key_pem": ("private_pem", "auth"),
    }
    http_port: int = Field(default=8001, validation_alias="HTTP_PORT", description="HTTP port")
    vneid_public_key_pem: str | None = Field(
        default=None,
        validation_alias="VNEID_PUBLIC_KEY_PEM",
        description="PEM public key VNeID signs identity assertions with (development: the sandbox key)",
    )
    auth_signing_key_pem: str | None = Field(
        default=None,
        validation_alias="AUTH_SIGNING_KEY_PEM",
        description="PEM P-256 private key that signs access tokens (required in production)",
    )
    access_token_ttl_seconds: int = Field(
        default=900,
        ge=60,
        le=3600,
        validation_alias="ACCESS_TOKEN_TTL_SECONDS",
        description="Lifetime of an access token",
    )
    identity_max_age_seconds: int = Field(
        default=600,
        ge=30,
        le=3600,
        validation_alias="IDENTITY_MAX_AGE_SECONDS",
        description="How old a VNeID identity assertion may be",
    )
    login_max_failures: int = Field(
        default=5,
        ge=1,
        le=10,
        validation_alias="LOGIN_MAX_FAILURES",
        description="Wrong passwords for one account from one client address (an IPv6 /64) within "
        "LOGIN_LOCK_SECONDS before that address may not try that account until the oldest is that old; "
        "the account's owner elsewhere is not affected, a right password clears them",
    )
    login_failures_per_account_per_day: int = Field(
        default=50,
        ge=1,
        validation_alias="LOGIN_FAILURES_PER_ACCOUNT_PER_DAY",
        description="Backstop against guessing one account from many addresses: past this many wrong "
        "passwords in any 24 hours, only addresses the account signed in from before (its last five) may "
        "try it",
    )
    login_failures_per_address_per_hour: int = Field(
        default=100,
        ge=1,
        validation_alias="LOGIN_FAILURES_PER_ADDRESS_PER_HOUR",
        description="Backstop against spraying many accounts from one address: past this many wrong "
        "passwords in any 60 minutes, that address may try only accounts it has not got wrong lately",
    )
    order_payment_window_hours: float = Field(
        default=24,
        gt=0,
        validation_alias="ORDER_PAYMENT_WINDOW_HOURS",
        description="An unpaid order expires after this",
    )
    order_expiry_every_seconds: float = Field(
        default=60,
        gt=0,
        validation_alias="ORDER_EXPIRY_EVERY_SECONDS",
        description="How often unpaid orders are checked",
    )
    login_lock_seconds: int = Field(
        default=900,
        ge=60,
        validation_alias="LOGIN_LOCK_SECONDS",
        description="The sliding window of LOGIN_MAX_FAILURES (how long an address stays locked out of an account)",
    )
