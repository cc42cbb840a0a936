"""Payment use cases: a pending payment per order, checkout, and the gateway's signed notification."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from kyso_contracts import CloudEvent, OrderPlaced
from kyso_kit.auth import Principal, ensure_may
from kyso_kit.changes import Changes
from kyso_kit.clock import Clock
from kyso_kit.errors import Conflict, not_found
from kyso_kit.store import Doc, Store

from . import domain
from .domain import NotificationOutcome, PaymentStatus
from .gateway import BadNotification, PaymentGateway
from .schemas import CheckoutView, PaymentView

log = logging.getLogger(__name__)


def _payment(doc: Doc) -> domain.Payment:
    return domain.Payment(
        payment_id=doc["_id"],
        order_id=doc["order_id"],
        account_id=doc["account_id"],
        amount_vnd=doc["amount_vnd"],
        status=PaymentStatus(doc["status"]),
        txn_ref=doc["txn_ref"],
    )


def _view(doc: Doc, provider: str) -> PaymentView:
    return PaymentView(
        payment_id=doc["_id"],
        order_id=doc["order_id"],
        amount_vnd=doc["amount_vnd"],
        status=doc["status"],
        provider=provider,
    )


class Payments:
    def __init__(self, store: Store, gateway: PaymentGateway, clock: Clock, changes: Changes | None = None) -> None:
        self.payments = store.collection("payments", events=True)
        self.changes = changes or Changes()
        self.events = store.events
        self.gateway = gateway
        self.clock = clock

    async def init(self) -> None:
        await self.payments.ensure_index([("order_id", 1)], unique=True)
        await self.payments.ensure_index([("txn_ref", 1)], unique=True)

    async def when_order_placed_open_payment(self, event: CloudEvent[OrderPlaced]) -> None:
        o = event.data
        await self.payments.update(
            {"order_id": o.order_id},
            {"$set": {"order_event_id": event.id}},
            caused_by=event.id,
            upsert_with={
                "_id": uuid.uuid4().hex,
                "account_id": o.account_id,
                "amount_vnd": o.amount_vnd,
                "description": f"kyso {o.package_code} {o.order_id}",
                "txn_ref": self.gateway.new_reference(),
                "status": PaymentStatus.PENDING.value,
                "created_at": self.clock.now(),
                "correlation_id": event.correlationid,
            },
        )
        self.changes.notify(o.order_id)

    async def for_order(self, who: Principal, order_id: str, wait_seconds: float = 0) -> PaymentView:
        """The order's payment; it is opened when payment learns of the order, so a caller may wait
        up to ``wait_seconds`` for it to appear."""
        doc = await self.changes.read_when(
            order_id, lambda: self.payments.find_one({"order_id": order_id}), lambda d: d is not None, wait_seconds
        )
        if doc is None:
            raise not_found("payment", "giao dịch thanh toán")
        ensure_may(who, doc["account_id"], "read")
        return _view(doc, self.gateway.name)

    async def checkout(self, who: Principal, payment_id: str, client_ip: str) -> CheckoutView:
        doc = await self.payments.get(payment_id)
        if doc is None:
            raise not_found("payment", "giao dịch thanh toán")
        ensure_may(who, doc["account_id"])
        if doc["status"] == PaymentStatus.FAILED:
            # A failed or cancelled attempt may be retried: a new gateway reference, the old one retired.
            status = domain.retry(_payment(doc))
            retried = await self.payments.update_and_get(
                {"_id": payment_id, "status": PaymentStatus.FAILED.value, "txn_ref": doc["txn_ref"]},
                {
                    "$set": {"status": status.value, "txn_ref": self.gateway.new_reference()},
                    "$push": {
                        "previous_attempts": {
                            "txn_ref": doc["txn_ref"],
                            "failed_at": doc.get("settled_at"),
                            "gateway_response_code": doc.get("gateway_response_code"),
                        }
                    },
                },
            )
            doc = retried or await self.payments.get(payment_id) or doc
        if doc["status"] != PaymentStatus.PENDING:
            raise Conflict("payment_not_pending", "This payment is already settled", "Giao dịch này đã được xử lý")
        url = self.gateway.checkout_url(_payment(doc), doc["description"], client_ip, self.clock.now())
        return CheckoutView(payment_id=payment_id, payment_url=url, amount_vnd=doc["amount_vnd"])

    async def notify(self, params: Mapping[str, str]) -> dict[str, str]:
        """The gateway's server-to-server notification, answered in the gateway's vocabulary; idempotent."""
        return self.gateway.answer(await self._settle(params))

    async def _settle(self, params: Mapping[str, str]) -> NotificationOutcome:
        try:
            result = self.gateway.parse_notification(params)
        except BadNotification:
            return NotificationOutcome.BAD_SIGNATURE
        doc = await self.payments.find_one({"txn_ref": result.txn_ref}) if result.txn_ref else None
        if doc is None:
            return NotificationOutcome.UNKNOWN_PAYMENT
        payment = _payment(doc)
        if result.amount_vnd != payment.amount_vnd:
            log.warning("gateway notification for another amount", extra={"payment_id": payment.payment_id})
            return NotificationOutcome.AMOUNT_MISMATCH
        if not domain.allowed(payment.status, "settle"):
            return NotificationOutcome.ALREADY_SETTLED
        t = self.clock.now()
        status, payload = domain.settle(payment, result, t)
        event: CloudEvent[Any] = self.events(payload, correlation_id=doc.get("correlation_id"))
        settled = await self.payments.update(
            {"_id": payment.payment_id, "status": PaymentStatus.PENDING.value, "txn_ref": payment.txn_ref},
            {
                "$set": {
                    "status": status.value,
                    "settled_at": t,
                    "provider_transaction_no": result.transaction_no,
                    "gateway_response_code": result.response_code,
                }
            },
            events=[event],
        )
        return NotificationOutcome.ACCEPTED if settled else NotificationOutcome.ALREADY_SETTLED
