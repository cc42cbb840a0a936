"""Payload models of every kyso event, with their versioned type names, topics and keys.

Event types follow ``vn.kyso.<service>.<event>.v<major>``. A breaking change to a payload is a new
major version with a new type name; additive optional fields keep the version.
"""

from __future__ import annotations

from datetime import date
from typing import ClassVar, Literal

from pydantic import Field

from . import topics
from .envelope import Payload
from .types import (
    CitizenId,
    Email,
    Id,
    KeyAlgorithm,
    OtpPurpose,
    Phone,
    Sha256Hex,
    TaxCode,
    UtcDateTime,
    ValidityYears,
    Vnd,
)


class SubscriberIdentity(Payload):
    """The citizen as asserted by VNeID (level-2 electronic identification)."""

    citizen_id: CitizenId
    full_name: str = Field(min_length=1, max_length=200)
    date_of_birth: date
    province: str | None = Field(default=None, max_length=100, description="Province of residence, if shared")
    locality: str | None = Field(default=None, max_length=100, description="District or commune, if shared")


CertificateKind = Literal["personal", "organisation", "staff"]
"""What a certificate names: a person; an organisation (held by its authorised person); or a person in an
organisation ("individual in an organisation": both the person and the organisation)."""


class OrganisationFacts(Payload):
    """An organisation as its sales agent registered it (the certificate's ``O=`` and ``UID=MST:``)."""

    name: str = Field(min_length=1, max_length=200)
    tax_code: TaxCode
    address: str = Field(min_length=1, max_length=300)
    province: str | None = Field(default=None, max_length=100, description="Province of the head office (ST=)")
    legal_representative: str = Field(min_length=1, max_length=200)


class AccountCreated(Payload):
    """A citizen created a kyso account; the phone was verified by SMS OTP."""

    event_type: ClassVar[str] = "vn.kyso.registration.account_created.v1"
    topic: ClassVar[str] = topics.REGISTRATION
    key_field: ClassVar[str] = "account_id"

    account_id: Id
    registration_id: Id
    citizen_id: CitizenId
    phone: Phone
    email: Email
    created_at: UtcDateTime


class OrderPlaced(Payload):
    """The user chose a certificate package and confirmed the order; payment is due."""

    event_type: ClassVar[str] = "vn.kyso.registration.order_placed.v1"
    topic: ClassVar[str] = topics.REGISTRATION
    key_field: ClassVar[str] = "order_id"

    order_id: Id
    account_id: Id
    registration_id: Id
    subscriber: SubscriberIdentity
    email: Email
    package_code: str = Field(min_length=1, max_length=64)
    validity_years: ValidityYears
    amount_vnd: Vnd
    placed_at: UtcDateTime
    key_algorithm: KeyAlgorithm = Field(default="ecdsa-p256", description="The key the certificate will certify")
    renews_certificate_id: Id | None = Field(
        default=None, description="A renewal: the certificate this order's certificate supersedes once activated"
    )
    certificate_kind: CertificateKind = Field(
        default="personal", description="personal; organisation (names the organisation); staff (names both)"
    )
    organisation: OrganisationFacts | None = Field(
        default=None, description="For organisation and staff certificates: the organisation (it pays)"
    )
    organisation_registration_id: Id | None = Field(
        default=None, description="The organisation registration this order was placed for"
    )


class OrganisationRegistrationOpened(Payload):
    """A sales agent opened an organisation registration; the authorised person is invited to continue."""

    event_type: ClassVar[str] = "vn.kyso.registration.organisation_registration_opened.v1"
    topic: ClassVar[str] = topics.REGISTRATION
    key_field: ClassVar[str] = "organisation_registration_id"

    organisation_registration_id: Id
    organisation: OrganisationFacts
    authorised_person_name: str = Field(min_length=1, max_length=200)
    authorised_person_citizen_id: CitizenId
    authorised_person_phone: Phone = Field(description="The invitation is sent here by SMS")
    package_codes: list[str] = Field(min_length=1, max_length=10)
    sales_agent_id: Id
    opened_at: UtcDateTime


