"""Refunds, the payment service's compensation: one gateway transaction given back at most once, keyed
by the transaction (a unique-id insert), asked of the gateway, and confirmed by ``PaymentRefunded`` in
the write that records it; failed refunds are tried again by reconciliation."""

from __future__ import annotations

import logging

from kyso_contracts import PaymentRefunded
from kyso_kit.changes import Changes
from kyso_kit.clock import Clock
from kyso_kit.errors import Conflict, not_found
from kyso_kit.policy import Principal, ensure_role
from kyso_kit.store import Doc, Store, insert_once
from kyso_kit.timeutil import as_utc

from .domain import GatewayResult, PaymentStatus, RefundOrder
from .gateway import PaymentGateway

log = logging.getLogger(__name__)


REFUND_REASON = {
    "cancelled": "cancelled_after_payment",
    "order_expired": "late_payment",
    "issuance_failed": "issuance_failed",
}
"""Why a payment is given back when signing stops issuance, by the reason it stopped."""


def paid_by(doc: Doc, provider: str) -> GatewayResult:
    """The gateway transaction that paid a confirmed payment."""
    return GatewayResult(
        provider=provider,
        txn_ref=doc.get("settled_txn_ref") or doc["txn_ref"],
        amount_vnd=doc["amount_vnd"],
        success=True,
        response_code="00",
        transaction_no=doc.get("provider_transaction_no") or "0",
    )


class Refunds:
    def __init__(self, store: Store, gateway: PaymentGateway, clock: Clock, changes: Changes) -> None:
        self.payments = store.collection("payments", events=True)
        self.refunds = store.collection("refunds", events=True)
        self.events = store.events
        self.gateway = gateway
        self.clock = clock
        self.changes = changes

    async def init(self) -> None:
        await self.refunds.ensure_index([("order_id", 1)])

    async def by_operator(self, who: Principal, payment_id: str, note: str) -> Doc:
        """An operator gives a confirmed payment back (a complaint, a provider's mistake): once per
        transaction, confirmed by ``PaymentRefunded`` (reason ``operator``)."""
        ensure_role(who, "operator")
        doc = await self.payments.get(payment_id)
        if doc is None:
            raise not_found("payment", "giao dịch thanh toán")
        if PaymentStatus(doc["status"]) != PaymentStatus.CONFIRMED:
            raise Conflict(
                "payment_not_refundable",
                "Only a confirmed payment can be refunded",
                "Chỉ hoàn tiền được giao dịch đã thanh toán thành công",
            )
        paid = paid_by(doc, self.gateway.name)
        if await self.refunds.get(f"{paid.txn_ref}:{paid.transaction_no}") is not None:
            raise Conflict("already_refunded", "This payment is refunded already", "Giao dịch này đã được hoàn tiền")
        log.info("operator refund", extra={"payment_id": payment_id, "operator": who.account_id, "note": note})
        await self.refund(doc, paid, "operator")
        return doc

    async def refund(self, doc: Doc, result: GatewayResult, reason: str) -> None:
        """Give one gateway transaction back, once: the refund is recorded (keyed by the transaction)
        before the gateway is asked, and confirmed with ``PaymentRefunded`` in the same write."""
        created = doc.get("checkout_at") or doc["created_at"]
        # at most one refund per transaction: a repeated notification finds it known already
        await insert_once(
            self.refunds,
            {
                "_id": f"{result.txn_ref}:{result.transaction_no}",
                "payment_id": doc["_id"],
                "order_id": doc["order_id"],
                "account_id": doc["account_id"],
                "txn_ref": result.txn_ref,
                "transaction_no": result.transaction_no,
                "amount_vnd": result.amount_vnd if result.amount_vnd is not None else 0,
                "paid_amount_raw": result.amount_vnd,
                "reason": reason,
                "status": "requested",
                "attempts": 0,
                "created_at": created,
                "requested_at": self.clock.now(),
                "correlation_id": doc.get("correlation_id"),
            },
        )
        await self.try_refund(f"{result.txn_ref}:{result.transaction_no}")

    async def try_refund(self, refund_id: str) -> bool:
        r = await self.refunds.get(refund_id)
        if r is None or r["status"] == "refunded":
            return False
        if not r["amount_vnd"]:
            log.warning("a refund of an amount that is not whole đồng needs a person", extra={"refund": refund_id})
            return False
        t = self.clock.now()
        order = RefundOrder(r["txn_ref"], r["transaction_no"], r["amount_vnd"], as_utc(r["created_at"]))
        outcome = await self.gateway.refund(order, t)
        if not outcome.done:
            await self.refunds.update(
                {"_id": refund_id, "status": {"$ne": "refunded"}},
                {"$set": {"status": "failed", "last_code": outcome.code, "last_try_at": t}, "$inc": {"attempts": 1}},
            )
            return False
        refunded = PaymentRefunded(
            payment_id=r["payment_id"],
            order_id=r["order_id"],
            account_id=r["account_id"],
            amount_vnd=r["amount_vnd"],
            reason=r["reason"],
            provider=self.gateway.name,
            provider_transaction_no=r["transaction_no"] or "0",
            refunded_at=t,
        )
        done = await self.refunds.update(
            {"_id": refund_id, "status": {"$ne": "refunded"}},
            {"$set": {"status": "refunded", "refunded_at": t, "last_code": outcome.code}, "$inc": {"attempts": 1}},
            events=[self.events(refunded, correlation_id=r.get("correlation_id"))],
        )
        if done:
            self.changes.notify(r["order_id"])
        return bool(done)

    async def retry_failed(self) -> int:
        """Ask the gateway again for every refund it refused or did not answer; the number done."""
        n = 0
        for r in await self.refunds.find({"status": "failed"}):
            n += await self.try_refund(r["_id"])
        return n

    async def of_order(self, order_id: str) -> list[Doc]:
        return sorted(await self.refunds.find({"order_id": order_id}), key=lambda r: as_utc(r["requested_at"]))
