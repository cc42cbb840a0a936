"""Payments against the sandbox gateway, its own process, over HTTP: a cancelled payment fails the order
and a retry pays it; a second payment is refunded; duplicate, late, lost and wrong-amount notifications."""

from __future__ import annotations

import asyncio

from kyso_client.api import Endpoints, KysoApi, eventually
from kyso_client.journey import EventWatcher

from .helpers import PASSWORD, new_citizen


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
