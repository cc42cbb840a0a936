"""The certificate's lifecycle as a state machine, with no I/O.

    collecting ──prepare──────────▶ awaiting_consent     (order and payment both known, amounts agree)
    collecting ──prepare──────────▶ amount_mismatch      causes PaymentAmountMismatch
    awaiting_consent ──reject_consent──▶ awaiting_consent  causes ConsentRejected (the user may retry)
    awaiting_consent ──consent────▶ issuing              (the serial is reserved before anything is signed)
    issuing ──issue───────────────▶ pending_activation   causes ContractSigned, CertIssued
    pending_activation ──activate─▶ active               causes CertActivated

Anything else raises :class:`IllegalTransition`.
"""

from __future__ import annotations

from enum import StrEnum

from kyso_kit.errors import IllegalTransition


class CertificateStatus(StrEnum):
    COLLECTING = "collecting"
    AWAITING_CONSENT = "awaiting_consent"
    AMOUNT_MISMATCH = "amount_mismatch"
    ISSUING = "issuing"
    PENDING_ACTIVATION = "pending_activation"
    ACTIVE = "active"


S = CertificateStatus

TRANSITIONS: dict[tuple[CertificateStatus, str], frozenset[CertificateStatus]] = {
    (S.COLLECTING, "prepare"): frozenset({S.AWAITING_CONSENT, S.AMOUNT_MISMATCH}),
    (S.AWAITING_CONSENT, "reject_consent"): frozenset({S.AWAITING_CONSENT}),
    (S.AWAITING_CONSENT, "consent"): frozenset({S.ISSUING}),
    (S.ISSUING, "issue"): frozenset({S.PENDING_ACTIVATION}),
    (S.PENDING_ACTIVATION, "activate"): frozenset({S.ACTIVE}),
}

CONTRACT_SIGNED = frozenset({S.ISSUING, S.PENDING_ACTIVATION, S.ACTIVE})


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