class OrganisationRegistrationConfirmed(Payload):
    """The authorised person proved their identity and confirmed the registration; its orders are placed."""

    event_type: ClassVar[str] = "vn.kyso.registration.organisation_registration_confirmed.v1"
    topic: ClassVar[str] = topics.REGISTRATION
    key_field: ClassVar[str] = "organisation_registration_id"

    organisation_registration_id: Id
    organisation: OrganisationFacts
    account_id: Id = Field(description="The authorised person's account, which holds the certificates")
    citizen_id: CitizenId
    order_ids: list[Id] = Field(min_length=1, max_length=10)
    sales_agent_id: Id
    confirmed_at: UtcDateTime


class OrganisationRegistrationWithdrawn(Payload):
    """The sales agent (or an operator) withdrew a registration the authorised person had not confirmed."""

    event_type: ClassVar[str] = "vn.kyso.registration.organisation_registration_withdrawn.v1"
    topic: ClassVar[str] = topics.REGISTRATION
    key_field: ClassVar[str] = "organisation_registration_id"

    organisation_registration_id: Id
    sales_agent_id: Id
    withdrawn_by: Id
    withdrawn_at: UtcDateTime


class OrderCancelled(Payload):
    """The subscriber cancelled an order: before paying it, or after paying but before consenting to the
    contract. Signing decides whether issuance can still stop (``IssuanceStopped``); payment refunds then."""

    event_type: ClassVar[str] = "vn.kyso.registration.order_cancelled.v1"
    topic: ClassVar[str] = topics.REGISTRATION
    key_field: ClassVar[str] = "order_id"

    order_id: Id
    account_id: Id
    amount_vnd: Vnd
    cancelled_at: UtcDateTime
    after_payment: bool = Field(
        default=False, description="The order was paid: the cancellation stands only if signing stops issuance"
    )


class OrderExpired(Payload):
    """An order was not paid in time and is closed; a payment that arrives later is refunded."""

    event_type: ClassVar[str] = "vn.kyso.registration.order_expired.v1"
    topic: ClassVar[str] = topics.REGISTRATION
    key_field: ClassVar[str] = "order_id"

    order_id: Id
    account_id: Id
    amount_vnd: Vnd
    placed_at: UtcDateTime
    expired_at: UtcDateTime


# --------------------------------------------------------------------------- payment


class PaymentConfirmed(Payload):
    """The payment gateway confirmed the full amount of an order (signed notification verified)."""

    event_type: ClassVar[str] = "vn.kyso.payment.confirmed.v1"
    topic: ClassVar[str] = topics.PAYMENT
    key_field: ClassVar[str] = "order_id"

    payment_id: Id
    order_id: Id
    account_id: Id
    amount_vnd: Vnd
    provider: str = Field(min_length=1, max_length=32)
    provider_transaction_no: str = Field(min_length=1, max_length=64)
    confirmed_at: UtcDateTime


class PaymentFailed(Payload):
    """The gateway reported a failed or cancelled payment; the order stays unpaid."""

    event_type: ClassVar[str] = "vn.kyso.payment.failed.v1"
    topic: ClassVar[str] = topics.PAYMENT
    key_field: ClassVar[str] = "order_id"

    payment_id: Id
    order_id: Id
    account_id: Id
    amount_vnd: Vnd
    reason_code: str = Field(min_length=1, max_length=16)
    reason: str = Field(max_length=500)
    failed_at: UtcDateTime


RefundReason = Literal[
    "amount_mismatch", "duplicate_payment", "late_payment", "cancelled_after_payment", "issuance_failed", "operator"
]


class PaymentRefunded(Payload):
    """The gateway gave a payment's money back (compensation): paid the wrong amount, paid twice,
    paid after the order was cancelled or expired, or the order could not be served."""

    event_type: ClassVar[str] = "vn.kyso.payment.refunded.v1"
    topic: ClassVar[str] = topics.PAYMENT
    key_field: ClassVar[str] = "order_id"

    payment_id: Id
    order_id: Id
    account_id: Id
    amount_vnd: Vnd = Field(description="What was given back: the whole amount of that gateway transaction")
    reason: RefundReason = Field(
        description="amount_mismatch · duplicate_payment · late_payment (after the order closed) · "
        "cancelled_after_payment · issuance_failed (nothing can be issued) · operator (a refund an operator made)"
    )
    provider: str = Field(min_length=1, max_length=32)
    provider_transaction_no: str = Field(min_length=1, max_length=64, description="The refunded transaction")
    refunded_at: UtcDateTime


