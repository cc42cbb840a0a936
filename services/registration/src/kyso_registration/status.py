"""Steps 5–6 as the user sees them: the order's status follows the payment, contract and certificate
events of the other services, in whatever order they arrive, each applied once."""

from __future__ import annotations

from typing import Any

from kyso_contracts import (
    CertActivated,
    CertExpired,
    CertIssued,
    CertResumed,
    CertRevoked,
    CertSuspended,
    CloudEvent,
    ConsentRejected,
    ContractSigned,
    IssuanceStopped,
    PaymentAmountMismatch,
    PaymentConfirmed,
    PaymentFailed,
    PaymentRefunded,
)
from kyso_kit.changes import Changes
from kyso_kit.store import Store

from . import domain
from .domain import OrderStatus as St

_MAX_RACES = 20


class OrderStatusView:
    def __init__(self, store: Store, changes: Changes) -> None:
        self.orders = store.collection("orders", events=True)
        self.changes = changes

    async def _report(
        self, event: CloudEvent[Any], order_id: str, reported: St, extra: dict[str, Any] | None = None
    ) -> None:
        for _ in range(_MAX_RACES):
            doc = await self.orders.get(order_id, {"status": 1})
            if doc is None:
                raise LookupError(f"order {order_id} not found for {event.type}")  # retried, then dead-lettered
            current = St(doc["status"])
            status = domain.advance(current, reported)
            update: dict[str, Any] = {
                "$set": {"status": status.value, **(extra or {})},
                "$push": {"timeline": {"event": reported.value, "at": event.time}},
            }
            if await self.orders.update({"_id": order_id, "status": current.value}, update, caused_by=event.id):
                self.changes.notify(order_id)
                return
            again = await self.orders.get(order_id, {"status": 1})
            if again is not None and again["status"] == current.value:
                return  # the status held, so the guard failed on the event id: applied before
        raise RuntimeError(f"order {order_id} kept changing under {event.type}")

    async def when_payment_confirmed_mark_paid(self, event: CloudEvent[PaymentConfirmed]) -> None:
        await self._report(event, event.data.order_id, St.PAID)

    async def when_payment_failed_mark_failed(self, event: CloudEvent[PaymentFailed]) -> None:
        await self._report(event, event.data.order_id, St.PAYMENT_FAILED)

    async def when_payment_amount_mismatch_stop(self, event: CloudEvent[PaymentAmountMismatch]) -> None:
        await self._report(event, event.data.order_id, St.PAYMENT_AMOUNT_MISMATCH)

    async def when_payment_refunded_note(self, event: CloudEvent[PaymentRefunded]) -> None:
        """Money given back does not move the order (it waits for the right payment, or it was served by
        another one); the order shows each refund and why."""
        d = event.data
        refund = {"amount_vnd": d.amount_vnd, "reason": d.reason, "at": d.refunded_at}
        done = await self.orders.update(
            {"_id": d.order_id},
            {"$push": {"refunds": refund, "timeline": {"event": f"refunded_{d.reason}", "at": event.time}}},
            caused_by=event.id,
        )
        if done:
            self.changes.notify(d.order_id)
        elif await self.orders.get(d.order_id, {"status": 1}) is None:
            raise LookupError(f"order {d.order_id} not found for {event.type}")  # retried, then dead-lettered

    async def when_issuance_stopped_close(self, event: CloudEvent[IssuanceStopped]) -> None:
        """Signing will issue nothing: a cancellation it agreed to, or a failure (the payment is refunded)."""
        d = event.data
        reported = {"cancelled": St.CANCELLED, "order_expired": St.ORDER_EXPIRED}.get(d.reason, St.ISSUANCE_FAILED)
        await self._report(event, d.order_id, reported)

    async def when_consent_rejected_ask_again(self, event: CloudEvent[ConsentRejected]) -> None:
        await self._report(event, event.data.order_id, St.CONSENT_REJECTED)

    async def when_contract_signed_mark_signed(self, event: CloudEvent[ContractSigned]) -> None:
        await self._report(event, event.data.order_id, St.CONTRACT_SIGNED)

    async def when_cert_issued_show_pending(self, event: CloudEvent[CertIssued]) -> None:
        d = event.data
        await self._report(
            event,
            d.order_id,
            St.PENDING_ACTIVATION,
            {
                "certificate.certificate_id": d.certificate_id,
                "certificate.serial_number": d.serial_number,
                "certificate.subject_dn": d.subject_dn,
                "certificate.not_before": d.not_before.isoformat(),
                "certificate.not_after": d.not_after.isoformat(),
            },
        )

    async def when_cert_suspended_show_suspended(self, event: CloudEvent[CertSuspended]) -> None:
        d = event.data
        await self._report(event, d.order_id, St.SUSPENDED, {"certificate.suspended_at": d.suspended_at.isoformat()})

    async def when_cert_resumed_show_active(self, event: CloudEvent[CertResumed]) -> None:
        order_id = event.data.order_id
        doc = await self.orders.get(order_id, {"status": 1})
        if doc is None:
            raise LookupError(f"order {order_id} not found for {event.type}")  # retried, then dead-lettered
        if doc["status"] != St.SUSPENDED:
            return  # applied before (the certificate's events arrive in order: it was suspended first)
        status = domain.resume(St(doc["status"]))
        done = await self.orders.update(
            {"_id": order_id, "status": St.SUSPENDED.value},
            {
                "$set": {"status": status.value, "certificate.suspended_at": None},
                "$push": {"timeline": {"event": "resumed", "at": event.time}},
            },
            caused_by=event.id,
        )
        if done:
            self.changes.notify(order_id)

    async def when_cert_revoked_show_revoked(self, event: CloudEvent[CertRevoked]) -> None:
        d = event.data
        extra = {
            "certificate.revoked_at": d.revoked_at.isoformat(),
            "certificate.revocation_reason": d.reason,
            "certificate.superseded_by": d.superseded_by,
        }
        await self._report(event, d.order_id, St.REVOKED, extra)

    async def when_cert_expired_show_expired(self, event: CloudEvent[CertExpired]) -> None:
        await self._report(event, event.data.order_id, St.EXPIRED)

    async def when_cert_activated_show_active(self, event: CloudEvent[CertActivated]) -> None:
        d = event.data
        await self._report(event, d.order_id, St.ACTIVE, {"certificate.activated_at": d.activated_at.isoformat()})
