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
        description="Consecutive wrong passwords before the account is locked",
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
        default=900, ge=60, validation_alias="LOGIN_LOCK_SECONDS", description="How long a login lock lasts"
    )