# --------------------------------------------------------------------------- signing


class IssuanceStopped(Payload):
    """Nothing will be issued for this order: it was cancelled or expired before the contract was consented
    to, or issuance failed for good. Payment closes it and refunds what was paid for it."""

    event_type: ClassVar[str] = "vn.kyso.signing.issuance_stopped.v1"
    topic: ClassVar[str] = topics.SIGNING
    key_field: ClassVar[str] = "order_id"

    order_id: Id
    account_id: Id
    certificate_id: Id
    reason: Literal["cancelled", "order_expired", "issuance_failed"]
    stopped_at: UtcDateTime


class ContractSigned(Payload):
    """The user consented to the service contract (OTP bound to the contract hash)."""

    event_type: ClassVar[str] = "vn.kyso.signing.contract_signed.v1"
    topic: ClassVar[str] = topics.SIGNING
    key_field: ClassVar[str] = "certificate_id"

    certificate_id: Id
    order_id: Id
    account_id: Id
    contract_id: Id
    contract_sha256: Sha256Hex
    consent_challenge_id: Id
    provider_signature_b64: str = Field(description="The provider's ECDSA signature over the contract")
    signed_at: UtcDateTime
    sealed_contract_sha256: Sha256Hex | None = Field(
        default=None,
        description="Deprecated, always null: the provider's seal follows the consent (ContractSealed carries "
        "the sealed PDF's SHA-256)",
        json_schema_extra={"deprecated": True},
    )


class ContractSealed(Payload):
    """The provider sealed the contract the subscriber consented to (PAdES B-LTA): the copy the subscriber
    keeps, an incremental update of exactly the bytes the consent code was bound to. It follows
    ContractSigned (its cause); issuance does not wait for it."""

    event_type: ClassVar[str] = "vn.kyso.signing.contract_sealed.v1"
    topic: ClassVar[str] = topics.SIGNING
    key_field: ClassVar[str] = "certificate_id"

    certificate_id: Id
    order_id: Id
    account_id: Id
    contract_id: Id
    contract_sha256: Sha256Hex = Field(description="SHA-256 of the contract PDF consented to")
    sealed_contract_sha256: Sha256Hex = Field(description="SHA-256 of the sealed PDF")
    level: Literal["PAdES-B-LTA"] = Field(description="ETSI EN 319 142-1 baseline level")
    sealed_at: UtcDateTime


class CertIssued(Payload):
    """A certificate was issued and waits for the user to activate it (set a PIN)."""

    event_type: ClassVar[str] = "vn.kyso.signing.cert_issued.v1"
    topic: ClassVar[str] = topics.SIGNING
    key_field: ClassVar[str] = "certificate_id"

    certificate_id: Id
    order_id: Id
    account_id: Id
    serial_number: str = Field(pattern=r"^[0-9a-f]{1,40}$")
    subject_dn: str
    not_before: UtcDateTime
    not_after: UtcDateTime
    status: Literal["pending_activation"] = "pending_activation"
    certificate_pem: str


class CertActivated(Payload):
    """The user set a signing PIN and signed the acceptance record with the new key."""

    event_type: ClassVar[str] = "vn.kyso.signing.cert_activated.v1"
    topic: ClassVar[str] = topics.SIGNING
    key_field: ClassVar[str] = "certificate_id"

    certificate_id: Id
    order_id: Id
    account_id: Id
    serial_number: str = Field(pattern=r"^[0-9a-f]{1,40}$")
    acceptance_record_sha256: Sha256Hex
    acceptance_signature_b64: str
    activated_at: UtcDateTime


