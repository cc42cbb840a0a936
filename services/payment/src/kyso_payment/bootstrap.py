"""Composition root of the payment service."""

from __future__ import annotations

from fastapi import FastAPI

from kyso_contracts import PaymentConfirmed, PaymentFailed, PaymentRefunded
from kyso_kit.routing import wire
from kyso_kit.runtime import ServiceRuntime

from .core import build_core
from .handlers import HANDLERS
from .http_api import router
from .settings import PaymentSettings


def build(settings: PaymentSettings | None = None) -> tuple[ServiceRuntime, FastAPI]:
    settings = settings or PaymentSettings()
    rt = ServiceRuntime(settings, publishes=[PaymentConfirmed, PaymentFailed, PaymentRefunded])
    payments = build_core(rt.store, rt.clock, settings)
    rt.on_startup(payments.init)
    rt.every(settings.reconcile_every_seconds, payments.reconcile, "payment-reconciliation")
    wire(rt.consumer, HANDLERS, payments)
    app = rt.http_app("kyso payment", "Payments for certificate orders (VNPay-style signed notifications)")
    app.include_router(router(payments, rt.verifier(), settings.client_addresses()))
    return rt, app
