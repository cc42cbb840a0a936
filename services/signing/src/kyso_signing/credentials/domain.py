"""The certificate's lifecycle as a state machine, with no I/O.

    collecting ──prepare──────────▶ awaiting_consent     (order and payment both known, amounts agree)
    collecting ──prepare──────────▶ amount_mismatch      causes PaymentAmountMismatch
    awaiting_consent ──reject_consent──▶ awaiting_consent  causes ConsentRejected (the user may retry)
    awaiting_consent ──consent────▶ issuing              (the serial is reserved before anything is signed)
    issuing ──issue───────────────▶ pending_activation   causes ContractSigned, CertIssued
    pending_activation ──activate─▶ active               causes CertActivated
    active ──suspend──────────────▶ suspended            causes CertSuspended (CRL reason certificateHold)
    suspended ──resume────────────▶ active               causes CertResumed
    pending_activation|active|suspended ──revoke──▶ revoked   causes CertRevoked (final; the key is destroyed)
    pending_activation|active|suspended ──expire──▶ expired   causes CertExpired (final)
    collecting|awaiting_consent|amount_mismatch ──cancel──▶ cancelled   causes IssuanceStopped (order closed)
    issuing ──fail────────────────▶ failed               causes IssuanceStopped (the CA refused; nothing signed)

Anything else raises :class:`IllegalTransition`.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from kyso_contracts import (
    CertActivated,
    CertExpired,
    CertIssued,
    CertResumed,
    CertRevoked,
    CertSuspended,
    ConsentRejected,
    ContractSigned,
    IssuanceStopped,
    Payload,
    PaymentAmountMismatch,
)
from kyso_kit.errors import IllegalTransition


class CertificateStatus(StrEnum):
    COLLECTING = "collecting"
    AWAITING_CONSENT = "awaiting_consent"
    AMOUNT_MISMATCH = "amount_mismatch"
    ISSUING = "issuing"
    PENDING_ACTIVATION = "pending_activation"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    EXPIRED = "expired"
    CANCELLED = "cancelled"  # the order was cancelled or expired before consent: nothing is issued
    FAILED = "failed"  # issuance failed for good (the CA refused the subject): nothing is issued


S = CertificateStatus
ISSUED = frozenset({S.PENDING_ACTIVATION, S.ACTIVE, S.SUSPENDED})
"""States of a certificate that exists and is neither revoked nor expired."""

TRANSITIONS: dict[tuple[CertificateStatus, str], frozenset[CertificateStatus]] = {
    (S.COLLECTING, "prepare"): frozenset({S.AWAITING_CONSENT, S.AMOUNT_MISMATCH}),
    (S.AWAITING_CONSENT, "reject_consent"): frozenset({S.AWAITING_CONSENT}),
    (S.AWAITING_CONSENT, "consent"): frozenset({S.ISSUING}),
    (S.ISSUING, "issue"): frozenset({S.PENDING_ACTIVATION}),
    (S.PENDING_ACTIVATION, "activate"): frozenset({S.ACTIVE}),
    (S.ACTIVE, "suspend"): frozenset({S.SUSPENDED}),
    (S.SUSPENDED, "resume"): frozenset({S.ACTIVE}),
    **{(s, "revoke"): frozenset({S.REVOKED}) for s in ISSUED},
    **{(s, "expire"): frozenset({S.EXPIRED}) for s in ISSUED},
    **{(s, "cancel"): frozenset({S.CANCELLED}) for s in (S.COLLECTING, S.AWAITING_CONSENT, S.AMOUNT_MISMATCH)},
    (S.ISSUING, "fail"): frozenset({S.FAILED}),
}
CANCELLABLE = frozenset({S.COLLECTING, S.AWAITING_CONSENT, S.AMOUNT_MISMATCH})
"""Before consent: the order can still close (its money, if any, is refunded by payment)."""

CONTRACT_SIGNED = frozenset({S.ISSUING, S.PENDING_ACTIVATION, S.ACTIVE, S.SUSPENDED, S.REVOKED, S.EXPIRED})


def next_status(status: CertificateStatus, action: str, outcome: CertificateStatus | None = None) -> CertificateStatus:
    """The state ``action`` leads to from ``status`` (``outcome`` picks one where there are two)."""
    targets = TRANSITIONS.get((status, action), frozenset())
    if not targets:
        raise IllegalTransition("certificate", status, action)
    if outcome is None:
        if len(targets) != 1:
            raise ValueError(f"{action} from {status} needs an outcome")
        return next(iter(targets))
    if outcome not in targets:
        raise IllegalTransition("certificate", status, f"{action} to {outcome}")
    return outcome


def prepare(status: CertificateStatus, *, paid_vnd: int, order_vnd: int) -> CertificateStatus:
    """Once both the order and its payment are known: draw up the contract, or stop on a mismatch."""
    return next_status(status, "prepare", S.AWAITING_CONSENT if paid_vnd == order_vnd else S.AMOUNT_MISMATCH)


def consent_problem(*, account_id: str, owner: str, binding: str | None, contract_sha256: str) -> str | None:
    """Why a verified consent code does not authorise *this* contract (SCAL2 dynamic linking), if so."""
    if account_id != owner:
        return "other_account"
    if binding != contract_sha256:
        return "bound_to_other_document"
    return None


# --------------------------------------------------------------------------- transitions and their events


@dataclass(frozen=True)
class Ref:
    """Which certificate, of which order and account, a transition is about."""

    certificate_id: str
    order_id: str
    account_id: str

    @classmethod
    def of(cls, doc: Mapping[str, Any]) -> Ref:
        """The reference of a certificate's record."""
        return cls(certificate_id=doc["_id"], order_id=doc["order_id"], account_id=doc["account_id"])


