"""Registration rules with no I/O: the package catalogue, the order's status machine, password policy,
VNeID assertions."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from joserfc import jws
from joserfc.errors import JoseError
from joserfc.jwk import ECKey
from pydantic import ValidationError

from kyso_contracts import CertificateKind
from kyso_contracts.vneid import JWS_ALGORITHM
from kyso_kit.errors import IllegalTransition
from kyso_kit.timeutil import as_utc


@dataclass(frozen=True)
class Package:
    code: str
    name_vi: str
    name_en: str
    validity_years: int
    price_vnd: int
    kind: CertificateKind = "personal"


# Decree 23/2025: a subscriber certificate is valid for at most three years. Organisation and "individual
# in an organisation" (staff) packages are sold through a sales agent only (the SmartCA guide's rule).
PACKAGES: dict[str, Package] = {
    p.code: p
    for p in (
        Package("PERSONAL_1Y", "Chứng thư số cá nhân 1 năm", "Personal certificate, 1 year", 1, 800_000),
        Package("PERSONAL_2Y", "Chứng thư số cá nhân 2 năm", "Personal certificate, 2 years", 2, 1_400_000),
        Package("PERSONAL_3Y", "Chứng thư số cá nhân 3 năm", "Personal certificate, 3 years", 3, 1_900_000),
        Package(
            "ORGANISATION_1Y",
            "Chứng thư số tổ chức 1 năm",
            "Organisation certificate, 1 year",
            1,
            2_500_000,
            "organisation",
        ),
        Package(
            "ORGANISATION_2Y",
            "Chứng thư số tổ chức 2 năm",
            "Organisation certificate, 2 years",
            2,
            4_500_000,
            "organisation",
        ),
        Package(
            "ORGANISATION_3Y",
            "Chứng thư số tổ chức 3 năm",
            "Organisation certificate, 3 years",
            3,
            6_000_000,
            "organisation",
        ),
        Package(
            "STAFF_1Y",
            "Chứng thư số cá nhân thuộc tổ chức 1 năm",
            "Individual in an organisation, 1 year",
            1,
            1_000_000,
            "staff",
        ),
        Package(
            "STAFF_2Y",
            "Chứng thư số cá nhân thuộc tổ chức 2 năm",
            "Individual in an organisation, 2 years",
            2,
            1_800_000,
            "staff",
        ),
        Package(
            "STAFF_3Y",
            "Chứng thư số cá nhân thuộc tổ chức 3 năm",
            "Individual in an organisation, 3 years",
            3,
            2_400_000,
            "staff",
        ),
    )
}


class OrganisationRegistrationStatus(StrEnum):
    INVITED = "invited"  # opened by a sales agent, waiting for the authorised person
    CONFIRMED = "confirmed"  # the authorised person confirmed it; its orders are placed
    WITHDRAWN = "withdrawn"  # withdrawn before confirmation


ORG_STATUS_VI = {
    OrganisationRegistrationStatus.INVITED: "Chờ người được ủy quyền xác nhận",
    OrganisationRegistrationStatus.CONFIRMED: "Đã xác nhận, đơn hàng đã tạo",
    OrganisationRegistrationStatus.WITHDRAWN: "Đã rút đăng ký",
}


class OrderStatus(StrEnum):
    AWAITING_PAYMENT = "awaiting_payment"
    PAYMENT_FAILED = "payment_failed"
    PAID = "paid"
    PAYMENT_AMOUNT_MISMATCH = "payment_amount_mismatch"
    CONSENT_REJECTED = "consent_rejected"
    CONTRACT_SIGNED = "contract_signed"
    PENDING_ACTIVATION = "pending_activation"
    ACTIVE = "active"
    SUSPENDED = "suspended"
    REVOKED = "revoked"
    EXPIRED = "expired"
    CANCELLED = "cancelled"  # by the subscriber, before payment or (signing agreeing) before consent
    ORDER_EXPIRED = "order_expired"  # not paid in time
    CANCELLATION_REQUESTED = "cancellation_requested"  # paid: signing decides whether issuance can stop
    ISSUANCE_FAILED = "issuance_failed"  # nothing could be issued; the payment is refunded


St = OrderStatus
OPEN = frozenset({OrderStatus.AWAITING_PAYMENT, OrderStatus.PAYMENT_FAILED})
"""Orders that wait for payment: one per subscriber and package; they may be cancelled, and expire."""
PAID_NOT_CONSENTED = frozenset({OrderStatus.PAID, OrderStatus.CONSENT_REJECTED})
"""Paid orders whose contract is not consented yet: a cancellation asks signing to stop issuance."""
CLOSED = frozenset({OrderStatus.CANCELLED, OrderStatus.ORDER_EXPIRED})
"""Closed orders: later payment reports (a payment that raced the closing, refunded) are absorbed."""

# The order's life as the user sees it. Each step is reported by another service's event.
NEXT: dict[OrderStatus, frozenset[OrderStatus]] = {
    St.AWAITING_PAYMENT: frozenset({St.PAYMENT_FAILED, St.PAID, St.CANCELLED, St.ORDER_EXPIRED}),
    # a failed payment may be retried
    St.PAYMENT_FAILED: frozenset({St.PAYMENT_FAILED, St.PAID, St.CANCELLED, St.ORDER_EXPIRED}),
    St.CANCELLED: frozenset(),
    St.ORDER_EXPIRED: frozenset(),
    St.PAID: frozenset(
        {
            St.PAYMENT_AMOUNT_MISMATCH,
            St.CONSENT_REJECTED,
            St.CONTRACT_SIGNED,
            St.CANCELLATION_REQUESTED,
            St.ISSUANCE_FAILED,
        }
    ),
    St.PAYMENT_AMOUNT_MISMATCH: frozenset(),  # stops here until it is refunded
    St.CONSENT_REJECTED: frozenset(
        {St.CONSENT_REJECTED, St.CONTRACT_SIGNED, St.CANCELLATION_REQUESTED, St.ISSUANCE_FAILED}
    ),
    # signing stops issuance (cancelled), or the consent got there first and the order goes on
    St.CANCELLATION_REQUESTED: frozenset({St.CANCELLED, St.CONTRACT_SIGNED, St.ISSUANCE_FAILED}),
    St.ISSUANCE_FAILED: frozenset(),
    St.CONTRACT_SIGNED: frozenset({St.PENDING_ACTIVATION, St.ISSUANCE_FAILED}),
    St.PENDING_ACTIVATION: frozenset({St.ACTIVE, St.REVOKED, St.EXPIRED}),
    # the certificate's life after activation; a resumption (suspended → active) is not a report of
    # a later stage but an undo, applied by :func:`resume` (one certificate's events arrive in order)
    St.ACTIVE: frozenset({St.SUSPENDED, St.REVOKED, St.EXPIRED}),
    St.SUSPENDED: frozenset({St.REVOKED, St.EXPIRED}),
    St.REVOKED: frozenset(),
    St.EXPIRED: frozenset(),
}


def _reachable(start: OrderStatus) -> frozenset[OrderStatus]:
    seen: set[OrderStatus] = set()
    todo = list(NEXT[start])
    while todo:
        s = todo.pop()
        if s not in seen:
            seen.add(s)
            todo.extend(NEXT[s])
    return frozenset(seen)


REACHABLE: dict[OrderStatus, frozenset[OrderStatus]] = {s: _reachable(s) for s in OrderStatus}
SERVED = REACHABLE[St.CONTRACT_SIGNED] - {St.ISSUANCE_FAILED} | {St.CONTRACT_SIGNED}
"""The contract was consented to: the order is served, whatever closing raced it."""


def advance(current: OrderStatus, reported: OrderStatus) -> OrderStatus:
    """The order's status after an event reports ``reported``.

    Events come from different topics and may arrive in any order: a report of a later stage moves
    the order forward (even past steps not yet reported); a report of a stage the order has already
    passed is absorbed (it stays in the timeline); a report that no path connects is illegal.
    """
    if current in CLOSED:
        if reported in SERVED:  # consent got there before the closing: signing serves the order
            return reported
        return current  # a payment that raced the closing is refunded, the order stays closed
    if reported in REACHABLE[current]:
        return reported
    if reported == current or current in REACHABLE[reported]:
        return current
    raise IllegalTransition("order", current, f"become {reported}")


def resume(current: OrderStatus) -> OrderStatus:
    """The order's status when its suspended certificate is resumed."""
    if current != St.SUSPENDED:
        raise IllegalTransition("order", current, "resume")
    return St.ACTIVE


