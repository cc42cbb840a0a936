"""Payment rules: one payment per order, checkout, signed notifications, amount checks, retry."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from kyso_contracts import OrderPlaced, PaymentConfirmed, PaymentFailed, PaymentRefunded
from kyso_kit.auth import Principal
from kyso_kit.clock import FakeClock
from kyso_kit.errors import Conflict, Forbidden, NotFound, Rejected
from kyso_kit.routing import deliver
from kyso_kit.store import MemoryStore
from kyso_payment import sandbox_gateway, vnpay
from kyso_payment.core import build_core
from kyso_payment.gateway import VnpayGateway
from kyso_payment.handlers import HANDLERS
from kyso_payment.payments import Payments
from kyso_payment.settings import PaymentSettings

from .conftest import delivered, order_placed

SECRET = "test-secret"
ALICE = Principal("acct-alice")


def order(order_id: str = "order-1", amount: int = 800_000) -> OrderPlaced:
    at = datetime(2026, 3, 1, tzinfo=UTC)
    return order_placed(order_id, ALICE.account_id, amount, at, full_name="Nguyễn Văn A", years=1)


@pytest.fixture
def sandbox() -> sandbox_gateway.Gateway:
    """VNPay's counterpart (its ledger, its merchant API), called in process instead of over HTTP."""
    return sandbox_gateway.Gateway("KYSOTEST", SECRET, "http://kyso.example/v1/payments/vnpay/ipn")


@pytest.fixture
def gateway(sandbox: sandbox_gateway.Gateway) -> VnpayGateway:
    async def post(url: str, body: dict[str, str]) -> dict[str, Any]:
        return sandbox.transaction_api(dict(body))

    return VnpayGateway(
        "KYSOTEST", SECRET, "https://pay.example/vpcpay.html", "kyso://payment-result", "https://api.example", post
    )


@pytest.fixture
async def payments(store: MemoryStore, gateway: VnpayGateway, clock: FakeClock) -> Payments:
    p = build_core(store, clock, PaymentSettings(reconcile_after_seconds=300), gateway)
    await p.init()
    assert await deliver(HANDLERS, p, delivered(order(), clock))
    return p


async def checkout_url(payments: Payments, order_id: str = "order-1") -> str:
    view = await payments.for_order(ALICE, order_id)
    return (await payments.checkout(ALICE, view.payment_id, "203.0.113.9")).payment_url


async def pay(
    payments: Payments, sandbox: sandbox_gateway.Gateway, outcome: str = "success", paid: int | None = None
) -> dict[str, str]:
    return sandbox.ipn_of(sandbox.paid(await checkout_url(payments), outcome, paid))


async def test_an_order_delivered_twice_opens_one_payment(payments: Payments, clock: FakeClock) -> None:
    again = delivered(order(), clock)
    await deliver(HANDLERS, payments, again)
    await deliver(HANDLERS, payments, again)
    assert await payments.payments.count({"order_id": "order-1"}) == 1


async def test_the_checkout_url_is_signed_in_dong_times_100(payments: Payments, clock: FakeClock) -> None:
    view = await payments.for_order(ALICE, "order-1")
    url = (await payments.checkout(ALICE, view.payment_id, "203.0.113.9")).payment_url
    query = dict(parse_qsl(urlsplit(url).query))
    assert query["vnp_Amount"] == "80000000" and vnpay.verify(query, SECRET)
    assert query["vnp_CreateDate"] == "20260301090000"  # GMT+7


async def test_a_signed_notification_confirms_once_and_duplicates_say_already_settled(
    payments: Payments, sandbox: sandbox_gateway.Gateway, store: MemoryStore
) -> None:
    ipn = await pay(payments, sandbox)
    assert (await payments.notify(ipn))["RspCode"] == "00"
    assert (await payments.notify(ipn))["RspCode"] == "02"
    [confirmed] = store.of_type(PaymentConfirmed)
    assert confirmed.data.amount_vnd == 800_000 and confirmed.correlationid == "journey-1"
    with pytest.raises(Conflict):
        await pay(payments, sandbox)  # settled: no second checkout


async def test_forged_and_unknown_notifications_change_nothing(
    payments: Payments, sandbox: sandbox_gateway.Gateway, store: MemoryStore
) -> None:
    ipn = await pay(payments, sandbox)
    assert (await payments.notify({**ipn, "vnp_ResponseCode": "00", "vnp_Amount": "1"}))["RspCode"] == "97"
    unknown = {k: v for k, v in ipn.items() if k != "vnp_SecureHash"} | {"vnp_TxnRef": "nope"}
    unknown["vnp_SecureHash"] = vnpay.sign(unknown, SECRET)
    assert (await payments.notify(unknown))["RspCode"] == "01"
    # a signature with characters outside ASCII (found by schema fuzzing: it used to be a 500)
    garbled = {**ipn, "vnp_SecureHash": "8]\x87\xb4\x03\xf4"}
    assert (await payments.notify(garbled))["RspCode"] == "97"
    with pytest.raises(Rejected):
        await payments.returned(garbled)
    assert store.published == [] and (await payments.for_order(ALICE, "order-1")).status == "pending"


