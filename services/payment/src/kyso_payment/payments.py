"""Payment use cases: a pending payment per order, checkout, and the gateway's signed notification."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from kyso_contracts import CloudEvent, IssuanceStopped, OrderCancelled, OrderExpired, OrderPlaced
from kyso_kit.changes import Changes
from kyso_kit.clock import Clock
from kyso_kit.errors import Conflict, Rejected, not_found
from kyso_kit.policy import Principal, ensure_may
from kyso_kit.records import Decision, Repository, decided
from kyso_kit.store import Doc, Store, insert_once
from kyso_kit.timeutil import as_utc

from . import domain
from .domain import GatewayResult, NotificationOutcome, PaymentStatus
from .gateway import BadNotification, PaymentGateway
from .records import PaymentRecord
from .refunds import REFUND_REASON, Refunds, paid_by
from .schemas import CheckoutView, PaymentView, RefundView, ReturnView

log = logging.getLogger(__name__)


def _cancelled(p: PaymentRecord) -> Decision[PaymentRecord] | None:
    """The decision when the payment's order closes: cancel it if the table allows (else it is
    confirmed, or cancelled already, and stays so)."""
    if not domain.allowed(PaymentStatus(p.status), "cancel"):
        return None
    return decided(p.model_copy(update={"status": PaymentStatus.CANCELLED}))


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
        self.records = Repository(store, "payments", PaymentRecord, events=True)
        self.payments = self.records.aggregates
        self.refs = store.collection("gateway_refs")
        self.reconcile_after = reconcile_after_seconds
        self.changes = changes or Changes()
        self.refunding = Refunds(store, gateway, clock, self.changes)
        self.events = store.events
        self.gateway = gateway
        self.clock = clock

    async def init(self) -> None:
        await self.payments.ensure_index([("order_id", 1)], unique=True)
        await self.payments.ensure_index([("txn_ref", 1)], unique=True)
        await self.payments.ensure_index([("status", 1)])
        await self.refunding.init()

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
        return _view(doc, self.gateway.name, await self.refunding.of_order(order_id))

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
        # the reference leaves in the URL: from now on the gateway may name it (once per reference)
        await insert_once(self.refs, {"_id": fresh["txn_ref"], "payment_id": payment_id})
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
                await self.refunding.refund(doc, result, "late_payment")
                return NotificationOutcome.ACCEPTED
            return NotificationOutcome.ALREADY_SETTLED
        if result.amount_vnd != payment.amount_vnd:
            log.warning("gateway reports another amount", extra={"payment_id": payment.payment_id})
            if result.success:  # the money was taken: give it back; the order still waits for the right amount
                await self.refunding.refund(doc, result, "amount_mismatch")
            return NotificationOutcome.AMOUNT_MISMATCH
        if not domain.allowed(payment.status, "settle"):
            if result.success and doc.get("provider_transaction_no") not in (None, result.transaction_no):
                await self.refunding.refund(doc, result, "duplicate_payment")  # paid twice for one order
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
        found = await self.payments.find_one({"order_id": order_id}, {"_id": 1})
        if found is None:  # closed before this service heard of the order
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
        done = await self.records.modify(found["_id"], _cancelled)
        if done is None:
            return  # payments are never deleted
        if done.changed:
            self.changes.notify(order_id)
        elif done.record.status == PaymentStatus.CONFIRMED and refund_reason is not None:
            paid = done.record.to_doc()
            await self.refunding.refund(paid, paid_by(paid, self.gateway.name), refund_reason)

    async def refund_by_operator(self, who: Principal, payment_id: str, note: str) -> PaymentView:
        """An operator gives a confirmed payment back (a complaint, a provider's mistake): once per
        transaction, confirmed by ``PaymentRefunded`` (reason ``operator``)."""
        doc = await self.refunding.by_operator(who, payment_id, note)
        return _view(doc, self.gateway.name, await self.refunding.of_order(doc["order_id"]))

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
        n += await self.refunding.retry_failed()
        return n