STATUS_VI = {
    St.AWAITING_PAYMENT: "Chờ thanh toán",
    St.PAYMENT_FAILED: "Thanh toán không thành công",
    St.PAID: "Đã thanh toán",
    St.PAYMENT_AMOUNT_MISMATCH: "Số tiền thanh toán không khớp, chờ hoàn tiền",
    St.CONSENT_REJECTED: "Mã xác nhận không khớp hợp đồng, vui lòng ký lại",
    St.CONTRACT_SIGNED: "Đã ký hợp đồng",
    St.PENDING_ACTIVATION: "Chờ người dùng kích hoạt",
    St.ACTIVE: "Đang hoạt động",
    St.SUSPENDED: "Tạm dừng",
    St.REVOKED: "Đã thu hồi",
    St.EXPIRED: "Đã hết hạn",
    St.CANCELLED: "Đã hủy",
    St.ORDER_EXPIRED: "Quá hạn thanh toán, đơn hàng đã đóng",
    St.CANCELLATION_REQUESTED: "Đang hủy đơn hàng đã thanh toán",
    St.ISSUANCE_FAILED: "Không thể cấp chứng thư số, đã hoàn tiền",
}


def password_problems(password: str, phone: str, email: str) -> list[str]:
    """NIST SP 800-63B style: length over composition rules, and no obvious values."""
    problems = []
    if len(password) < 10:
        problems.append("at least 10 characters")
    if len(password) > 128:
        problems.append("at most 128 characters")
    lowered = password.lower()
    if lowered in {"password123", "1234567890", "qwertyuiop", "matkhau123", "0123456789"} or len(set(password)) < 4:
        problems.append("too easy to guess")
    local_part = email.split("@")[0].lower()
    if phone.lstrip("+") in password or phone[3:] in password or (len(local_part) >= 4 and local_part in lowered):
        problems.append("must not contain the phone number or email")
    return problems


