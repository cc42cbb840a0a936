"""Composition root of the registration service."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from fastapi import FastAPI

from kyso_contracts import (
    AccountCreated,
    CertActivated,
    CertExpired,
    CertIssued,
    CertResumed,
    CertRevoked,
    CertSuspended,
    ConsentRejected,
    ContractSigned,
    IssuanceStopped,
    OrderCancelled,
    OrderExpired,
    OrderPlaced,
    OrganisationRegistrationConfirmed,
    OrganisationRegistrationOpened,
    OrganisationRegistrationWithdrawn,
    PaymentAmountMismatch,
    PaymentConfirmed,
    PaymentFailed,
    PaymentRefunded,
    SmsOtpVerified,
)
from kyso_kit.auth import TokenIssuer, TokenVerifier
from kyso_kit.changes import Changes
from kyso_kit.runtime import ServiceRuntime

from . import domain
from .accounts import Accounts
from .http_api import router
from .identity import Identities
from .orders import Orders
from .organisations import Organisations
from .settings import RegistrationSettings
from .status import OrderStatusView
from .vneid_status import VneidStatus


@dataclass
class Registration:
    identities: Identities
    accounts: Accounts
    orders: Orders
    organisations: Organisations
    vneid_status: VneidStatus
    status: OrderStatusView
    tokens: TokenIssuer


def use_cases(rt: ServiceRuntime, settings: RegistrationSettings) -> Registration:
    assert settings.vneid_public_key_pem and settings.auth_signing_key_pem
    tokens = TokenIssuer(settings.auth_signing_key_pem, settings.access_token_ttl_seconds, rt.clock)
    changes = Changes()
    vneid = domain.VneidVerifier(settings.vneid_public_key_pem)
    identities = Identities(
        rt.store,
        vneid,
        rt.clock,
        settings.identity_max_age_seconds,
        changes,
    )
    accounts = Accounts(
        rt.store,
        identities,
        tokens,
        rt.clock,
        max_failures=settings.login_max_failures,
        lock_seconds=settings.login_lock_seconds,
        failures_per_account_per_day=settings.login_failures_per_account_per_day,
        failures_per_address_per_hour=settings.login_failures_per_address_per_hour,
    )
    orders = Orders(rt.store, identities, rt.clock, changes, timedelta(hours=settings.order_payment_window_hours))
    organisations = Organisations(rt.store, orders, rt.clock, changes)
    vneid_status = VneidStatus(rt.store, vneid, rt.clock, settings.identity_max_age_seconds)
    return Registration(
        identities, accounts, orders, organisations, vneid_status, OrderStatusView(rt.store, changes), tokens
    )


def build(settings: RegistrationSettings | None = None) -> tuple[ServiceRuntime, FastAPI]:
    settings = settings or RegistrationSettings()
    rt = ServiceRuntime(
        settings,
        publishes=[
            AccountCreated,
            OrderPlaced,
            OrderCancelled,
            OrderExpired,
            OrganisationRegistrationOpened,
            OrganisationRegistrationConfirmed,
            OrganisationRegistrationWithdrawn,
        ],
    )
    uc = use_cases(rt, settings)
    for init in (uc.identities.init, uc.accounts.init, uc.orders.init, uc.organisations.init, uc.vneid_status.init):
        rt.on_startup(init)
    rt.every(settings.order_expiry_every_seconds, uc.orders.expire_unpaid, "unpaid-order-expiry")
    rt.every(3600, uc.accounts.limits.forget_old, "forget-old-limit-events")
    on = rt.consumer.on
    on(SmsOtpVerified, wants=lambda e: e.purpose == uc.identities.SMS_PURPOSE)(
        uc.identities.when_sms_otp_verified_mark_phone
    )
    on(OrganisationRegistrationConfirmed)(uc.organisations.when_confirmed_place_orders)
    on(PaymentConfirmed)(uc.status.when_payment_confirmed_mark_paid)
    on(PaymentFailed)(uc.status.when_payment_failed_mark_failed)
    on(PaymentRefunded)(uc.status.when_payment_refunded_note)
    on(PaymentAmountMismatch)(uc.status.when_payment_amount_mismatch_stop)
    on(ConsentRejected)(uc.status.when_consent_rejected_ask_again)
    on(ContractSigned)(uc.status.when_contract_signed_mark_signed)
    on(IssuanceStopped)(uc.status.when_issuance_stopped_close)
    on(CertIssued)(uc.status.when_cert_issued_show_pending)
    on(CertActivated)(uc.status.when_cert_activated_show_active)
    on(CertSuspended)(uc.status.when_cert_suspended_show_suspended)
    on(CertResumed)(uc.status.when_cert_resumed_show_active)
    on(CertRevoked)(uc.status.when_cert_revoked_show_revoked)
    on(CertExpired)(uc.status.when_cert_expired_show_expired)
    app = rt.http_app("kyso registration", "VNeID hand-over, accounts, certificate orders and their status")
    app.include_router(
        router(
            uc.identities,
            uc.accounts,
            uc.orders,
            uc.organisations,
            uc.vneid_status,
            TokenVerifier(uc.tokens.jwks(), rt.clock),
            uc.tokens,
            settings.client_addresses(),
        )
    )
    return rt, app
