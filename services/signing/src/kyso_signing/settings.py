from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from kyso_kit.settings import SecretKind, ServiceSettings


class SigningSettings(ServiceSettings):
    service_name: str = "signing"
    secrets: ClassVar[dict[str, tuple[SecretKind, str]]] = {"master_key_b64": ("secret", "signing-keys")}
    http_port: int = Field(default=8003, validation_alias="HTTP_PORT", description="HTTP port")
    master_key_b64: str | None = Field(
        default=None,
        validation_alias="SIGNING_MASTER_KEY",
        description="Base64 32-byte key that encrypts CA and subscriber private keys at rest (required in production)",
    )
    ca_common_name: str = Field(
        default="kyso Development Root CA",
        validation_alias="CA_COMMON_NAME",
        description="Subject CN of the issuing CA created on first start",
    )
    provider_name: str = Field(
        default="Công ty kyso (môi trường phát triển)",
        validation_alias="PROVIDER_NAME",
        description="Provider named in contracts",
    )
