"""The payment as a state machine, with no I/O.

    pending ──settle(success)──▶ confirmed      causes PaymentConfirmed
    pending ──settle(failure)──▶ failed         causes PaymentFailed
    failed  ──retry───────────▶ pending         (a new gateway reference; the old one is retired)
    pending / failed ──cancel─▶ cancelled       (the order closed; money that comes later is refunded)

Anything else is an :class:`IllegalTransition`. A notification whose amount differs from the
payment never settles it (the gateway is told, see :class:`NotificationOutcome`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from kyso_contracts import PaymentConfirmed, PaymentFailed
from kyso_kit.errors import IllegalTransition


class PaymentStatus(StrEnum):
    PENDING = "pending"
    CONFIRMED = "confirmed"
    FAILED = "failed"
    CANCELLED = "cancelled"  # the order closed before payment: a payment that comes anyway is refunded


TRANSITIONS: dict[tuple[PaymentStatus, str], frozenset[PaymentStatus]] = {
    (PaymentStatus.PENDING, "settle"): frozenset({PaymentStatus.CONFIRMED, PaymentStatus.FAILED}),
    (PaymentStatus.FAILED, "retry"): frozenset({PaymentStatus.PENDING}),
    (PaymentStatus.PENDING, "cancel"): frozenset({PaymentStatus.CANCELLED}),
    (PaymentStatus.FAILED, "cancel"): frozenset({PaymentStatus.CANCELLED}),
}


class NotificationOutcome(StrEnum):
    """What became of a gateway notification; each gateway adapter answers it in its own vocabulary."""

    ACCEPTED = "accepted"
    BAD_SIGNATURE = "bad_signature"
    UNKNOWN_PAYMENT = "unknown_payment"
    AMOUNT_MISMATCH = "amount_mismatch"
    ALREADY_SETTLED = "already_settled"
    ERROR = "error"  # something failed here: the gateway should send it again


RefundReason = str  # amount_mismatch · duplicate_payment · late_payment · cancelled_after_payment


@dataclass(frozen=True)
class RefundOrder:
    """One gateway transaction to give back in full."""

    txn_ref: str
    transaction_no: str
    amount_vnd: int
    created_at: datetime  # when the attempt was opened at the gateway (querydr/refund need it)


@dataclass(frozen=True)
class RefundOutcome:
    done: bool
    code: str


@dataclass(frozen=True)
class Payment:
    payment_id: str
    order_id: str
    account_id: str
    amount_vnd: int
    status: PaymentStatus
    txn_ref: str


@dataclass(frozen=True)
class GatewayResult:
    """A verified notification from the gateway, in our terms."""

    provider: str
    txn_ref: str
    amount_vnd: int | None  # None: not a whole number of đồng
    success: bool
    response_code: str
    transaction_no: str


def allowed(status: PaymentStatus, action: str) -> frozenset[PaymentStatus]:
    return TRANSITIONS.get((status, action), frozenset())


def settle(
    payment: Payment, result: GatewayResult, at: datetime
) -> tuple[PaymentStatus, PaymentConfirmed | PaymentFailed]:
    """The state a notification moves a pending payment to, and the event that says so."""
    if not allowed(payment.status, "settle"):
        raise IllegalTransition("payment", payment.status, "settle")
    if result.amount_vnd != payment.amount_vnd:
        raise ValueError("a notification for another amount never settles a payment")
    common = {
        "payment_id": payment.payment_id,
        "order_id": payment.order_id,
        "account_id": payment.account_id,
        "amount_vnd": payment.amount_vnd,
    }
    if result.success:
        return PaymentStatus.CONFIRMED, PaymentConfirmed(
            **common,
            provider=result.provider,
            provider_transaction_no=result.transaction_no or "0",
            confirmed_at=at,
        )
    code = result.response_code or "99"
    return PaymentStatus.FAILED, PaymentFailed(
        **common, reason_code=code, reason=f"gateway response {code}", failed_at=at
    )


def retry(payment: Payment) -> PaymentStatus:
    if not allowed(payment.status, "retry"):
        raise IllegalTransition("payment", payment.status, "retry")
    return PaymentStatus.PENDING
