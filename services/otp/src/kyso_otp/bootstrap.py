"""Composition root of the otp service: the only place that reads settings and wires adapters."""

from __future__ import annotations

from fastapi import FastAPI

from kyso_contracts import (
    OtpEnrolled,
    OtpMethodChanged,
    OtpMethodLocked,
    OtpMethodUnlocked,
    OtpTokenLocked,
    OtpTokenRevoked,
    Payload,
    SmartOtpTransactionVerified,
    SmsOtpVerified,
)
from kyso_kit.routing import wire
from kyso_kit.runtime import ServiceRuntime

from .core import build_core
from .handlers import HANDLERS
from .http_api import router
from .settings import OtpSettings

PUBLISHES: list[type[Payload]] = [
    SmsOtpVerified,
    OtpEnrolled,
    OtpMethodChanged,
    OtpMethodLocked,
    OtpMethodUnlocked,
    OtpTokenLocked,
    OtpTokenRevoked,
    SmartOtpTransactionVerified,
]


def build(settings: OtpSettings | None = None) -> tuple[ServiceRuntime, FastAPI]:
    settings = settings or OtpSettings()
    rt = ServiceRuntime(settings, publishes=PUBLISHES)
    otp = build_core(rt.store, rt.clock, settings)
    for init in otp.inits():
        rt.on_startup(init)
    wire(rt.consumer, HANDLERS, otp)
    rt.every(3600, otp.sms.limits.forget_old, "forget-old-limit-events")
    rt.every(3600, otp.sms.forget_old_challenges, "forget-old-sms-challenges")
    app = rt.http_app("kyso otp", "SMS OTP challenges and SmartOTP soft tokens")
    app.include_router(router(settings, otp.sms, otp.smartotp, otp.methods, otp.inbox, rt.verifier(), rt.clock))
    return rt, app
