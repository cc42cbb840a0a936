"""The example outside subscriber (contracts/examples): it keeps a citizen's status from events that
arrive in any order and more than once, with nothing of kyso but the contracts package."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

from vneid_status_subscriber import StatusBook

from kyso_contracts import (
    CertActivated,
    CertIssued,
    CertResumed,
    CertSuspended,
    OrderCancelled,
    OrderPlaced,
    PaymentConfirmed,
    PaymentRefunded,
    SubscriberIdentity,
    wrap,
)

AT = datetime(2026, 11, 28, 9, 0, tzinfo=UTC)
CITIZEN = "001099012345"


def ev(payload: Any) -> Any:
    return wrap(payload, source="/kyso/test", correlation_id="c", time=AT)


def placed(order_id: str) -> Any:
    return ev(
        OrderPlaced(
            order_id=order_id, account_id="a1", registration_id="r1",
            subscriber=SubscriberIdentity(citizen_id=CITIZEN, full_name="Lê Thị Hoa", date_of_birth=date(1990, 1, 2)),
            email="a@example.vn", package_code="PERSONAL_1Y", validity_years=1, amount_vnd=800_000, placed_at=AT,
        )
    )  # fmt: skip


def test_events_in_any_order_and_twice_give_the_status_once() -> None:
    book = StatusBook()
    ref = {"certificate_id": "c1", "order_id": "o1", "account_id": "a1", "serial_number": "1f"}
    issued = ev(
        CertIssued(**ref, subject_dn="CN=x", not_before=AT, not_after=AT.replace(year=2027), certificate_pem="pem")
    )
    activated = ev(
        CertActivated(**ref, activated_at=AT, acceptance_record_sha256="a" * 64, acceptance_signature_b64="cw==")
    )
    paid = ev(PaymentConfirmed(
        payment_id="p1", order_id="o1", account_id="a1", amount_vnd=800_000, provider="vnpay",
        provider_transaction_no="1", confirmed_at=AT,
    ))  # fmt: skip
    for e in (issued, activated, activated, paid, placed("o1")):  # the certificate's news came first
        book.apply(e)
    [row] = book.of_citizen(CITIZEN)
    assert (row.status, row.serial_number) == ("active", "1f")
    book.apply(ev(CertSuspended(**ref, suspended_at=AT, suspended_by="subscriber")))
    assert book.of_citizen(CITIZEN)[0].status == "suspended"
    book.apply(ev(CertResumed(**ref, resumed_at=AT, resumed_by="subscriber")))
    assert book.of_citizen(CITIZEN)[0].status == "active"

    # closed unpaid: left out; a refund is counted once
    book.apply(placed("o2"))
    cancelled = ev(OrderCancelled(order_id="o2", account_id="a1", amount_vnd=800_000, cancelled_at=AT))
    book.apply(cancelled)
    assert [r.order_id for r in book.of_citizen(CITIZEN)] == ["o1"]
    refund = ev(PaymentRefunded(
        payment_id="p2", order_id="o2", account_id="a1", amount_vnd=800_000, reason="late_payment",
        provider="vnpay", provider_transaction_no="2", refunded_at=AT,
    ))  # fmt: skip
    assert book.apply(refund) and not book.apply(refund)
    shown = {r.order_id: r for r in book.of_citizen(CITIZEN)}
    assert shown["o2"].status == "cancelled" and shown["o2"].refunded_vnd == 800_000
