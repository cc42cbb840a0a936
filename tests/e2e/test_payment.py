"""Payments against the sandbox gateway, its own process, over HTTP: a cancelled payment fails the order
and a retry pays it; a second payment is refunded; duplicate, late, lost and wrong-amount notifications."""

from __future__ import annotations

import asyncio

from kyso_client.api import Endpoints, KysoApi, eventually
from kyso_client.journey import EventWatcher
from stack import Stack

from .helpers import PASSWORD, expect, new_citizen, operator_console


async def test_cancelled_payment_fails_the_order_then_a_retry_pays_it(
    endpoints: Endpoints, watcher: EventWatcher
) -> None:
    api = KysoApi(endpoints, correlation_id=None)
    try:
        c = await new_citizen(api)
        await api.login(c.phone, PASSWORD)
        order = await api.place_order("PERSONAL_3Y")
        assert order["amount_vnd"] == 1_900_000 and order["validity_years"] == 3
        pay = await eventually(lambda: api.payment_for_order(order["order_id"]), timeout=60)
        first = (await api.checkout(pay["payment_id"]))["payment_url"]
        assert (await api.sandbox_pay(first, "cancel"))["ipn_response"]["RspCode"] == "00"
        failed = await eventually(lambda: api.order(order["order_id"]), lambda o: o["status"] == "payment_failed")
        assert failed["status_vi"]
        assert (await api.payment_for_order(order["order_id"]))["status"] == "failed"

        second = (await api.checkout(pay["payment_id"]))["payment_url"]
        assert second != first  # a new gateway reference
        assert (await api.sandbox_pay(second))["ipn_response"]["RspCode"] == "00"
        paid = await eventually(lambda: api.order(order["order_id"]), lambda o: o["status"] == "paid")
        assert [t["event"] for t in paid["timeline"]] == ["order_placed", "payment_failed", "paid"]
        # the user goes back to the first page and pays again: a second payment of one order is refunded
        assert (await api.sandbox_pay(first))["ipn_response"]["RspCode"] == "00"
        refunded = await eventually(lambda: api.order(order["order_id"]), lambda o: bool(o["refunds"]))
        assert [(r["reason"], r["amount_vnd"]) for r in refunded["refunds"]] == [("duplicate_payment", 1_900_000)]
        assert refunded["status"] == "paid" and refunded["refunds"][0]["reason_vi"]

        await asyncio.sleep(1.0)
        kinds = [doc["type"] for _, key, doc in watcher.keyed_all() if key == order["order_id"].encode()]
        assert kinds.count("vn.kyso.payment.failed.v1") == 1
        assert kinds.count("vn.kyso.payment.confirmed.v1") == 1
        assert kinds.count("vn.kyso.payment.refunded.v1") == 1
    finally:
        await api.aclose()


async def _open_order(api: KysoApi) -> tuple[str, str, str]:
    c = await new_citizen(api)
    await api.login(c.phone, PASSWORD)
    order = await api.place_order("PERSONAL_1Y")
    pay = await eventually(lambda: api.payment_for_order(order["order_id"]), timeout=60)
    url = (await api.checkout(pay["payment_id"]))["payment_url"]
    return order["order_id"], pay["payment_id"], url


def _count(watcher: EventWatcher, order_id: str, kind: str) -> int:
    return sum(1 for _, key, doc in watcher.keyed_all() if key == order_id.encode() and doc["type"] == kind)


async def test_a_thousand_concurrent_duplicate_ipns_confirm_once(endpoints: Endpoints, watcher: EventWatcher) -> None:
    api = KysoApi(endpoints, correlation_id=None)
    try:
        order_id, _, url = await _open_order(api)
        out = await api.sandbox_pay(url, behaviour={"copies": 1000})
        codes = [a["RspCode"] for a in out["ipn_answers"]]
        assert len(codes) == 1000 and codes.count("00") == 1 and set(codes) == {"00", "02"}
        await eventually(lambda: api.order(order_id), lambda o: o["status"] == "paid")
        await asyncio.sleep(1.0)
        assert _count(watcher, order_id, "vn.kyso.payment.confirmed.v1") == 1
    finally:
        await api.aclose()


async def test_gateway_misbehaviour_late_lost_reordered_forged_and_wrong_amount(
    endpoints: Endpoints, watcher: EventWatcher
) -> None:
    api = KysoApi(endpoints, correlation_id=None)
    try:
        # never notified: reconciliation asks the gateway (querydr) and settles it as the IPN would
        lost_order, _, lost_url = await _open_order(api)
        assert "ipn_answers" in await api.sandbox_pay(lost_url, behaviour={"copies": 0})
        await eventually(lambda: api.order(lost_order), lambda o: o["status"] == "paid", timeout=30)

        # a forged IPN changes nothing; then the real one, late, and a stale failure after it
        order_id, _, url = await _open_order(api)
        forged = await api.sandbox_pay(url, behaviour={"bad_signature": True})
        assert forged["ipn_response"]["RspCode"] == "97"
        assert (await api.payment_for_order(order_id))["status"] == "pending"
        order_id2, _, url2 = await _open_order(api)
        late = await api.sandbox_pay(url2, behaviour={"delay_ms": 1500, "stale_failure_after": True})
        assert late["scheduled"] == 2
        await eventually(lambda: api.order(order_id2), lambda o: o["status"] == "paid", timeout=30)
        await asyncio.sleep(1.0)
        assert (await api.order(order_id2))["status"] == "paid"  # the stale failure did not undo it

        # the wrong amount: refunded, and the order says why and still waits for the right amount
        wrong_order, _, wrong_url = await _open_order(api)
        answer = await api.sandbox_pay(wrong_url, behaviour={"paid_amount_vnd": 1_000})
        assert answer["ipn_response"]["RspCode"] == "04"
        shown = await eventually(lambda: api.order(wrong_order), lambda o: bool(o["refunds"]))
        assert shown["status"] == "awaiting_payment"
        assert [(r["reason"], r["amount_vnd"]) for r in shown["refunds"]] == [("amount_mismatch", 1_000)]
        assert (await api.payment_for_order(wrong_order))["refunds"][0]["status"] == "refunded"
        await asyncio.sleep(0.5)
        assert _count(watcher, wrong_order, "vn.kyso.payment.confirmed.v1") == 0
        assert _count(watcher, wrong_order, "vn.kyso.payment.refunded.v1") == 1
    finally:
        await api.aclose()


