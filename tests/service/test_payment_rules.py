"""Payment rules: one payment per order, checkout, signed notifications, amount checks, retry."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import parse_qsl, urlsplit

import pytest

from kyso_contracts import OrderPlaced, PaymentConfirmed, PaymentFailed
from kyso_kit.auth import Principal
from kyso_kit.clock import FakeClock
from kyso_kit.errors import Conflict, Forbidden
from kyso_kit.store import MemoryStore
from kyso_payment import vnpay
from kyso_payment.gateway import SandboxVnpay
from kyso_payment.payments import Payments

from .conftest import delivered, order_placed

SECRET = "test-secret"
ALICE = Principal("acct-alice")


def order(order_id: str = "order-1", amount: int = 800_000) -> OrderPlaced:
    at = datetime(2026, 3, 1, tzinfo=UTC)
    return order_placed(order_id, ALICE.account_id, amount, at, full_name="Nguyễn Văn A", years=1)


@pytest.fixture
def gateway() -> SandboxVnpay:
    return SandboxVnpay("KYSOTEST", SECRET, "https://pay.example/vpcpay.html", "kyso://payment-result")


@pytest.fixture
async def payments(store: MemoryStore, gateway: SandboxVnpay, clock: FakeClock) -> Payments:
    p = Payments(store, gateway, clock)
    await p.init()
    await p.when_order_placed_open_payment(delivered(order(), clock))
    return p


async def pay(payments: Payments, gateway: SandboxVnpay, clock: FakeClock, outcome: str = "success") -> dict[str, str]:
    view = await payments.for_order(ALICE, "order-1")
    checkout = await payments.checkout(ALICE, view.payment_id, "203.0.113.9")
    return gateway.notification_for(checkout.payment_url, outcome, clock.now())


async def test_an_order_delivered_twice_opens_one_payment(payments: Payments, clock: FakeClock) -> None:
    again = delivered(order(), clock)
    await payments.when_order_placed_open_payment(again)
    await payments.when_order_placed_open_payment(again)
    assert await payments.payments.count({"order_id": "order-1"}) == 1


async def test_the_checkout_url_is_signed_in_dong_times_100(payments: Payments, clock: FakeClock) -> None:
    view = await payments.for_order(ALICE, "order-1")
    url = (await payments.checkout(ALICE, view.payment_id, "203.0.113.9")).payment_url
    query = dict(parse_qsl(urlsplit(url).query))
    assert query["vnp_Amount"] == "80000000" and vnpay.verify(query, SECRET)
    assert query["vnp_CreateDate"] == "20260301090000"  # GMT+7


async def test_a_signed_notification_confirms_once_and_duplicates_say_already_settled(
    payments: Payments, gateway: SandboxVnpay, clock: FakeClock, store: MemoryStore
) -> None:
    ipn = await pay(payments, gateway, clock)
    assert (await payments.notify(ipn))["RspCode"] == "00"
    assert (await payments.notify(ipn))["RspCode"] == "02"
    [confirmed] = store.of_type(PaymentConfirmed)
    assert confirmed.data.amount_vnd == 800_000 and confirmed.correlationid == "journey-1"
    with pytest.raises(Conflict):
        await pay(payments, gateway, clock)  # settled: no second checkout


async def test_forged_unknown_and_wrong_amount_notifications_change_nothing(
    payments: Payments, gateway: SandboxVnpay, clock: FakeClock, store: MemoryStore
) -> None:
    ipn = await pay(payments, gateway, clock)
    assert (await payments.notify({**ipn, "vnp_ResponseCode": "00", "vnp_Amount": "1"}))["RspCode"] == "97"
    wrong_amount = {k: v for k, v in ipn.items() if k != "vnp_SecureHash"} | {"vnp_Amount": "70000000"}
    wrong_amount["vnp_SecureHash"] = vnpay.sign(wrong_amount, SECRET)
    assert (await payments.notify(wrong_amount))["RspCode"] == "04"
    unknown = {k: v for k, v in ipn.items() if k != "vnp_SecureHash"} | {"vnp_TxnRef": "nope"}
    unknown["vnp_SecureHash"] = vnpay.sign(unknown, SECRET)
    assert (await payments.notify(unknown))["RspCode"] == "01"
    assert store.published == [] and (await payments.for_order(ALICE, "order-1")).status == "pending"


async def test_a_failed_payment_can_be_retried_with_a_new_reference_and_the_old_one_is_retired(
    payments: Payments, gateway: SandboxVnpay, clock: FakeClock, store: MemoryStore
) -> None:
    cancelled = await pay(payments, gateway, clock, "cancel")
    assert (await payments.notify(cancelled))["RspCode"] == "00"
    [failed] = store.of_type(PaymentFailed)
    assert failed.data.reason_code == "24"
    retry = await pay(payments, gateway, clock)
    assert retry["vnp_TxnRef"] != cancelled["vnp_TxnRef"]
    assert (await payments.notify(cancelled))["RspCode"] == "01"  # the retired reference is unknown now
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
    await payments.when_order_placed_open_payment(delivered(order("order-2"), clock))
    assert (await asyncio.wait_for(waiting, 1)).order_id == "order-2"
    with pytest.raises(Exception, match="not found"):
        await payments.for_order(ALICE, "order-never", wait_seconds=0.05)
