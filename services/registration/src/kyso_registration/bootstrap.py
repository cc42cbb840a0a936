"""Composition root of the registration service."""

from __future__ import annotations

from fastapi import FastAPI

from kyso_contracts import (
    AccountCreated,
    CertActivated,
    CertIssued,
    ContractSigned,
    OrderPlaced,
    PaymentConfirmed,
    PaymentFailed,
    SmsOtpVerified,
)
from kyso_kit.auth import TokenVerifier, public_pem_of
from kyso_kit.runtime import ServiceRuntime

from .http_api import router
from .service import RegistrationService
from .settings import RegistrationSettings


def build(settings: RegistrationSettings | None = None) -> tuple[ServiceRuntime, FastAPI]:
    settings = settings or RegistrationSettings()
    rt = ServiceRuntime(settings, outbox_collections=["accounts", "orders"], publishes=[AccountCreated, OrderPlaced])
    svc = RegistrationService(rt, settings)
    rt.on_startup(svc.init_indexes)
    on = rt.consumer.on
    on(SmsOtpVerified)(svc.when_sms_otp_verified_mark_phone)
    on(PaymentConfirmed)(svc.when_payment_confirmed_mark_paid)
    on(PaymentFailed)(svc.when_payment_failed_mark_failed)
    on(ContractSigned)(svc.when_contract_signed_mark_signed)
    on(CertIssued)(svc.when_cert_issued_show_pending)
    on(CertActivated)(svc.when_cert_activated_show_active)
    assert settings.auth_signing_key_pem
    app = rt.http_app("kyso registration", "VNeID hand-over, accounts, certificate orders and their status")
    app.include_router(router(svc, TokenVerifier(public_pem_of(settings.auth_signing_key_pem))))
    return rt, app
