"""Composition root of the signing service."""

from __future__ import annotations

from fastapi import FastAPI

from kyso_contracts import CertActivated, CertIssued, ContractSigned, OrderPlaced, PaymentConfirmed, SmsOtpVerified
from kyso_kit.auth import TokenVerifier
from kyso_kit.runtime import ServiceRuntime

from .http_api import router
from .service import SigningService
from .settings import SigningSettings


def build(settings: SigningSettings | None = None) -> tuple[ServiceRuntime, FastAPI]:
    settings = settings or SigningSettings()
    rt = ServiceRuntime(
        settings, outbox_collections=["certificates"], publishes=[ContractSigned, CertIssued, CertActivated]
    )
    svc = SigningService(rt, settings)
    rt.on_startup(svc.init)
    on = rt.consumer.on
    on(OrderPlaced)(svc.when_order_placed_remember_order)
    on(PaymentConfirmed)(svc.when_payment_confirmed_prepare_contract)
    on(SmsOtpVerified)(svc.when_sms_otp_verified_sign_contract)
    assert settings.auth_public_key_pem
    app = rt.http_app("kyso signing", "Contracts, certificate issuance and activation, remote signing")
    app.include_router(router(svc, TokenVerifier(settings.auth_public_key_pem)))
    return rt, app
