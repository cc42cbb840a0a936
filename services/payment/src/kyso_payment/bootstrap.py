"""Composition root of the payment service."""

from __future__ import annotations

from fastapi import FastAPI

from kyso_contracts import OrderPlaced, PaymentConfirmed, PaymentFailed
from kyso_kit.auth import TokenVerifier
from kyso_kit.runtime import ServiceRuntime

from .http_api import router
from .service import PaymentService
from .settings import PaymentSettings


def build(settings: PaymentSettings | None = None) -> tuple[ServiceRuntime, FastAPI]:
    settings = settings or PaymentSettings()
    rt = ServiceRuntime(settings, outbox_collections=["payments"], publishes=[PaymentConfirmed, PaymentFailed])
    svc = PaymentService(rt, settings)
    rt.on_startup(svc.init_indexes)
    rt.consumer.on(OrderPlaced)(svc.when_order_placed_open_payment)
    assert settings.auth_public_key_pem
    app = rt.http_app("kyso payment", "Payments for certificate orders (VNPay-style signed notifications)")
    app.include_router(router(svc, TokenVerifier(settings.auth_public_key_pem), sandbox=settings.development))
    return rt, app
