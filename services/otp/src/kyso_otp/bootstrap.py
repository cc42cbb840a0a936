"""Composition root of the otp service: the only place that reads settings and wires adapters."""

from __future__ import annotations

from fastapi import FastAPI

from kyso_contracts import AccountCreated, OtpEnrolled, SmsOtpVerified
from kyso_kit.auth import TokenVerifier
from kyso_kit.runtime import ServiceRuntime

from .delivery import DevInbox, HttpSmsGateway, SmsSender
from .http_api import router
from .service import OtpService
from .settings import OtpSettings


def build(settings: OtpSettings | None = None) -> tuple[ServiceRuntime, FastAPI]:
    settings = settings or OtpSettings()
    rt = ServiceRuntime(
        settings, outbox_collections=["sms_challenges", "smartotp_tokens"], publishes=[SmsOtpVerified, OtpEnrolled]
    )
    inbox = DevInbox(rt.db) if settings.development else None
    sender: SmsSender
    if settings.sms_gateway_url:
        sender = HttpSmsGateway(settings.sms_gateway_url, settings.sms_gateway_token)
    else:
        assert inbox is not None
        sender = inbox
    svc = OtpService(rt, settings, sender)
    rt.on_startup(svc.init_indexes)
    rt.consumer.on(AccountCreated)(svc.when_account_created_remember_phone)
    app = rt.http_app("kyso otp", "SMS OTP challenges and SmartOTP soft tokens")
    assert settings.auth_public_key_pem
    app.include_router(router(svc, inbox, TokenVerifier(settings.auth_public_key_pem)))
    return rt, app