# The events each transition causes (property-tested against the functions below).
CAUSES: dict[tuple[CertificateStatus, str, CertificateStatus], tuple[type[Payload], ...]] = {
    (S.COLLECTING, "prepare", S.AWAITING_CONSENT): (),
    (S.COLLECTING, "prepare", S.AMOUNT_MISMATCH): (PaymentAmountMismatch,),
    (S.AWAITING_CONSENT, "reject_consent", S.AWAITING_CONSENT): (ConsentRejected,),
    (S.AWAITING_CONSENT, "consent", S.ISSUING): (),
    (S.ISSUING, "issue", S.PENDING_ACTIVATION): (ContractSigned, CertIssued),
    (S.PENDING_ACTIVATION, "activate", S.ACTIVE): (CertActivated,),
    (S.ACTIVE, "suspend", S.SUSPENDED): (CertSuspended,),
    (S.SUSPENDED, "resume", S.ACTIVE): (CertResumed,),
    **{(s, "revoke", S.REVOKED): (CertRevoked,) for s in ISSUED},
    **{(s, "expire", S.EXPIRED): (CertExpired,) for s in ISSUED},
    **{(s, "cancel", S.CANCELLED): (IssuanceStopped,) for s in CANCELLABLE},
    (S.ISSUING, "fail", S.FAILED): (IssuanceStopped,),
}

StopReason = Literal["cancelled", "order_expired", "issuance_failed"]


def stopped(
    status: CertificateStatus, ref: Ref, reason: StopReason, at: datetime
) -> tuple[CertificateStatus, IssuanceStopped]:
    """Nothing will be issued: the order closed before consent (registration says so), or issuance failed
    for good. Payment refunds what was paid on the event."""
    new = next_status(status, "fail" if reason == "issuance_failed" else "cancel")
    return new, IssuanceStopped(
        order_id=ref.order_id,
        account_id=ref.account_id,
        certificate_id=ref.certificate_id,
        reason=reason,
        stopped_at=at,
    )