class AcceptanceRecordSigned(Payload):
    """The subscriber signed the service acceptance record (PDF, PAdES) with the new certificate,
    confirmed in the app through remote signing."""

    event_type: ClassVar[str] = "vn.kyso.signing.acceptance_record_signed.v1"
    topic: ClassVar[str] = topics.SIGNING
    key_field: ClassVar[str] = "certificate_id"

    certificate_id: Id
    order_id: Id
    account_id: Id
    serial_number: str = Field(pattern=r"^[0-9a-f]{1,40}$")
    request_id: Id = Field(description="The remote-signing request the subscriber confirmed")
    acceptance_record_sha256: Sha256Hex = Field(description="SHA-256 of the record PDF as drawn up")
    signed_pdf_sha256: Sha256Hex = Field(description="SHA-256 of the signed PDF")
    level: Literal["PAdES-B-LT", "PAdES-B-LTA"] = Field(description="ETSI EN 319 142-1 baseline level")
    signed_at: UtcDateTime


RevocationReason = Literal[
    "unspecified",
    "keyCompromise",
    "affiliationChanged",
    "superseded",
    "cessationOfOperation",
    "privilegeWithdrawn",
]
"""RFC 5280 §5.3.1 reasons a subscriber certificate may be revoked for (certificateHold is a suspension)."""

LifecycleActor = Literal["subscriber", "operator", "renewal", "system"]


class CertRevoked(Payload):
    """A certificate was revoked for good; its private key is destroyed. CRL and OCSP report it at once."""

    event_type: ClassVar[str] = "vn.kyso.signing.cert_revoked.v1"
    topic: ClassVar[str] = topics.SIGNING
    key_field: ClassVar[str] = "certificate_id"

    certificate_id: Id
    order_id: Id
    account_id: Id
    serial_number: str = Field(pattern=r"^[0-9a-f]{1,40}$")
    reason: RevocationReason
    revoked_at: UtcDateTime
    invalidity_date: UtcDateTime | None = Field(
        default=None, description="When the key is known or suspected to have become unsafe, if known"
    )
    revoked_by: LifecycleActor
    superseded_by: Id | None = Field(default=None, description="The renewal certificate that replaces this one")


class CertSuspended(Payload):
    """A certificate is on hold (CRL reason certificateHold): it cannot sign until it is resumed."""

    event_type: ClassVar[str] = "vn.kyso.signing.cert_suspended.v1"
    topic: ClassVar[str] = topics.SIGNING
    key_field: ClassVar[str] = "certificate_id"

    certificate_id: Id
    order_id: Id
    account_id: Id
    serial_number: str = Field(pattern=r"^[0-9a-f]{1,40}$")
    suspended_at: UtcDateTime
    suspended_by: LifecycleActor


class CertResumed(Payload):
    """A suspended certificate is valid again (it leaves the CRL)."""

    event_type: ClassVar[str] = "vn.kyso.signing.cert_resumed.v1"
    topic: ClassVar[str] = topics.SIGNING
    key_field: ClassVar[str] = "certificate_id"

    certificate_id: Id
    order_id: Id
    account_id: Id
    serial_number: str = Field(pattern=r"^[0-9a-f]{1,40}$")
    resumed_at: UtcDateTime
    resumed_by: LifecycleActor


class CertExpired(Payload):
    """A certificate reached its notAfter without being revoked."""

    event_type: ClassVar[str] = "vn.kyso.signing.cert_expired.v1"
    topic: ClassVar[str] = topics.SIGNING
    key_field: ClassVar[str] = "certificate_id"

    certificate_id: Id
    order_id: Id
    account_id: Id
    serial_number: str = Field(pattern=r"^[0-9a-f]{1,40}$")
    expired_at: UtcDateTime


class SignedDocument(Payload):
    """One document of a signing request, as the relying party described it (never key material)."""

    label: str = Field(min_length=1, max_length=200)
    hash_b64: str = Field(min_length=1, max_length=100, description="The document digest, standard base64")
    hash_algorithm: Literal["sha256", "sha384", "sha512"]


class SignatureRequested(Payload):
    """A relying party asked a subscriber to sign documents; the subscriber confirms in the kyso app."""

    event_type: ClassVar[str] = "vn.kyso.signing.signature_requested.v1"
    topic: ClassVar[str] = topics.SIGNING
    key_field: ClassVar[str] = "request_id"

    request_id: Id
    client_id: Id
    account_id: Id
    certificate_id: Id
    description: str = Field(max_length=500)
    documents: list[SignedDocument] = Field(min_length=1, max_length=50)
    documents_digest: Sha256Hex = Field(description="The digest a transaction-bound OTP is computed over")
    requested_at: UtcDateTime
    expires_at: UtcDateTime


