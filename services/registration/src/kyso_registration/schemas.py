"""What the registration API accepts and answers (the OpenAPI document is generated from these)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, WithJsonSchema

from kyso_contracts import CertificateKind, OrganisationFacts
from kyso_contracts.types import (
    CitizenId,
    Email,
    Id,
    KeyAlgorithm,
    PackageCode,
    Password,
    Phone,
    TaxCode,
    ValidityYears,
    Vnd,
)

from . import domain


def _package_codes(*kinds: str) -> WithJsonSchema:
    codes = sorted(p.code for p in domain.PACKAGES.values() if p.kind in kinds)
    return WithJsonSchema({"type": "string", "enum": codes})


PersonalPackageCode = Annotated[PackageCode, _package_codes("personal")]
"""A package a person buys in the app."""
OrganisationPackageCode = Annotated[PackageCode, _package_codes("organisation", "staff")]
"""A package a sales agent registers for an organisation (organisation or individual in an organisation)."""


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class VneidIdentity(Strict):
    """The payload of VNeID's signed assertion."""

    citizen_id: CitizenId
    full_name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    date_of_birth: date
    eid_level: int = Field(ge=1, le=2, description="Level of the electronic identification account; 2 is required")
    province: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = Field(
        default=None, description="Province or city of residence, when VNeID shares it (the certificate's ST)"
    )
    locality: Annotated[str, StringConstraints(min_length=1, max_length=100)] | None = Field(
        default=None, description="District or commune of residence, when shared (the certificate's L)"
    )
    certificate_type: Literal["PERSONAL"] = "PERSONAL"
    issued_at: datetime
    nonce: Annotated[str, StringConstraints(min_length=16, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class OrganisationSummary(BaseModel):
    name: str
    tax_code: str


class VneidStatusQuery(Strict):
    """The payload of VNeID's signed status query."""

    query: Literal["certificate_status"]
    citizen_id: CitizenId
    issued_at: datetime
    nonce: Annotated[str, StringConstraints(min_length=16, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class VneidCertificateView(BaseModel):
    order_id: Id
    package_code: PackageCode
    certificate_kind: CertificateKind
    organisation: OrganisationSummary | None = None
    status: str = Field(description="The order's status (see OrderView.status)")
    status_vi: str
    serial_number: str | None = None
    not_before: str | None = None
    not_after: str | None = None
    activated_at: str | None = None
    revoked_at: str | None = None
    refunded_vnd: int = Field(default=0, description="Money given back for this order")


class VneidStatusView(BaseModel):
    citizen_id: CitizenId
    as_of: str = Field(description="Asia/Ho_Chi_Minh time of this answer")
    certificates: list[VneidCertificateView] = Field(description="Newest first; orders closed unpaid are left out")


_CompactJws = Annotated[
    str, StringConstraints(max_length=8192, pattern=r"^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$")
]


class VneidRegistration(Strict):
    assertion: _CompactJws = Field(
        description="VNeID's compact JWS (RFC 7515, ES256) whose payload is the identity (see VneidIdentity)"
    )


class VneidStatusRequest(Strict):
    assertion: _CompactJws = Field(
        description="VNeID's compact JWS (RFC 7515, ES256) whose payload is the query (see VneidStatusQuery)"
    )


class AccountRequest(Strict):
    phone: Phone
    email: Email
    password: Password = Field(
        json_schema_extra={"minLength": 10, "maxLength": 128},
        description="10 to 128 characters, at least 4 different ones, not a well-known password, not "
        "containing the phone number or the email's local part (422 weak_password, with the problems)",
    )


class LoginRequest(Strict):
    phone: Phone
    password: Password


class OrderRequest(Strict):
    package_code: PersonalPackageCode
    key_algorithm: KeyAlgorithm = Field(
        default="ecdsa-p256", description="ECDSA P-256 (default), P-384, or RSA-3072 used with PSS"
    )
    renews_certificate_id: Id | None = Field(
        default=None,
        description="Renew this certificate of yours: it is revoked (superseded) once the new one is active",
    )


class IdentityView(BaseModel):
    citizen_id: CitizenId
    full_name: str
    date_of_birth: str
    eid_level: int
    province: str | None = None
    locality: str | None = None


class RegistrationView(BaseModel):
    registration_id: Id
    status: Literal["pending_confirmation", "confirmed", "account_created"]
    identity: IdentityView
    verified_phones: list[Phone]
    account_id: Id | None = None


class SessionView(BaseModel):
    account_id: Id
    access_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 (a scheme name, not a secret)
    expires_in: int = Field(description="Seconds")
    roles: list[str]


class AccountView(BaseModel):
    account_id: Id
    phone: Phone
    email: Email | None = None
    registration_id: Id | None = None
    roles: list[str]


class PackageView(BaseModel):
    code: PackageCode
    name: str
    name_vi: str
    validity_years: ValidityYears
    price_vnd: Vnd
    kind: CertificateKind = Field(
        default="personal",
        description="personal (self-service) · organisation · staff (individual in an organisation): the last "
        "two are sold through a sales agent",
    )


class PackageList(BaseModel):
    packages: list[PackageView]


class CertificateSummary(BaseModel):
    certificate_id: Id | None = None
    serial_number: str | None = None
    subject_dn: str | None = None
    not_before: str | None = None
    not_after: str | None = None
    activated_at: str | None = None
    suspended_at: str | None = None
    revoked_at: str | None = None
    revocation_reason: str | None = None
    superseded_by: Id | None = None


class TimelineEntry(BaseModel):
    event: str
    at: str = Field(description="Asia/Ho_Chi_Minh time")


class RefundEntry(BaseModel):
    amount_vnd: int
    reason: str = Field(
        description="amount_mismatch · duplicate_payment · late_payment · cancelled_after_payment · "
        "issuance_failed · operator"
    )
    reason_vi: str
    at: str


class OrderView(BaseModel):
    order_id: Id
    account_id: Id
    package_code: PackageCode
    validity_years: ValidityYears
    amount_vnd: Vnd
    status: str = Field(
        description="awaiting_payment · payment_failed · paid · payment_amount_mismatch · "
        "consent_rejected · contract_signed · pending_activation · active · suspended · revoked · expired · "
        "cancelled · order_expired · cancellation_requested · issuance_failed"
    )
    key_algorithm: KeyAlgorithm = "ecdsa-p256"
    renews_certificate_id: Id | None = None
    status_vi: str
    certificate: CertificateSummary | None = None
    timeline: list[TimelineEntry]
    refunds: list[RefundEntry] = Field(default_factory=list, description="Money given back for this order, and why")
    certificate_kind: CertificateKind = "personal"
    organisation: OrganisationSummary | None = None
    organisation_registration_id: Id | None = None


_Name = Annotated[str, StringConstraints(min_length=1, max_length=200, strip_whitespace=True)]


class OrganisationRequest(Strict):
    name: _Name = Field(description="The organisation's registered name (the certificate's O=)")
    tax_code: TaxCode = Field(description="Mã số thuế: 10 digits with the check digit, or -NNN for a branch")
    address: Annotated[str, StringConstraints(min_length=1, max_length=300, strip_whitespace=True)]
    province: Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)] | None = None
    legal_representative: _Name


class AuthorisedPersonRequest(Strict):
    full_name: _Name
    citizen_id: CitizenId = Field(description="The CCCD the person will prove through VNeID")
    phone: Phone = Field(description="The invitation is sent here by SMS")


class OrganisationRegistrationRequest(Strict):
    organisation: OrganisationRequest
    authorised_person: AuthorisedPersonRequest
    package_codes: list[OrganisationPackageCode] = Field(
        min_length=1, max_length=10, description="Organisation and/or staff packages, each becomes an order"
    )


class AuthorisedPersonView(BaseModel):
    full_name: str
    citizen_id: CitizenId
    phone: str = Field(description="Masked")


class OrganisationOrderView(BaseModel):
    order_id: Id
    package_code: PackageCode
    status: str | None = Field(default=None, description="The order's status, once it is placed")


class OrganisationRegistrationView(BaseModel):
    organisation_registration_id: Id
    status: Literal["invited", "confirmed", "withdrawn"]
    status_vi: str
    organisation: OrganisationFacts
    authorised_person: AuthorisedPersonView
    packages: list[PackageView]
    total_vnd: Vnd
    sales_agent_id: Id
    opened_at: str
    confirmed_at: str | None = None
    account_id: Id | None = Field(default=None, description="The authorised person's account, once confirmed")
    orders: list[OrganisationOrderView] = Field(default_factory=list)


class OrganisationRegistrationList(BaseModel):
    registrations: list[OrganisationRegistrationView]


class Jwks(BaseModel):
    keys: list[dict[str, str]]
