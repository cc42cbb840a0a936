"""Composition root of the payment service."""

from __future__ import annotations

from fastapi import FastAPI

from kyso_contracts import OrderPlaced, PaymentConfirmed, PaymentFailed
from kyso_kit.runtime import ServiceRuntime

from .gateway import SandboxVnpay, VnpayGateway
from .http_api import router
from .payments import Payments
from .settings import PaymentSettings


def build(settings: PaymentSettings | None = None) -> tuple[ServiceRuntime, FastAPI]:
    settings = settings or PaymentSettings()
    rt = ServiceRuntime(settings, publishes=[PaymentConfirmed, PaymentFailed])
    assert settings.vnpay_hash_secret
    gateway_args = (
        settings.vnpay_tmn_code,
        settings.vnpay_hash_secret,
        settings.vnpay_pay_url,
        settings.vnpay_return_url,
    )
    sandbox = SandboxVnpay(*gateway_args) if settings.development else None
    payments = Payments(rt.store, sandbox or VnpayGateway(*gateway_args), rt.clock)
    rt.on_startup(payments.init)
    rt.consumer.on(OrderPlaced)(payments.when_order_placed_open_payment)
    app = rt.http_app("kyso payment", "Payments for certificate orders (VNPay-style signed notifications)")
    app.include_router(router(payments, rt.verifier(), sandbox, rt.clock))
    return rt, app
