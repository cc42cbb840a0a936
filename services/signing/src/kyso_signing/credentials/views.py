"""What the signing API accepts and answers (the OpenAPI document is generated from these)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, WithJsonSchema

from kyso_contracts.events import RevocationReason
from kyso_contracts.types import Id, KeyAlgorithm, Pin, Sha256Hex
from kyso_signing.credentials import keywrap

# --------------------------------------------------------------------------- rules written into the schemas


def weak_pins() -> list[str]:
    """Every PIN ``keywrap.pin_problem`` refuses as too easy to guess although it is 6–8 digits: one digit
    repeated, a run up or down ``0123456789`` (wrapping to 0), and the listed trivial ones. A finite list,
    so the schema can name it (``not: {enum: …}``) and a client learns the rule before it asks."""
    runs = ("01234567890", "09876543210")
    found = {d * n for d in "0123456789" for n in (6, 7, 8)} | set(keywrap.TRIVIAL_PINS)
    found |= {run[i : i + n] for run in runs for n in (6, 7, 8) for i in range(len(run) - n + 1)}
    return sorted(found, key=lambda p: (len(p), p))


NewPin = Annotated[
    Pin,
    WithJsonSchema(
        {
            "type": "string",
            "pattern": "^[0-9]{6,8}$",
            "minLength": 6,
            "maxLength": 8,
            "not": {"enum": weak_pins()},
            "description": "The new signing PIN: 6 to 8 digits, not one digit repeated (000000), not a run "
            "up or down (123456, 876543) and not one of the trivial PINs listed (422 weak_pin)",
        }
    ),
]
"""A PIN being set: the server refuses a weak one (422 ``weak_pin``), and the schema says which."""


def _lifecycle_rule(schema: dict[str, Any]) -> None:
    schema["if"] = {"properties": {"action": {"const": "revoke"}}}
    schema["else"] = {"properties": {"reason": {"const": "unspecified"}, "invalidity_date": {"type": "null"}}}


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
    """Revoke (for good; the key is destroyed), suspend (certificateHold) or resume a certificate. A reason
    other than ``unspecified`` and an invalidity date are given only with ``revoke`` (422
    ``reason_for_revocation_only``)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra=_lifecycle_rule)
    action: LifecycleAction
    reason: RevocationReason = Field(
        default="unspecified", description="RFC 5280 reason (revocation only; otherwise unspecified)"
    )
    invalidity_date: AwareDatetime | None = Field(
        default=None, description="When the key became unsafe, if known (revocation only; not in the future)"
    )


class SubscriberLifecycleRequest(LifecycleRequest):
    """A subscriber revokes or suspends; only an operator resumes (422 ``resume_by_operator``: the service
    answers it with that code, so the model takes ``resume`` and the schema leaves it out)."""

    action: LifecycleAction = Field(json_schema_extra={"enum": ["revoke", "suspend"]})


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
    pin: NewPin


class ActivationView(BaseModel):
    certificate_id: Id
    status: str
    acceptance_signature_b64: str = Field(description="The new key's signature over the record PDF (possession)")
    acceptance_record_sha256: Sha256Hex
    acceptance_signing_request_id: Id | None = Field(
        default=None, description="Confirm this request in the app to sign the acceptance record (PAdES)"
    )


class PinUnlockRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    current_pin: Pin
    new_pin: NewPin


class PinUnlocked(BaseModel):
    certificate_id: Id
    unlocked: bool
