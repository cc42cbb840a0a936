"""Composition root of the payment service."""

from __future__ import annotations

from fastapi import FastAPI

from kyso_contracts import (
    IssuanceStopped,
    OrderCancelled,
    OrderExpired,
    OrderPlaced,
    PaymentConfirmed,
    PaymentFailed,
    PaymentRefunded,
)
from kyso_kit.runtime import ServiceRuntime

from .gateway import VnpayGateway
from .http_api import router
from .payments import Payments
from .settings import PaymentSettings


def build(settings: PaymentSettings | None = None) -> tuple[ServiceRuntime, FastAPI]:
    settings = settings or PaymentSettings()
    rt = ServiceRuntime(settings, publishes=[PaymentConfirmed, PaymentFailed, PaymentRefunded])
    assert settings.vnpay_hash_secret
    gateway = VnpayGateway(
        settings.vnpay_tmn_code,
        settings.vnpay_hash_secret,
        settings.vnpay_pay_url,
        settings.vnpay_return_url,
        settings.vnpay_api_url,
    )
    payments = Payments(rt.store, gateway, rt.clock, reconcile_after_seconds=settings.reconcile_after_seconds)
    rt.on_startup(payments.init)
    rt.every(settings.reconcile_every_seconds, payments.reconcile, "payment-reconciliation")
    rt.consumer.on(OrderPlaced)(payments.when_order_placed_open_payment)
    rt.consumer.on(OrderCancelled)(payments.when_order_closed_close_payment)
    rt.consumer.on(OrderExpired)(payments.when_order_closed_close_payment)
    rt.consumer.on(IssuanceStopped)(payments.when_issuance_stopped_refund)
    app = rt.http_app("kyso payment", "Payments for certificate orders (VNPay-style signed notifications)")
    app.include_router(router(payments, rt.verifier(), settings.client_addresses()))
    return rt, app