class SignatureCompleted(Payload):
    """The subscriber confirmed with the signing PIN and a code bound to the documents; each is signed."""

    event_type: ClassVar[str] = "vn.kyso.signing.signature_completed.v1"
    topic: ClassVar[str] = topics.SIGNING
    key_field: ClassVar[str] = "request_id"

    request_id: Id
    client_id: Id
    account_id: Id
    certificate_id: Id
    serial_number: str = Field(pattern=r"^[0-9a-f]{1,40}$")
    signature_algorithm: str = Field(description="The signature algorithm's OID")
    documents: list[SignedDocument] = Field(min_length=1, max_length=50)
    signatures_b64: list[str] = Field(
        default_factory=list,
        max_length=50,
        description="In the order of the documents. Empty for a CSC authorisation: its signatures leave kyso only "
        "through signatures/signHash (or signPolling/signDoc) against the SAD, never on this topic",
    )
    confirmed_with: Literal["smartotp", "sms"]
    signed_at: UtcDateTime


class SignatureRejected(Payload):
    """The subscriber declined to sign."""

    event_type: ClassVar[str] = "vn.kyso.signing.signature_rejected.v1"
    topic: ClassVar[str] = topics.SIGNING
    key_field: ClassVar[str] = "request_id"

    request_id: Id
    client_id: Id
    account_id: Id
    certificate_id: Id
    rejected_at: UtcDateTime


class SignatureExpired(Payload):
    """Nobody confirmed the request in time (5 minutes); nothing was signed."""

    event_type: ClassVar[str] = "vn.kyso.signing.signature_expired.v1"
    topic: ClassVar[str] = topics.SIGNING
    key_field: ClassVar[str] = "request_id"

    request_id: Id
    client_id: Id
    account_id: Id
    certificate_id: Id
    expired_at: UtcDateTime


class PaymentAmountMismatch(Payload):
    """The confirmed payment differs from the order's amount: no contract is drawn up (a refund follows)."""

    event_type: ClassVar[str] = "vn.kyso.signing.payment_amount_mismatch.v1"
    topic: ClassVar[str] = topics.SIGNING
    key_field: ClassVar[str] = "certificate_id"

    certificate_id: Id
    order_id: Id
    account_id: Id
    payment_id: Id
    paid_vnd: Vnd
    order_vnd: Vnd
    detected_at: UtcDateTime


class ConsentRejected(Payload):
    """A verified consent code did not authorise this contract (another account or another hash).

    The contract stays waiting for consent; the user can ask for a new code."""

    event_type: ClassVar[str] = "vn.kyso.signing.consent_rejected.v1"
    topic: ClassVar[str] = topics.SIGNING
    key_field: ClassVar[str] = "certificate_id"

    certificate_id: Id
    order_id: Id
    account_id: Id
    contract_id: Id
    consent_challenge_id: Id
    reason: Literal["other_account", "bound_to_other_document"]
    rejected_at: UtcDateTime


# --------------------------------------------------------------------------- otp


class SmsOtpVerified(Payload):
    """A user proved possession of a phone with an SMS OTP for one purpose, subject and binding."""

    event_type: ClassVar[str] = "vn.kyso.otp.sms_verified.v1"
    topic: ClassVar[str] = topics.OTP
    key_field: ClassVar[str] = "challenge_id"

    challenge_id: Id
    purpose: OtpPurpose
    subject: Id
    account_id: Id | None = None
    phone: Phone
    binding_sha256: Sha256Hex | None = Field(
        default=None, description="Digest of what the code authorised (e.g. the contract hash)"
    )
    verified_at: UtcDateTime


class SmartOtpTransactionVerified(Payload):
    """A SmartOTP code computed over a transaction's digest verified (dynamic linking). Signing takes it
    as the second factor of a signature confirmation; the code itself never leaves the otp service."""

    event_type: ClassVar[str] = "vn.kyso.otp.smartotp_transaction_verified.v1"
    topic: ClassVar[str] = topics.OTP
    key_field: ClassVar[str] = "token_id"

    token_id: Id
    account_id: Id
    transaction_digest: Sha256Hex
    reference: Id | None = Field(default=None, description="What the app said the code is for (a request id)")
    time_step: int = Field(ge=0)
    verified_at: UtcDateTime


