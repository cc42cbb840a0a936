"""Which handler takes which event, as a value: bootstrap subscribes from it and the service tests
deliver through it (:mod:`kyso_kit.routing`)."""

from __future__ import annotations

from kyso_contracts import IssuanceStopped, OrderCancelled, OrderExpired, OrderPlaced
from kyso_kit.routing import Route

from .payments import Payments

HANDLERS: tuple[Route[Payments], ...] = (
    Route(OrderPlaced, lambda p: p.when_order_placed_open_payment),
    Route(OrderCancelled, lambda p: p.when_order_closed_close_payment),
    Route(OrderExpired, lambda p: p.when_order_closed_close_payment),
    Route(IssuanceStopped, lambda p: p.when_issuance_stopped_refund),
)