async def test_a_failed_payment_can_be_retried_with_a_new_reference_and_the_old_one_is_retired(
    payments: Payments, sandbox: sandbox_gateway.Gateway, store: MemoryStore
) -> None:
    cancelled = await pay(payments, sandbox, "cancel")
    assert (await payments.notify(cancelled))["RspCode"] == "00"
    [failed] = store.of_type(PaymentFailed)
    assert failed.data.reason_code == "24"
    retry = await pay(payments, sandbox)
    assert retry["vnp_TxnRef"] != cancelled["vnp_TxnRef"]
    assert (await payments.notify(cancelled))["RspCode"] == "02"  # the retired attempt: nothing more to do
    assert (await payments.notify(retry))["RspCode"] == "00"
    assert len(store.of_type(PaymentConfirmed)) == 1


async def test_only_the_owner_or_an_operator_sees_a_payment(payments: Payments) -> None:
    with pytest.raises(Forbidden):
        await payments.for_order(Principal("someone-else"), "order-1")
    assert (await payments.for_order(Principal("op", frozenset({"operator"})), "order-1")).order_id == "order-1"


async def test_a_reader_waiting_for_the_payment_gets_it_as_soon_as_it_is_opened(
    payments: Payments, clock: FakeClock
) -> None:
    import asyncio

    waiting = asyncio.create_task(payments.for_order(ALICE, "order-2", wait_seconds=10))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await deliver(HANDLERS, payments, delivered(order("order-2"), clock))
    assert (await asyncio.wait_for(waiting, 1)).order_id == "order-2"
    with pytest.raises(Exception, match="not found"):
        await payments.for_order(ALICE, "order-never", wait_seconds=0.05)


async def test_a_payment_of_the_wrong_amount_is_refunded_and_the_order_still_waits(
    payments: Payments, sandbox: sandbox_gateway.Gateway, store: MemoryStore
) -> None:
    ipn = await pay(payments, sandbox, paid=700_000)
    assert (await payments.notify(ipn))["RspCode"] == "04"
    assert (await payments.notify(ipn))["RspCode"] == "04"  # told twice: refunded once
    [refunded] = store.of_type(PaymentRefunded)
    assert (refunded.data.reason, refunded.data.amount_vnd) == ("amount_mismatch", 700_000)
    assert refunded.data.provider_transaction_no == ipn["vnp_TransactionNo"]
    assert sandbox.ledger[ipn["vnp_TxnRef"]]["refunded"] == 70_000_000  # the gateway gave it back
    view = await payments.for_order(ALICE, "order-1")
    assert view.status == "pending" and [r.reason for r in view.refunds] == ["amount_mismatch"]
    assert not store.of_type(PaymentConfirmed)
    good = sandbox.ipn_of(sandbox.paid(await checkout_url(payments)))  # then the right amount
    assert (await payments.notify(good))["RspCode"] == "00"


async def test_a_payment_whose_ipn_never_comes_is_settled_by_reconciliation(
    payments: Payments, sandbox: sandbox_gateway.Gateway, store: MemoryStore, clock: FakeClock
) -> None:
    sandbox.paid(await checkout_url(payments))  # paid at the gateway; the IPN is lost
    assert await payments.reconcile() == 0  # too early: the IPN may still come
    clock.advance(seconds=301)
    assert await payments.reconcile() == 1
    assert await payments.reconcile() == 0
    [confirmed] = store.of_type(PaymentConfirmed)
    assert confirmed.data.order_id == "order-1"
    assert (await payments.for_order(ALICE, "order-1")).status == "confirmed"


async def test_an_unpaid_checkout_is_left_pending_by_reconciliation(
    payments: Payments, store: MemoryStore, clock: FakeClock
) -> None:
    await checkout_url(payments)  # the user opened the page and left: the gateway knows nothing (91)
    clock.advance(seconds=3600)
    assert await payments.reconcile() == 0 and store.published == []