VNEID_CLOCK_SKEW_SECONDS = 60


def vneid_fresh(issued_at: datetime, now: datetime, max_age_seconds: float) -> bool:
    """Whether something VNeID signed at ``issued_at`` is recent enough (and not from the future beyond
    the clock skew we allow)."""
    age = (now - as_utc(issued_at)).total_seconds()
    return -VNEID_CLOCK_SKEW_SECONDS <= age <= max_age_seconds


def validation_details(exc: ValidationError) -> dict[str, Any]:
    """Which fields of a signed payload were wrong, for the error's details."""
    return {"errors": [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]}


class VneidVerifier:
    """Checks VNeID's identity assertion: a compact JWS (ES256) over the identity JSON."""

    def __init__(self, public_pem: str) -> None:
        key = ECKey.import_key(public_pem)
        if key.curve_name != "P-256":
            raise ValueError("VNeID key must be an EC P-256 public key")
        self._key = key

    def identity(self, assertion: str) -> dict[str, Any] | None:
        """The signed identity, or None when the assertion is not signed by VNeID."""
        try:
            signed = jws.deserialize_compact(assertion, self._key, algorithms=[JWS_ALGORITHM])
            payload = json.loads(signed.payload)
        except (JoseError, ValueError, UnicodeDecodeError):
            return None
        return payload if isinstance(payload, dict) else None
