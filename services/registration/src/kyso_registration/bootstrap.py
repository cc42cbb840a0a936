"""Composition root of the registration service."""

from __future__ import annotations

from fastapi import FastAPI

from kyso_contracts import (
    AccountCreated,
    OrderCancelled,
    OrderExpired,
    OrderPlaced,
    OrganisationRegistrationConfirmed,
    OrganisationRegistrationOpened,
    OrganisationRegistrationWithdrawn,
)
from kyso_kit.routing import wire
from kyso_kit.runtime import ServiceRuntime
from kyso_kit.tokens import TokenVerifier

from .core import build_core
from .handlers import HANDLERS
from .http_api import router
from .settings import RegistrationSettings


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
    uc = build_core(rt.store, rt.clock, settings)
    for init in uc.inits():
        rt.on_startup(init)
    rt.every(settings.order_expiry_every_seconds, uc.orders.expire_unpaid, "unpaid-order-expiry")
    rt.every(3600, uc.accounts.limits.forget_old, "forget-old-limit-events")
    wire(rt.consumer, HANDLERS, uc)
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