class OtpEnrolled(Payload):
    """A SmartOTP soft token was activated on a device after its first code verified."""

    event_type: ClassVar[str] = "vn.kyso.otp.enrolled.v1"
    topic: ClassVar[str] = topics.OTP
    key_field: ClassVar[str] = "token_id"

    token_id: Id
    account_id: Id
    device_id: Id
    method: Literal["smartotp"] = "smartotp"
    algorithm: Literal["SHA1", "SHA256", "SHA512"]
    digits: int = Field(ge=6, le=8)
    period_seconds: int = Field(ge=15, le=60)
    enrolled_at: UtcDateTime


OtpMethod = Literal["sms", "smartotp"]


class OtpMethodChanged(Payload):
    """The account's preferred OTP delivery method changed (after a fresh account credential)."""

    event_type: ClassVar[str] = "vn.kyso.otp.method_changed.v1"
    topic: ClassVar[str] = topics.OTP
    key_field: ClassVar[str] = "account_id"

    account_id: Id
    method: OtpMethod
    previous: OtpMethod
    changed_at: UtcDateTime


class OtpMethodLocked(Payload):
    """The operator locked one OTP method of an account; the other keeps working."""

    event_type: ClassVar[str] = "vn.kyso.otp.method_locked.v1"
    topic: ClassVar[str] = topics.OTP
    key_field: ClassVar[str] = "account_id"

    account_id: Id
    method: OtpMethod
    reason: str = Field(min_length=1, max_length=500)
    locked_at: UtcDateTime


class OtpMethodUnlocked(Payload):
    """An OTP method was unlocked after the user re-proved their identity."""

    event_type: ClassVar[str] = "vn.kyso.otp.method_unlocked.v1"
    topic: ClassVar[str] = topics.OTP
    key_field: ClassVar[str] = "account_id"

    account_id: Id
    method: OtpMethod
    unlocked_at: UtcDateTime


class OtpTokenLocked(Payload):
    """A SmartOTP token locked itself after consecutive wrong codes."""

    event_type: ClassVar[str] = "vn.kyso.otp.token_locked.v1"
    topic: ClassVar[str] = topics.OTP
    key_field: ClassVar[str] = "token_id"

    token_id: Id
    account_id: Id
    failures: int = Field(ge=1)
    locked_at: UtcDateTime


class OtpTokenRevoked(Payload):
    """A SmartOTP token was revoked (forgotten PIN, re-enrolment); its codes never verify again."""

    event_type: ClassVar[str] = "vn.kyso.otp.token_revoked.v1"
    topic: ClassVar[str] = topics.OTP
    key_field: ClassVar[str] = "token_id"

    token_id: Id
    account_id: Id
    reason: Literal["pin_forgotten", "re_enrolment", "operator"]
    revoked_at: UtcDateTime


ALL_EVENTS: tuple[type[Payload], ...] = (
    AccountCreated,
    OrderPlaced,
    OrderCancelled,
    OrderExpired,
    OrganisationRegistrationOpened,
    OrganisationRegistrationConfirmed,
    OrganisationRegistrationWithdrawn,
    PaymentConfirmed,
    PaymentFailed,
    PaymentRefunded,
    ContractSigned,
    ContractSealed,
    IssuanceStopped,
    CertIssued,
    CertActivated,
    AcceptanceRecordSigned,
    PaymentAmountMismatch,
    ConsentRejected,
    CertRevoked,
    CertSuspended,
    CertResumed,
    CertExpired,
    SignatureRequested,
    SignatureCompleted,
    SignatureRejected,
    SignatureExpired,
    SmsOtpVerified,
    SmartOtpTransactionVerified,
    OtpEnrolled,
    OtpMethodChanged,
    OtpMethodLocked,
    OtpMethodUnlocked,
    OtpTokenLocked,
    OtpTokenRevoked,
)

BY_TYPE: dict[str, type[Payload]] = {e.event_type: e for e in ALL_EVENTS}
