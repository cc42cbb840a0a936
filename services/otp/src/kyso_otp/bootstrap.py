"""Composition root of the otp service: the only place that reads settings and wires adapters."""

from __future__ import annotations

from fastapi import FastAPI

from kyso_contracts import (
    AccountCreated,
    OrganisationRegistrationOpened,
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
from kyso_kit.runtime import ServiceRuntime

from .delivery import DevInbox, HttpSmsGateway, SmsSender
from .http_api import router
from .invitations import Invitations
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
    SmartOtpTransactionVerified,
]


def build(settings: OtpSettings | None = None) -> tuple[ServiceRuntime, FastAPI]:
    settings = settings or OtpSettings()
    rt = ServiceRuntime(settings, publishes=PUBLISHES)
    inbox = DevInbox(rt.store.collection("dev_sms_inbox"), rt.clock) if settings.development else None
    sender: SmsSender
    if settings.sms_gateway_url:
        sender = HttpSmsGateway(settings.sms_gateway_url, settings.sms_gateway_token)
    else:
        assert inbox is not None
        sender = inbox
    sms = SmsOtp(rt.store, settings, sender, rt.clock)
    smartotp = SmartOtp(rt.store, settings, sms, rt.clock)
    methods = OtpMethods(rt.store, sms, smartotp, rt.clock)
    rt.on_startup(sms.init_indexes)
    rt.on_startup(smartotp.init_indexes)
    rt.consumer.on(AccountCreated)(sms.when_account_created_remember_phone)
    invitations = Invitations(rt.store, sender, rt.clock)
    rt.consumer.on(OrganisationRegistrationOpened)(invitations.when_organisation_registration_opened_invite)
    rt.every(3600, sms.limits.forget_old, "forget-old-limit-events")
    rt.every(3600, sms.forget_old_challenges, "forget-old-sms-challenges")
    app = rt.http_app("kyso otp", "SMS OTP challenges and SmartOTP soft tokens")
    app.include_router(router(settings, sms, smartotp, methods, inbox, rt.verifier(), rt.clock))
    return rt, app
