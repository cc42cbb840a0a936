"""Payment use cases: a pending payment per order, checkout, and the gateway's signed notification."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from kyso_contracts import CloudEvent, IssuanceStopped, OrderCancelled, OrderExpired, OrderPlaced, PaymentRefunded
from kyso_kit.auth import Principal, ensure_may, ensure_role
from kyso_kit.changes import Changes
from kyso_kit.clock import Clock
from kyso_kit.errors import Conflict, Rejected, not_found
from kyso_kit.store import Doc, DuplicateKey, Store
from kyso_kit.timeutil import as_utc

from . import domain
from .domain import GatewayResult, NotificationOutcome, PaymentStatus, RefundOrder
from .gateway import BadNotification, PaymentGateway
from .schemas import CheckoutView, PaymentView, RefundView, ReturnView

log = logging.getLogger(__name__)


REFUND_REASON = {
    "cancelled": "cancelled_after_payment",
    "order_expired": "late_payment",
    "issuance_failed": "issuance_failed",
}
"""Why a payment is given back when signing stops issuance, by the reason it stopped."""


def _paid(doc: Doc, provider: str) -> GatewayResult:
    """The gateway transaction that paid a confirmed payment."""
    return GatewayResult(
        provider=provider,
        txn_ref=doc.get("settled_txn_ref") or doc["txn_ref"],
        amount_vnd=doc["amount_vnd"],
        success=True,
        response_code="00",
        transaction_no=doc.get("provider_transaction_no") or "0",
    )


def _payment(doc: Doc) -> domain.Payment:
    return domain.Payment(
        payment_id=doc["_id"],
        order_id=doc["order_id"],
        account_id=doc["account_id"],
        amount_vnd=doc["amount_vnd"],
        status=PaymentStatus(doc["status"]),
        txn_ref=doc["txn_ref"],
    )


def _view(doc: Doc, provider: str, refunds: list[Doc]) -> PaymentView:
    return PaymentView(
        payment_id=doc["_id"],
        order_id=doc["order_id"],
        amount_vnd=doc["amount_vnd"],
        status=doc["status"],
        provider=provider,
        refunds=[
            RefundView(
                amount_vnd=r["amount_vnd"],
                reason=r["reason"],
                status=r["status"],
                provider_transaction_no=r["transaction_no"] or "0",
                refunded_at=as_utc(r["refunded_at"]).isoformat() if r.get("refunded_at") else None,
            )
            for r in refunds
        ],
    )


class Payments:
    def __init__(
        self,
        store: Store,
        gateway: PaymentGateway,
        clock: Clock,
        changes: Changes | None = None,
        reconcile_after_seconds: float = 300,
    ) -> None:
        self.payments = store.collection("payments", events=True)
        self.refunds = store.collection("refunds", events=True)
        self.refs = store.collection("gateway_refs")
        self.reconcile_after = reconcile_after_seconds
        self.changes = changes or Changes()
        self.events = store.events
        self.gateway = gateway
        self.clock = clock

    async def init(self) -> None:
        await self.payments.ensure_index([("order_id", 1)], unique=True)
        await self.payments.ensure_index([("txn_ref", 1)], unique=True)
        await self.payments.ensure_index([("status", 1)])
        await self.refunds.ensure_index([("order_id", 1)])

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
        return _view(doc, self.gateway.name, await self.refunds_of(order_id))

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
                    "$unset": {"checkout_at": ""},
                    "$push": {
                        "previous_attempts": {
                            "txn_ref": doc["txn_ref"],
                            "failed_at": doc.get("settled_at"),
                            "gateway_response_code": doc.get("gateway_response_code"),
                            "checkout_at": doc.get("checkout_at"),
                        }
                    },
                },
            )
            doc = retried or await self.payments.get(payment_id) or doc
        if doc["status"] == PaymentStatus.CANCELLED:
            raise Conflict("order_closed", "The order was cancelled or expired", "Đơn hàng đã hủy hoặc hết hạn")
        if doc["status"] != PaymentStatus.PENDING:
            raise Conflict("payment_not_pending", "This payment is already settled", "Giao dịch này đã được xử lý")
        t = self.clock.now()
        # when the attempt opened at the gateway: querydr and refund name it (vnp_TransactionDate)
        await self.payments.update(
            {"_id": payment_id, "txn_ref": doc["txn_ref"], "checkout_at": {"$exists": False}},
            {"$set": {"checkout_at": t.replace(microsecond=0)}},
        )
        fresh = await self.payments.get(payment_id) or doc
        try:  # the reference leaves in the URL: from now on the gateway may name it
            await self.refs.insert({"_id": fresh["txn_ref"], "payment_id": payment_id})
        except DuplicateKey:
            pass
        url = self.gateway.checkout_url(_payment(fresh), doc["description"], client_ip, as_utc(fresh["checkout_at"]))
        return CheckoutView(payment_id=payment_id, payment_url=url, amount_vnd=doc["amount_vnd"])

    async def _by_reference(self, txn_ref: str) -> Doc | None:
        """The payment a gateway reference belongs to (its current or an earlier attempt): an ``_id``
        lookup in ``gateway_refs``, written when the reference left in a checkout URL."""
        if not txn_ref:
            return None
        ref = await self.refs.get(txn_ref)
        return await self.payments.get(ref["payment_id"]) if ref is not None else None

    async def returned(self, params: Mapping[str, str]) -> ReturnView:
        """The return URL: what to show the user. Never settles anything (only the IPN or reconciliation do)."""
        try:
            result = self.gateway.read_return(params)
        except BadNotification:
            raise Rejected(
                "invalid_signature",
                "The gateway's signature does not verify",
                "Chữ ký của cổng thanh toán không hợp lệ",
            ) from None
        doc = await self._by_reference(result.txn_ref)
        paid = result.success
        return ReturnView(
            payment_id=doc["_id"] if doc else None,
            order_id=doc["order_id"] if doc else None,
            gateway_says="paid" if paid else "not_paid",
            payment_status=doc["status"] if doc else None,
            message="Payment received; the order continues once the gateway confirms it" if paid
            else "The payment did not go through; you may try again",
            message_vi="Đã thanh toán; đơn hàng tiếp tục khi cổng thanh toán xác nhận" if paid
            else "Thanh toán không thành công; bạn có thể thử lại",
        )  # fmt: skip

    async def notify(self, params: Mapping[str, str]) -> dict[str, str]:
        """The gateway's server-to-server notification, answered in the gateway's vocabulary; idempotent.
        Anything unexpected here answers 99, so the gateway sends it again."""
        try:
            result = self.gateway.parse_notification(params)
        except BadNotification:
            return self.gateway.answer(NotificationOutcome.BAD_SIGNATURE)
        try:
            return self.gateway.answer(await self.settle(result))
        except Exception:
            log.exception("IPN not handled", extra={"txn_ref": result.txn_ref})
            return self.gateway.answer(NotificationOutcome.ERROR)

    async def settle(self, result: GatewayResult) -> NotificationOutcome:
        """What a verified gateway report (an IPN, or a querydr answer) does — the same either way."""
        doc = await self._by_reference(result.txn_ref)
        if doc is None:
            return NotificationOutcome.UNKNOWN_PAYMENT
        current = doc["txn_ref"] == result.txn_ref  # or an earlier attempt of a payment that was retried
        payment = _payment(doc)
        if payment.status == PaymentStatus.CANCELLED:
            if result.success:  # paid after the order was cancelled or expired
                await self.refund(doc, result, "late_payment")
                return NotificationOutcome.ACCEPTED
            return NotificationOutcome.ALREADY_SETTLED
        if result.amount_vnd != payment.amount_vnd:
            log.warning("gateway reports another amount", extra={"payment_id": payment.payment_id})
            if result.success:  # the money was taken: give it back; the order still waits for the right amount
                await self.refund(doc, result, "amount_mismatch")
            return NotificationOutcome.AMOUNT_MISMATCH
        if not domain.allowed(payment.status, "settle"):
            if result.success and doc.get("provider_transaction_no") not in (None, result.transaction_no):
                await self.refund(doc, result, "duplicate_payment")  # paid twice for one order
                return NotificationOutcome.ACCEPTED if not current else NotificationOutcome.ALREADY_SETTLED
            return NotificationOutcome.ALREADY_SETTLED
        if not current and not result.success:
            return NotificationOutcome.ALREADY_SETTLED  # a retired attempt failing changes nothing
        t = self.clock.now()
        status, payload = domain.settle(payment, result, t)
        event: CloudEvent[Any] = self.events(payload, correlation_id=doc.get("correlation_id"))
        guard: dict[str, Any] = {"_id": payment.payment_id, "status": PaymentStatus.PENDING.value}
        if current:
            guard["txn_ref"] = payment.txn_ref
        settled = await self.payments.update(
            guard,
            {
                "$set": {
                    "status": status.value,
                    "settled_at": t,
                    "settled_txn_ref": result.txn_ref,
                    "provider_transaction_no": result.transaction_no,
                    "gateway_response_code": result.response_code,
                }
            },
            events=[event],
        )
        if settled:
            self.changes.notify(payment.order_id)
            return NotificationOutcome.ACCEPTED
        return await self.settle(result) if result.success else NotificationOutcome.ALREADY_SETTLED

    async def when_order_closed_close_payment(
        self, event: CloudEvent[OrderCancelled] | CloudEvent[OrderExpired]
    ) -> None:
        """The order closed: a payment still waiting closes too (one that comes anyway is refunded). A
        payment already made is signing's call: if issuance stops, ``IssuanceStopped`` refunds it."""
        o = event.data
        await self._close(o.order_id, o.account_id, o.amount_vnd, event, refund_reason=None)

    async def when_issuance_stopped_refund(self, event: CloudEvent[IssuanceStopped]) -> None:
        """Nothing will be issued for the order: close its payment, and give back what was paid for it."""
        o = event.data
        await self._close(o.order_id, o.account_id, None, event, refund_reason=REFUND_REASON[o.reason])

    async def _close(
        self, order_id: str, account_id: str, amount_vnd: int | None, event: CloudEvent[Any], refund_reason: str | None
    ) -> None:
        for _ in range(8):
            doc = await self.payments.find_one({"order_id": order_id})
            if doc is None:  # closed before this service heard of the order
                if amount_vnd is None:
                    return  # the order's own closing (or its placing) will tell the amount
                await self.payments.update(
                    {"order_id": order_id},
                    {"$set": {"closed_by": event.id}},
                    caused_by=event.id,
                    upsert_with={
                        "_id": uuid.uuid4().hex, "account_id": account_id, "amount_vnd": amount_vnd,
                        "description": f"kyso {order_id}", "txn_ref": self.gateway.new_reference(),
                        "status": PaymentStatus.CANCELLED.value, "created_at": self.clock.now(),
                        "correlation_id": event.correlationid,
                    },
                )  # fmt: skip
                return
            status = PaymentStatus(doc["status"])
            if status == PaymentStatus.CONFIRMED:
                if refund_reason is not None:
                    await self.refund(doc, _paid(doc, self.gateway.name), refund_reason)
                return
            if not domain.allowed(status, "cancel"):
                return  # cancelled already
            if await self.payments.update(
                {"_id": doc["_id"], "status": status.value}, {"$set": {"status": PaymentStatus.CANCELLED.value}}
            ):
                self.changes.notify(order_id)
                return

    async def refund_by_operator(self, who: Principal, payment_id: str, note: str) -> PaymentView:
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
        paid = _paid(doc, self.gateway.name)
        if await self.refunds.get(f"{paid.txn_ref}:{paid.transaction_no}") is not None:
            raise Conflict("already_refunded", "This payment is refunded already", "Giao dịch này đã được hoàn tiền")
        log.info("operator refund", extra={"payment_id": payment_id, "operator": who.account_id, "note": note})
        await self.refund(doc, paid, "operator")
        return _view(doc, self.gateway.name, await self.refunds_of(doc["order_id"]))

    # ------------------------------------------------------------------ refunds (compensation)

    async def refund(self, doc: Doc, result: GatewayResult, reason: str) -> None:
        """Give one gateway transaction back, once: the refund is recorded (keyed by the transaction)
        before the gateway is asked, and confirmed with ``PaymentRefunded`` in the same write."""
        created = doc.get("checkout_at") or doc["created_at"]
        try:
            await self.refunds.insert(
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
                }
            )
        except DuplicateKey:
            pass  # known already (a repeated notification): at most one refund per transaction
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

    # ------------------------------------------------------------------ reconciliation

    async def reconcile(self) -> int:
        """Settle what the gateway knows and we do not (an IPN that never came), exactly as its IPN would,
        and try failed refunds again. The number of payments and refunds settled."""
        now, n = self.clock.now(), 0
        for doc in await self.payments.find({"status": PaymentStatus.PENDING.value}):
            checkout = doc.get("checkout_at")
            if checkout is None or (now - as_utc(checkout)).total_seconds() < self.reconcile_after:
                continue
            result = await self.gateway.query(doc["txn_ref"], as_utc(checkout), now)
            if result is not None and await self.settle(result) == NotificationOutcome.ACCEPTED:
                n += 1
                log.info("payment settled by reconciliation", extra={"payment_id": doc["_id"]})
        for r in await self.refunds.find({"status": "failed"}):
            n += await self.try_refund(r["_id"])
        return n

    async def refunds_of(self, order_id: str) -> list[Doc]:
        return sorted(await self.refunds.find({"order_id": order_id}), key=lambda r: as_utc(r["requested_at"]))
