"""Composition root of the signing service."""

from __future__ import annotations

from fastapi import FastAPI

from kyso_contracts import (
    CertActivated,
    CertIssued,
    ConsentRejected,
    ContractSigned,
    OrderPlaced,
    Payload,
    PaymentAmountMismatch,
    PaymentConfirmed,
    SmsOtpVerified,
)
from kyso_kit.crypto import SecretBox
from kyso_kit.runtime import ServiceRuntime

from .activation import Activation
from .authority import Authority
from .contract import Contracts
from .http_api import router
from .issuance import Issuance
from .settings import SigningSettings

PUBLISHES: list[type[Payload]] = [ContractSigned, CertIssued, CertActivated, PaymentAmountMismatch, ConsentRejected]


def build(settings: SigningSettings | None = None) -> tuple[ServiceRuntime, FastAPI]:
    settings = settings or SigningSettings()
    rt = ServiceRuntime(settings, publishes=PUBLISHES)
    assert settings.master_key_b64
    box = SecretBox(settings.master_key_b64)
    authority = Authority(rt.store.collection("authority"), box, settings.ca_common_name, rt.clock)
    issuance = Issuance(rt.store, authority, box, rt.clock)
    contracts = Contracts(rt.store, issuance, rt.clock, settings.provider_name)
    activation = Activation(rt.store, authority, settings.master_key_b64, rt.clock)
    rt.on_startup(contracts.init)
    rt.on_startup(issuance.init)
    on = rt.consumer.on
    on(OrderPlaced)(contracts.when_order_placed_remember_order)
    on(PaymentConfirmed)(contracts.when_payment_confirmed_prepare_contract)
    on(SmsOtpVerified)(contracts.when_sms_otp_verified_sign_contract)
    app = rt.http_app("kyso signing", "Contracts, certificate issuance and activation, remote signing")
    app.include_router(router(contracts, activation, rt.verifier()))
    return rt, app