async def test_a_second_successful_payment_for_one_order_is_refunded(
    payments: Payments, sandbox: sandbox_gateway.Gateway, store: MemoryStore
) -> None:
    first_url = await checkout_url(payments)
    failed = sandbox.ipn_of(sandbox.paid(first_url, "cancel"))
    assert (await payments.notify(failed))["RspCode"] == "00"  # we believe it failed …
    second = await pay(payments, sandbox)
    assert (await payments.notify(second))["RspCode"] == "00"
    late = sandbox.ipn_of(sandbox.paid(first_url))  # … but the first attempt went through after all
    assert (await payments.notify(late))["RspCode"] == "00"
    assert (await payments.notify(late))["RspCode"] == "00"
    [refunded] = store.of_type(PaymentRefunded)
    assert (
        refunded.data.reason == "duplicate_payment"
        and refunded.data.provider_transaction_no == late["vnp_TransactionNo"]
    )
    assert len(store.of_type(PaymentConfirmed)) == 1


async def test_a_retired_attempt_that_succeeds_while_the_payment_waits_pays_the_order(
    payments: Payments, sandbox: sandbox_gateway.Gateway, store: MemoryStore
) -> None:
    first_url = await checkout_url(payments)
    assert (await payments.notify(sandbox.ipn_of(sandbox.paid(first_url, "cancel"))))["RspCode"] == "00"
    await checkout_url(payments)  # a new attempt is opened, not paid
    late = sandbox.ipn_of(sandbox.paid(first_url))
    assert (await payments.notify(late))["RspCode"] == "00"
    [confirmed] = store.of_type(PaymentConfirmed)
    assert confirmed.data.provider_transaction_no == late["vnp_TransactionNo"]
    assert not store.of_type(PaymentRefunded)


async def test_a_refund_the_gateway_cannot_take_now_is_asked_again_by_reconciliation(
    payments: Payments, sandbox: sandbox_gateway.Gateway, store: MemoryStore, gateway: VnpayGateway
) -> None:
    real_post = gateway._post

    async def down(url: str, body: dict[str, str]) -> dict[str, Any]:
        raise ConnectionError("gateway down")

    gateway._post = down
    ipn = await pay(payments, sandbox, paid=1_000)
    assert (await payments.notify(ipn))["RspCode"] == "04"
    assert not store.of_type(PaymentRefunded)
    assert [r.status for r in (await payments.for_order(ALICE, "order-1")).refunds] == ["failed"]
    gateway._post = real_post
    assert await payments.reconcile() == 1
    assert len(store.of_type(PaymentRefunded)) == 1 and await payments.reconcile() == 0


async def test_the_return_url_shows_the_result_and_changes_nothing(
    payments: Payments, sandbox: sandbox_gateway.Gateway, store: MemoryStore
) -> None:
    from kyso_kit.errors import Rejected

    ipn = await pay(payments, sandbox)
    shown = await payments.returned(ipn)
    assert shown.gateway_says == "paid" and shown.payment_status == "pending"
    assert store.published == []  # display only: the IPN settles, not the browser
    with pytest.raises(Rejected):
        await payments.returned({**ipn, "vnp_Amount": "1"})


async def test_the_merchant_api_is_signed_both_ways(sandbox: sandbox_gateway.Gateway) -> None:
    body = {"vnp_RequestId": "r1", "vnp_Version": "2.1.0", "vnp_Command": "querydr", "vnp_TmnCode": "KYSOTEST",
            "vnp_TxnRef": "nope", "vnp_TransactionDate": "20260301090000", "vnp_CreateDate": "20260301091000",
            "vnp_IpAddr": "127.0.0.1", "vnp_OrderInfo": "q"}  # fmt: skip
    answer = sandbox.transaction_api(body | {"vnp_SecureHash": vnpay.sign_api(body, SECRET)})
    assert answer["vnp_ResponseCode"] == "91" and vnpay.verify_api(answer, SECRET, response=True)
    assert not vnpay.verify_api(answer | {"vnp_Message": "tampered"}, SECRET, response=True)
    forged = sandbox.transaction_api(body | {"vnp_RequestId": "r2", "vnp_SecureHash": "00" * 64})
    assert forged["vnp_ResponseCode"] == "97"


def closed(kind: str, clock: FakeClock, order_id: str = "order-1") -> Any:
    from kyso_contracts import OrderCancelled, OrderExpired

    if kind == "cancelled":
        return delivered(
            OrderCancelled(
                order_id=order_id, account_id=ALICE.account_id, amount_vnd=800_000, cancelled_at=clock.now()
            ),
            clock,
        )
    return delivered(
        OrderExpired(
            order_id=order_id, account_id=ALICE.account_id, amount_vnd=800_000, placed_at=clock.now(),
            expired_at=clock.now(),
        ),
        clock,
    )  # fmt: skip


