"""What the signing API accepts and answers (the OpenAPI document is generated from these)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from kyso_contracts.types import Id, Pin, Sha256Hex


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


class CertificateView(BaseModel):
    certificate_id: Id
    order_id: Id
    status: str
    serial_number: str
    subject_dn: str
    not_before: str
    not_after: str
    certificate_pem: str
    ca_certificate_pem: str


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
