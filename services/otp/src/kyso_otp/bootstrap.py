"""Composition root of the otp service: the only place that reads settings and wires adapters."""

from __future__ import annotations

from fastapi import FastAPI

from kyso_contracts import (
    AccountCreated,
    OtpEnrolled,
    OtpMethodChanged,
    OtpMethodLocked,
    OtpMethodUnlocked,
    OtpTokenLocked,
    OtpTokenRevoked,
    Payload,
    SmsOtpVerified,
)
from kyso_kit.auth import TokenVerifier
from kyso_kit.runtime import ServiceRuntime

from .delivery import DevInbox, HttpSmsGateway, SmsSender
from .http_api import router
from .methods import OtpMethods
from .settings import OtpSettings
from .smartotp import SmartOtp
from .sms import SmsOtp

PUBLISHES: list[type[Payload]] = [
    SmsOtpVerified,
    OtpEnrolled,
    OtpMethodChanged,
    OtpMethodLocked,
    OtpMethodUnlocked,
    OtpTokenLocked,
    OtpTokenRevoked,
]


def build(settings: OtpSettings | None = None) -> tuple[ServiceRuntime, FastAPI]:
    settings = settings or OtpSettings()
    rt = ServiceRuntime(
        settings, outbox_collections=["sms_challenges", "smartotp_tokens", "otp_methods"], publishes=PUBLISHES
    )
    inbox = DevInbox(rt.db) if settings.development else None
    sender: SmsSender
    if settings.sms_gateway_url:
        sender = HttpSmsGateway(settings.sms_gateway_url, settings.sms_gateway_token)
    else:
        assert inbox is not None
        sender = inbox
    sms = SmsOtp(rt, settings, sender)
    smartotp = SmartOtp(rt, settings, sms)
    methods = OtpMethods(rt, sms, smartotp)
    rt.on_startup(sms.init_indexes)
    rt.on_startup(smartotp.init_indexes)
    rt.consumer.on(AccountCreated)(sms.when_account_created_remember_phone)
    rt.every(3600, sms.limits.forget_ended_windows, "forget-ended-rate-limit-windows")
    rt.every(3600, sms.forget_old_challenges, "forget-old-sms-challenges")
    app = rt.http_app("kyso otp", "SMS OTP challenges and SmartOTP soft tokens")
    assert settings.auth_public_key_pem
    app.include_router(router(settings, sms, smartotp, methods, inbox, TokenVerifier(settings.auth_public_key_pem)))
    return rt, app
