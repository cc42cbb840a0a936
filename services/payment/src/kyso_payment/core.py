"""The payment service's core: its use cases over a store, a clock and a gateway, built in one place.

Bootstrap builds it on the real database, clock and VNPay adapter; the service tests on the in-memory
store, a fake clock and the sandbox gateway: one composition of the use cases, not two."""

from __future__ import annotations

from kyso_kit.clock import Clock
from kyso_kit.store import Store

from .gateway import PaymentGateway, VnpayGateway
from .payments import Payments
from .settings import PaymentSettings


def vnpay(settings: PaymentSettings) -> VnpayGateway:
    """The gateway adapter the settings describe."""
    assert settings.vnpay_hash_secret
    return VnpayGateway(
        settings.vnpay_tmn_code,
        settings.vnpay_hash_secret,
        settings.vnpay_pay_url,
        settings.vnpay_return_url,
        settings.vnpay_api_url,
    )


def build_core(
    store: Store, clock: Clock, settings: PaymentSettings, gateway: PaymentGateway | None = None
) -> Payments:
    return Payments(store, gateway or vnpay(settings), clock, reconcile_after_seconds=settings.reconcile_after_seconds)