def prepared(
    status: CertificateStatus, ref: Ref, *, paid_vnd: int, order_vnd: int, payment_id: str, at: datetime
) -> tuple[CertificateStatus, list[Payload]]:
    """Once both the order and its payment are known: draw up the contract, or stop on a mismatch."""
    new = prepare(status, paid_vnd=paid_vnd, order_vnd=order_vnd)
    if new == S.AWAITING_CONSENT:
        return new, []
    mismatch = PaymentAmountMismatch(
        **asdict(ref), payment_id=payment_id, paid_vnd=paid_vnd, order_vnd=order_vnd, detected_at=at
    )
    return new, [mismatch]


def consent_rejected(
    status: CertificateStatus, ref: Ref, *, contract_id: str, challenge_id: str, reason: str, at: datetime
) -> tuple[CertificateStatus, ConsentRejected]:
    new = next_status(status, "reject_consent")
    return new, ConsentRejected(
        **asdict(ref),
        contract_id=contract_id,
        consent_challenge_id=challenge_id,
        reason=reason,  # type: ignore[arg-type]
        rejected_at=at,
    )


@dataclass(frozen=True)
class Signed:
    """The consent and the certificate, as recorded when the certificate is issued."""

    contract_id: str
    contract_sha256: str
    consent_challenge_id: str
    provider_signature_b64: str
    signed_at: datetime
    serial_number: str
    subject_dn: str
    not_before: datetime
    not_after: datetime
    certificate_pem: str


def issued(status: CertificateStatus, ref: Ref, s: Signed) -> tuple[CertificateStatus, ContractSigned, CertIssued]:
    new = next_status(status, "issue")
    ids = asdict(ref)
    return (
        new,
        ContractSigned(
            **ids,
            contract_id=s.contract_id,
            contract_sha256=s.contract_sha256,
            consent_challenge_id=s.consent_challenge_id,
            provider_signature_b64=s.provider_signature_b64,
            signed_at=s.signed_at,
        ),
        CertIssued(
            **ids,
            serial_number=s.serial_number,
            subject_dn=s.subject_dn,
            not_before=s.not_before,
            not_after=s.not_after,
            certificate_pem=s.certificate_pem,
        ),
    )


def activated(
    status: CertificateStatus, ref: Ref, *, serial_number: str, record_sha256: str, signature_b64: str, at: datetime
) -> tuple[CertificateStatus, CertActivated]:
    new = next_status(status, "activate")
    return new, CertActivated(
        **asdict(ref),
        serial_number=serial_number,
        acceptance_record_sha256=record_sha256,
        acceptance_signature_b64=signature_b64,
        activated_at=at,
    )


@dataclass(frozen=True)
class Revocation:
    serial_number: str
    reason: str
    at: datetime
    by: str
    invalidity_date: datetime | None = None
    superseded_by: str | None = None


def revoked(status: CertificateStatus, ref: Ref, r: Revocation) -> tuple[CertificateStatus, CertRevoked]:
    new = next_status(status, "revoke")
    return new, CertRevoked(
        **asdict(ref),
        serial_number=r.serial_number,
        reason=r.reason,  # type: ignore[arg-type]
        revoked_at=r.at,
        invalidity_date=r.invalidity_date,
        revoked_by=r.by,  # type: ignore[arg-type]
        superseded_by=r.superseded_by,
    )


def suspended(
    status: CertificateStatus, ref: Ref, *, serial_number: str, at: datetime, by: str
) -> tuple[CertificateStatus, CertSuspended]:
    new = next_status(status, "suspend")
    return new, CertSuspended(**asdict(ref), serial_number=serial_number, suspended_at=at, suspended_by=by)  # type: ignore[arg-type]


def resumed(
    status: CertificateStatus, ref: Ref, *, serial_number: str, at: datetime, by: str
) -> tuple[CertificateStatus, CertResumed]:
    new = next_status(status, "resume")
    return new, CertResumed(**asdict(ref), serial_number=serial_number, resumed_at=at, resumed_by=by)  # type: ignore[arg-type]


def expired(
    status: CertificateStatus, ref: Ref, *, serial_number: str, at: datetime
) -> tuple[CertificateStatus, CertExpired]:
    new = next_status(status, "expire")
    return new, CertExpired(**asdict(ref), serial_number=serial_number, expired_at=at)
