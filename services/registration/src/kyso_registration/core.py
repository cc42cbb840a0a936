"""The registration service's core: its use cases over a store and a clock, built in one place.

Bootstrap builds it on the real database and clock; the service tests build it on the in-memory store
and a fake clock, so there is one composition of the use cases, not two (GHGA's ``prepare_core``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from kyso_kit.changes import Changes
from kyso_kit.clock import Clock
from kyso_kit.store import Store
from kyso_kit.tokens import TokenIssuer

from . import domain
from .accounts import Accounts
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

    def inits(self) -> list[Callable[[], Awaitable[None]]]:
        """What runs once before the service takes requests (indexes)."""
        return [self.identities.init, self.accounts.init, self.orders.init, self.organisations.init,
                self.vneid_status.init]  # fmt: skip

    async def start(self) -> None:
        for init in self.inits():
            await init()


def build_core(store: Store, clock: Clock, settings: RegistrationSettings) -> Registration:
    assert settings.vneid_public_key_pem and settings.auth_signing_key_pem
    tokens = TokenIssuer(settings.auth_signing_key_pem, settings.access_token_ttl_seconds, clock)
    changes = Changes()
    vneid = domain.VneidVerifier(settings.vneid_public_key_pem)
    identities = Identities(store, vneid, clock, settings.identity_max_age_seconds, changes)
    accounts = Accounts(
        store,
        identities,
        tokens,
        clock,
        max_failures=settings.login_max_failures,
        lock_seconds=settings.login_lock_seconds,
        failures_per_account_per_day=settings.login_failures_per_account_per_day,
        failures_per_address_per_hour=settings.login_failures_per_address_per_hour,
    )
    orders = Orders(store, identities, clock, changes, timedelta(hours=settings.order_payment_window_hours))
    organisations = Organisations(store, orders, clock, changes)
    vneid_status = VneidStatus(store, vneid, clock, settings.identity_max_age_seconds)
    return Registration(
        identities, accounts, orders, organisations, vneid_status, OrderStatusView(store, changes), tokens
    )
