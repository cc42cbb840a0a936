"""What the signing API accepts and answers (the OpenAPI document is generated from these)."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from kyso_contracts.events import RevocationReason
from kyso_contracts.types import Id, KeyAlgorithm, Pin, Sha256Hex


class ConsentRejection(BaseModel):
    consent_challenge_id: Id
    reason: str = Field(description="other_account · bound_to_other_document")
    at: str


class ContractView(BaseModel):
    certificate_id: Id
    order_id: Id
    contract_id: Id
    text: str
    sha256: Sha256Hex
    status: str = Field(description="The certificate's lifecycle state")
    signed: bool
    consent_rejections: list[ConsentRejection] = Field(
        default_factory=list, description="Consent codes that did not authorise this contract; ask for a new code"
    )


class RevocationInfo(BaseModel):
    reason: RevocationReason
    revoked_at: str
    revoked_by: str
    invalidity_date: str | None = None
    superseded_by: Id | None = None


class CertificateView(BaseModel):
    certificate_id: Id
    order_id: Id
    status: str = Field(description="pending_activation · active · suspended · revoked · expired")
    serial_number: str
    subject_dn: str
    not_before: str
    not_after: str
    key_algorithm: KeyAlgorithm
    certificate_pem: str
    ca_certificate_pem: str = Field(description="The issuing CA's certificate")
    chain_pem: str = Field(description="The issuing CA's then the root CA's certificate")
    revocation: RevocationInfo | None = None
    suspended_at: str | None = None
    renews_certificate_id: Id | None = None


class CertificateList(BaseModel):
    certificates: list[CertificateView]


LifecycleAction = Literal["revoke", "suspend", "resume"]


class LifecycleRequest(BaseModel):
    """Revoke (for good; the key is destroyed), suspend (certificateHold) or resume a certificate."""

    model_config = ConfigDict(extra="forbid")
    action: LifecycleAction
    reason: RevocationReason = Field(default="unspecified", description="RFC 5280 reason (revocation only)")
    invalidity_date: AwareDatetime | None = Field(
        default=None, description="When the key became unsafe, if known (revocation only; not in the future)"
    )


class OtpToAsk(BaseModel):
    """Ask the OTP service for an SMS code with exactly these, then verify it."""

    purpose: str
    subject: Id
    binding_sha256: Sha256Hex


class RevocationRequestView(BaseModel):
    request_id: Id
    certificate_id: Id
    action: LifecycleAction
    reason: RevocationReason
    statement: str = Field(description="What the SMS code confirms; its SHA-256 is bound to the code")
    sha256: Sha256Hex
    expires_at: str
    otp: OtpToAsk


class AcceptanceRecordView(BaseModel):
    certificate_id: Id
    text: str
    sha256: Sha256Hex


class ActivationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pin: Pin
    acceptance_record_sha256: Sha256Hex


class ActivationView(BaseModel):
    certificate_id: Id
    status: str
    acceptance_signature_b64: str
    acceptance_record_sha256: Sha256Hex