@pytest.mark.parametrize("kind", ["cancelled", "expired"])
async def test_a_payment_after_the_order_closed_is_refunded(
    payments: Payments, sandbox: sandbox_gateway.Gateway, store: MemoryStore, clock: FakeClock, kind: str
) -> None:
    url = await checkout_url(payments)
    await deliver(HANDLERS, payments, closed(kind, clock))
    assert (await payments.for_order(ALICE, "order-1")).status == "cancelled"
    with pytest.raises(Conflict):
        await checkout_url(payments)  # no new checkout for a closed order
    late = sandbox.ipn_of(sandbox.paid(url))  # the user had the page open and paid anyway
    assert (await payments.notify(late))["RspCode"] == "00"
    assert (await payments.notify(late))["RspCode"] == "00"
    [refunded] = store.of_type(PaymentRefunded)
    assert refunded.data.reason == "late_payment" and not store.of_type(PaymentConfirmed)


def stopped(reason: str, clock: FakeClock, order_id: str = "order-1") -> Any:
    from kyso_contracts import IssuanceStopped

    return delivered(
        IssuanceStopped(
            order_id=order_id, account_id=ALICE.account_id, certificate_id="cert-1", reason=reason,  # type: ignore[arg-type]
            stopped_at=clock.now(),
        ),
        clock,
    )  # fmt: skip


@pytest.mark.parametrize(
    ("stop", "reason"),
    [
        ("cancelled", "cancelled_after_payment"),
        ("order_expired", "late_payment"),
        ("issuance_failed", "issuance_failed"),
    ],
)
async def test_a_paid_order_is_refunded_only_when_signing_stops_issuance(
    payments: Payments, sandbox: sandbox_gateway.Gateway, store: MemoryStore, clock: FakeClock, stop: str, reason: str
) -> None:
    ipn = await pay(payments, sandbox)
    assert (await payments.notify(ipn))["RspCode"] == "00"
    await deliver(HANDLERS, payments, closed("cancelled", clock))
    assert not store.of_type(PaymentRefunded)  # paid: signing decides (the consent may have got there first)
    await deliver(HANDLERS, payments, stopped(stop, clock))
    await deliver(HANDLERS, payments, stopped(stop, clock))  # a redelivery refunds nothing more
    [refunded] = store.of_type(PaymentRefunded)
    assert refunded.data.reason == reason and refunded.data.amount_vnd == 800_000
    view = await payments.for_order(ALICE, "order-1")
    assert [(r.reason, r.status) for r in view.refunds] == [(reason, "refunded")]


async def test_issuance_stopped_before_the_payment_closes_it_and_a_later_payment_is_refunded(
    payments: Payments, sandbox: sandbox_gateway.Gateway, store: MemoryStore, clock: FakeClock
) -> None:
    url = await checkout_url(payments)
    await deliver(HANDLERS, payments, stopped("cancelled", clock))
    assert (await payments.for_order(ALICE, "order-1")).status == "cancelled"
    assert (await payments.notify(sandbox.ipn_of(sandbox.paid(url))))["RspCode"] == "00"
    [refunded] = store.of_type(PaymentRefunded)
    assert refunded.data.reason == "late_payment" and not store.of_type(PaymentConfirmed)


async def test_an_operator_refunds_a_confirmed_payment_once(
    payments: Payments, sandbox: sandbox_gateway.Gateway, store: MemoryStore, clock: FakeClock
) -> None:
    operator = Principal("op-1", frozenset({"operator"}))
    with pytest.raises(NotFound):
        await payments.refund_by_operator(operator, "no-such-payment", "khiếu nại")
    ipn = await pay(payments, sandbox)
    payment_id = (await payments.for_order(ALICE, "order-1")).payment_id
    with pytest.raises(Forbidden):
        await payments.refund_by_operator(ALICE, payment_id, "tôi muốn hoàn tiền")
    with pytest.raises(Conflict):
        await payments.refund_by_operator(operator, payment_id, "chưa thanh toán")  # not paid yet
    assert (await payments.notify(ipn))["RspCode"] == "00"
    view = await payments.refund_by_operator(operator, payment_id, "khách hàng khiếu nại")
    assert [(r.reason, r.status) for r in view.refunds] == [("operator", "refunded")]
    with pytest.raises(Conflict) as again:
        await payments.refund_by_operator(operator, payment_id, "lần nữa")
    assert again.value.code == "already_refunded"
    assert len(store.of_type(PaymentRefunded)) == 1


async def test_an_order_closed_before_payment_heard_of_it_stays_closed(
    payments: Payments, store: MemoryStore, clock: FakeClock
) -> None:
    await deliver(HANDLERS, payments, closed("expired", clock, "order-9"))
    await deliver(HANDLERS, payments, delivered(order("order-9"), clock))
    assert (await payments.for_order(ALICE, "order-9")).status == "cancelled"