async def test_a_cancelled_order_closes_its_payment_and_a_late_payment_is_refunded(
    endpoints: Endpoints, watcher: EventWatcher
) -> None:
    from kyso_client.api import KysoError

    api = KysoApi(endpoints, correlation_id=None)
    try:
        order_id, _, url = await _open_order(api)
        try:
            await api.place_order("PERSONAL_1Y")
            raise AssertionError("a second open order of one package was accepted")
        except KysoError as exc:
            assert (exc.status, exc.code) == (409, "open_order_exists")
        cancelled = await api.cancel_order(order_id)
        assert cancelled["status"] == "cancelled"
        try:
            await api.cancel_order(order_id)
            raise AssertionError("cancelled twice")
        except KysoError as exc:
            assert (exc.status, exc.code) == (409, "order_not_cancellable")
        await eventually(lambda: api.payment_for_order(order_id), lambda p: p["status"] == "cancelled")
        # the payment page was still open: the user pays anyway → the money goes back
        assert (await api.sandbox_pay(url))["ipn_response"]["RspCode"] == "00"
        shown = await eventually(lambda: api.order(order_id), lambda o: bool(o["refunds"]))
        assert shown["status"] == "cancelled" and shown["refunds"][0]["reason"] == "late_payment"
        try:
            await api.contract_for_order(order_id)
            raise AssertionError("a contract was drawn up for a cancelled order")
        except KysoError as exc:
            assert exc.status == 404
        await asyncio.sleep(0.5)
        assert _count(watcher, order_id, "vn.kyso.registration.order_cancelled.v1") == 1
        assert _count(watcher, order_id, "vn.kyso.payment.confirmed.v1") == 0
        assert _count(watcher, order_id, "vn.kyso.payment.refunded.v1") == 1
    finally:
        await api.aclose()


async def test_a_paid_order_cancelled_before_consent_is_refunded_and_an_operator_refund_is_once(
    stack: Stack, endpoints: Endpoints, watcher: EventWatcher
) -> None:
    api = KysoApi(endpoints, correlation_id=None)
    op = await operator_console(stack, endpoints)
    try:
        order_id, payment_id, url = await _open_order(api)
        assert (await api.sandbox_pay(url))["ipn_response"]["RspCode"] == "00"
        await eventually(lambda: api.contract_for_order(order_id, wait=20), timeout=60)  # drawn up, not consented
        await eventually(lambda: api.order(order_id), lambda o: o["status"] == "paid")
        asked = await api.cancel_order(order_id)
        assert asked["status"] == "cancellation_requested"
        # signing stops issuance, payment refunds, and the order shows both
        await api.order_reaching(order_id, "cancelled")
        shown = await eventually(lambda: api.order(order_id), lambda o: bool(o["refunds"]))
        assert [(r["reason"], r["amount_vnd"]) for r in shown["refunds"]] == [("cancelled_after_payment", 800_000)]
        assert shown["status"] == "cancelled"
        await expect("order_not_cancellable", 409, api.cancel_order(order_id))
        # the refunded payment cannot be refunded again by an operator; an unknown payment is not found
        await expect("already_refunded", 409, op.refund_payment(payment_id, "khách hàng khiếu nại"))
        await expect("not_found", 404, op.refund_payment("no-such-payment", "khiếu nại"))
        await expect("role_required", 403, api.refund_payment(payment_id, "tự hoàn tiền"))
        await asyncio.sleep(0.5)
        assert _count(watcher, order_id, "vn.kyso.signing.issuance_stopped.v1") == 1
        assert _count(watcher, order_id, "vn.kyso.payment.refunded.v1") == 1

        # an operator refunds a served order's payment once (a complaint)
        other, other_payment, other_url = await _open_order(api)
        assert (await api.sandbox_pay(other_url))["ipn_response"]["RspCode"] == "00"
        await eventually(lambda: op.payment_for_order(other), lambda p: p["status"] == "confirmed")
        refunded = await op.refund_payment(other_payment, "khách hàng khiếu nại")
        assert [(r["reason"], r["status"]) for r in refunded["refunds"]] == [("operator", "refunded")]
        await expect("already_refunded", 409, op.refund_payment(other_payment, "lần nữa"))
        await eventually(lambda: api.order(other), lambda o: [r["reason"] for r in o["refunds"]] == ["operator"])
    finally:
        await api.aclose()
        await op.aclose()
