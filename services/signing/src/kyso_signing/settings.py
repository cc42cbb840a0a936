from __future__ import annotations

from typing import ClassVar

from pydantic import Field, field_validator, model_validator

from kyso_kit.settings import SecretKind, ServiceSettings

# A development certificate-policy OID under the UUID arc 2.25 (X.667), cut to 28 bits: pkilint's DER
# decoder (pyasn1-fasder) and some relying parties reject arcs wider than that, so a full 128-bit UUID arc
# cannot be linted. Production sets the provider's registered policy OID.
DEV_POLICY_OID = "2.25.250634348.1.1"
MAX_ARC = 2**28 - 1
# A development tax code (MST) for the provider's seal certificate: all zeros, so it names nobody.
DEV_TAX_CODE = "0000000000"

# The CA keys production must be given (sealed under SIGNING_MASTER_KEY, see `kyso-ca new-hierarchy`)
CA_MATERIAL = ("ca_root_certificate_pem", "ca_root_key_sealed", "ca_issuing_certificate_pem", "ca_issuing_key_sealed")


class SigningSettings(ServiceSettings):
    service_name: str = "signing"
    secrets: ClassVar[dict[str, tuple[SecretKind, str]]] = {"master_key_b64": ("secret", "signing-keys")}
    http_port: int = Field(default=8003, validation_alias="HTTP_PORT", description="HTTP port")
    master_key_b64: str | None = Field(
        default=None,
        validation_alias="SIGNING_MASTER_KEY",
        description="Base64 32-byte key that encrypts CA and subscriber private keys at rest (required in production)",
    )
    provider_name: str = Field(
        default="Công ty kyso (môi trường phát triển)",
        validation_alias="PROVIDER_NAME",
        description="Provider named in contracts",
    )
    # ------------------------------------------------------------------ the certificate authority
    ca_organisation: str = Field(default="kyso", validation_alias="CA_ORGANISATION", description="O= of the CA names")
    provider_tax_code: str = Field(
        default=DEV_TAX_CODE,
        pattern=r"^[0-9]{10}(-[0-9]{3})?$",
        validation_alias="PROVIDER_TAX_CODE",
        description="The provider's tax code (MST), named in its seal certificate as organizationIdentifier "
        "NTRVN-<MST> (ETSI EN 319 412-1) and UID=MST:<MST>; production sets the registered one",
    )
    ca_root_common_name: str = Field(
        default="kyso Development Root CA",
        validation_alias="CA_ROOT_COMMON_NAME",
        description="CN of the root CA created on first start (development)",
    )
    ca_common_name: str = Field(
        default="kyso Development Issuing CA",
        validation_alias="CA_COMMON_NAME",
        description="CN of the issuing CA created on first start (development)",
    )
    ca_root_certificate_pem: str | None = Field(
        default=None, validation_alias="CA_ROOT_CERTIFICATE", description="Root CA certificate, PEM (production)"
    )
    ca_root_key_sealed: str | None = Field(
        default=None,
        validation_alias="CA_ROOT_KEY_SEALED",
        description="Root CA private key sealed under SIGNING_MASTER_KEY (production; `kyso-ca new-hierarchy`)",
    )
    ca_issuing_certificate_pem: str | None = Field(
        default=None,
        validation_alias="CA_ISSUING_CERTIFICATE",
        description="Issuing CA certificate, PEM (production)",
    )
    ca_issuing_key_sealed: str | None = Field(
        default=None,
        validation_alias="CA_ISSUING_KEY_SEALED",
        description="Issuing CA private key sealed under SIGNING_MASTER_KEY (production)",
    )
    ca_policy_oid: str = Field(
        default=DEV_POLICY_OID,
        validation_alias="CA_POLICY_OID",
        description="The provider's certificate policy OID, put in every subscriber certificate",
    )
    pki_base_url: str = Field(
        default="http://127.0.0.1:8003",
        validation_alias="PKI_BASE_URL",
        description="Public base URL of the CRL, OCSP and CA-certificate endpoints written into certificates "
        "(a dotted host name or an IP literal)",
    )
    crl_validity_hours: float = Field(
        default=24, gt=0, validation_alias="CRL_VALIDITY_HOURS", description="nextUpdate − thisUpdate of CRLs"
    )
    ocsp_response_validity_minutes: float = Field(
        default=60, gt=1, validation_alias="OCSP_RESPONSE_VALIDITY_MINUTES", description="nextUpdate of OCSP answers"
    )
    ocsp_responder_validity_hours: float = Field(
        default=48,
        gt=0,
        validation_alias="OCSP_RESPONDER_VALIDITY_HOURS",
        description="Lifetime of the delegated OCSP responder certificate (renewed when a third is left)",
    )
    pki_tick_seconds: float = Field(
        default=5,
        gt=0,
        validation_alias="PKI_TICK_SECONDS",
        description="How often CRLs, the responder certificate and expiries are checked",
    )

    audit_checkpoint_seconds: float = Field(
        default=60,
        gt=0,
        validation_alias="AUDIT_CHECKPOINT_SECONDS",
        description="How often the head of the evidence chain is signed (when it moved)",
    )

    @field_validator("ca_policy_oid")
    @classmethod
    def _oid(cls, v: str) -> str:
        arcs = v.split(".")
        if len(arcs) < 2 or not all(a.isdigit() for a in arcs) or any(int(a) > MAX_ARC for a in arcs):
            raise ValueError(f"CA_POLICY_OID must be a dotted OID whose arcs are at most {MAX_ARC}")
        return v

    @model_validator(mode="after")
    def _ca_material(self) -> SigningSettings:
        given = [name for name in CA_MATERIAL if getattr(self, name)]
        if self.profile == "production" and len(given) != len(CA_MATERIAL):
            missing = [str(type(self).model_fields[n].validation_alias) for n in CA_MATERIAL if n not in given]
            raise ValueError(f"{', '.join(missing)} must be set in production")
        if given and len(given) != len(CA_MATERIAL):
            raise ValueError("give all of the CA certificates and sealed keys, or none")
        return self
