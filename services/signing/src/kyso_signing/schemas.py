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
    sha256: Sha256Hex = Field(description="SHA-256 of the contract PDF the consent code is bound to")
    status: str = Field(description="The certificate's lifecycle state")
    signed: bool
    pdf_url: str = Field(description="The contract PDF (as consented to)")
    sealed_sha256: Sha256Hex | None = Field(default=None, description="SHA-256 of the PDF sealed by the provider")
    sealed_pdf_url: str | None = Field(
        default=None, description="The contract PDF sealed by the provider (PAdES B-LTA)"
    )
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
    sha256: Sha256Hex = Field(description="SHA-256 of the record PDF, drawn up at activation")
    pdf_url: str
    signing_request_id: Id | None = Field(default=None, description="The remote-signing request to confirm in the app")
    signed: bool
    signed_sha256: Sha256Hex | None = None
    signed_pdf_url: str | None = Field(default=None, description="The record signed by the subscriber (PAdES B-LTA)")


class ActivationRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pin: Pin


class ActivationView(BaseModel):
    certificate_id: Id
    status: str
    acceptance_signature_b64: str = Field(description="The new key's signature over the record PDF (possession)")
    acceptance_record_sha256: Sha256Hex
    acceptance_signing_request_id: Id | None = Field(
        default=None, description="Confirm this request in the app to sign the acceptance record (PAdES)"
    )


# --------------------------------------------------------------------------- remote signing


class RelyingPartyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    webhook_url: str | None = Field(default=None, max_length=2000, description="Where outcomes are POSTed, signed")


class RelyingPartyCreated(BaseModel):
    client_id: Id
    client_secret: str = Field(description="Shown once; kyso keeps only its hash")
    webhook_secret: str = Field(description="Standard Webhooks key (whsec_…), shown once")
    name: str
    webhook_url: str | None


class OAuthErrorBody(BaseModel):
    """RFC 6749 §5.2."""

    error: str = Field(description="invalid_client · unsupported_grant_type · invalid_request")
    error_description: str | None = None


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int


class DocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    label: str = Field(min_length=1, max_length=200, description="Shown to the subscriber in the kyso app")
    hash: str = Field(min_length=1, max_length=200, description="The document's digest, base64 or base64url")
    hash_algorithm: Literal["sha256", "sha384", "sha512"] = "sha256"


class SigningRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: Id | None = Field(default=None, description="The subscriber's account id")
    credential_id: Id | None = Field(default=None, description="Or the certificate to sign with")
    description: str = Field(min_length=1, max_length=500, description="Shown to the subscriber")
    documents: list[DocumentIn] = Field(min_length=1, max_length=50)


class PdfSigningRequestIn(BaseModel):
    """A PDF to sign (PAdES); at most 10 MiB once decoded."""

    model_config = ConfigDict(extra="forbid")
    user_id: Id | None = Field(default=None, description="The subscriber's account id")
    credential_id: Id | None = Field(default=None, description="Or the certificate to sign with")
    description: str = Field(min_length=1, max_length=500, description="Shown to the subscriber")
    label: str = Field(min_length=1, max_length=200, description="The document's name, shown to the subscriber")
    pdf_base64: str = Field(min_length=4, max_length=15 * 1024 * 1024, description="The PDF, standard base64")
    level: Literal["B-B", "B-T", "B-LT", "B-LTA"] = Field(
        default="B-LTA", description="PAdES baseline level (ETSI EN 319 142-1) of the signed PDF"
    )
    reason: str | None = Field(default=None, max_length=200, description="The signature's /Reason")


class SigningRequestCreated(BaseModel):
    request_id: Id
    status: str
    certificate_id: Id
    documents_digest: Sha256Hex
    expires_at: str
    signed_pdf_url: str | None = Field(default=None, description="(a PDF request) where the signed PDF is, once signed")


class SignatureEntry(BaseModel):
    label: str
    hash: str
    hash_algorithm: str
    signature: str | None = Field(default=None, description="Base64; ECDSA as DER, RSA as RSASSA-PSS")
    signature_algorithm: str | None = Field(default=None, description="The signature algorithm's OID")


class SigningRequestView(BaseModel):
    request_id: Id
    status: str = Field(description="waiting_for_user_confirm · signed · rejected · expired")
    description: str
    relying_party: str
    certificate_id: Id
    certificate_serial: str
    documents_digest: Sha256Hex = Field(description="What the confirming one-time code is computed over")
    created_at: str
    expires_at: str
    signed_at: str | None = None
    signatures: list[SignatureEntry]
    otp_verified: bool | None = Field(default=None, description="(the app) a code bound to the documents verified")


class SigningRequestList(BaseModel):
    requests: list[SigningRequestView]


class ConfirmRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pin: Pin


class PinUnlockRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current_pin: Pin
    new_pin: Pin


class PinUnlocked(BaseModel):
    certificate_id: Id
    unlocked: bool
