"""Steps 5–6 as the user sees them: the order's status follows the payment, contract and certificate
events of the other services, in whatever order they arrive, each applied once."""

from __future__ import annotations

from collections.abc import Callable
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
from kyso_kit.records import Decision, Repository, decided
from kyso_kit.store import Store

from . import domain
from .domain import OrderStatus as St
from .records import Order


class OrderStatusView:
    def __init__(self, store: Store, changes: Changes) -> None:
        self.orders = Repository(store, "orders", Order, events=True)
        self.changes = changes

    async def _report(
        self, event: CloudEvent[Any], order_id: str, reported: St, certificate: dict[str, Any] | None = None
    ) -> None:
        """Move the order as ``reported`` says (:func:`domain.advance`), once per event."""

        def decide(order: Order) -> Decision[Order]:
            return decided(
                order.model_copy(
                    update={
                        "status": domain.advance(St(order.status), reported),
                        "timeline": [*order.timeline, {"event": reported.value, "at": event.time}],
                        "certificate": {**order.certificate, **(certificate or {})},
                    }
                )
            )

        await self._apply(event, order_id, decide)

    async def _apply(
        self, event: CloudEvent[Any], order_id: str, decide: Callable[[Order], Decision[Order] | None]
    ) -> None:
        done = await self.orders.modify(order_id, decide, caused_by=event.id)
        if done is None:
            raise LookupError(f"order {order_id} not found for {event.type}")  # retried, then dead-lettered
        if done.changed:
            self.changes.notify(order_id)

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
        done = await self.orders.aggregates.update(
            {"_id": d.order_id},
            {"$push": {"refunds": refund, "timeline": {"event": f"refunded_{d.reason}", "at": event.time}}},
            caused_by=event.id,
        )
        if done:
            self.changes.notify(d.order_id)
        elif await self.orders.aggregates.get(d.order_id, {"status": 1}) is None:
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
                "certificate_id": d.certificate_id,
                "serial_number": d.serial_number,
                "subject_dn": d.subject_dn,
                "not_before": d.not_before.isoformat(),
                "not_after": d.not_after.isoformat(),
            },
        )

    async def when_cert_suspended_show_suspended(self, event: CloudEvent[CertSuspended]) -> None:
        d = event.data
        await self._report(event, d.order_id, St.SUSPENDED, {"suspended_at": d.suspended_at.isoformat()})

    async def when_cert_resumed_show_active(self, event: CloudEvent[CertResumed]) -> None:
        def decide(order: Order) -> Decision[Order] | None:
            if order.status != St.SUSPENDED:
                return None  # applied before (the certificate's events arrive in order: it was suspended first)
            return decided(
                order.model_copy(
                    update={
                        "status": domain.resume(St(order.status)),
                        "certificate": {**order.certificate, "suspended_at": None},
                        "timeline": [*order.timeline, {"event": "resumed", "at": event.time}],
                    }
                )
            )

        await self._apply(event, event.data.order_id, decide)

    async def when_cert_revoked_show_revoked(self, event: CloudEvent[CertRevoked]) -> None:
        d = event.data
        extra = {
            "revoked_at": d.revoked_at.isoformat(),
            "revocation_reason": d.reason,
            "superseded_by": d.superseded_by,
        }
        await self._report(event, d.order_id, St.REVOKED, extra)

    async def when_cert_expired_show_expired(self, event: CloudEvent[CertExpired]) -> None:
        await self._report(event, event.data.order_id, St.EXPIRED)

    async def when_cert_activated_show_active(self, event: CloudEvent[CertActivated]) -> None:
        d = event.data
        await self._report(event, d.order_id, St.ACTIVE, {"activated_at": d.activated_at.isoformat()})
