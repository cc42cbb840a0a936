"""HTTP entry points of the payment service."""

from __future__ import annotations

import ipaddress
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request

from kyso_contracts.types import Id
from kyso_kit.auth import Principal, TokenVerifier, bearer_dependency
from kyso_kit.client_address import ClientAddresses
from kyso_kit.openapi import errors

from .payments import Payments
from .schemas import CheckoutView, GatewayAnswer, PaymentView, RefundRequest, ReturnView, VnpayNotification


def _is_ip(value: str) -> bool:
    """VNPay wants an IP address; a test client's peer is a name."""
    try:
        ipaddress.ip_address(value)
    except ValueError:
        return False
    return True


def router(payments: Payments, verifier: TokenVerifier, addresses: ClientAddresses) -> APIRouter:
    r = APIRouter()
    account = bearer_dependency(verifier)
    client_address = addresses.dependency()

    @r.get("/v1/payments", tags=["payments"], responses=errors(401, 403, 404, 422))
    async def payment_for_order(
        order_id: Annotated[Id, Query(description="The order the payment is for")],
        who: Principal = Depends(account),
        wait: Annotated[float, Query(ge=0, le=30, description="Long-poll: wait this long for the payment")] = 0,
    ) -> PaymentView:
        """The order's payment (opened as soon as payment learns of the order)."""
        return await payments.for_order(who, order_id, wait)

    @r.post("/v1/payments/{payment_id}/checkout", tags=["payments"], responses=errors(401, 403, 404, 409, 422))
    async def checkout(
        payment_id: Id, client: str = Depends(client_address), who: Principal = Depends(account)
    ) -> CheckoutView:
        """A signed gateway URL (``vnp_IpAddr``: the buyer's address, behind TRUSTED_PROXIES); a failed or
        cancelled payment gets a new gateway reference."""
        return await payments.checkout(who, payment_id, client if _is_ip(client) else "127.0.0.1")

    @r.post(
        "/v1/payments/{payment_id}/refunds",
        status_code=201,
        tags=["payments"],
        responses=errors(401, 403, 404, 409, 422),
    )
    async def refund(payment_id: Id, body: RefundRequest, who: Principal = Depends(account)) -> PaymentView:
        """An operator refunds a confirmed payment (once; ``PaymentRefunded`` with reason ``operator``)."""
        return await payments.refund_by_operator(who, payment_id, body.note)

    @r.get("/v1/payments/vnpay/ipn", tags=["gateway"])
    async def ipn(request: Request, notification: Annotated[VnpayNotification, Query()]) -> GatewayAnswer:
        """Server-to-server notification from the gateway (HMAC-SHA512 signed, idempotent).

        Always answers 200 with VNPay's RspCode, as VNPay requires; the signature covers every
        ``vnp_`` parameter received, so they are read as sent."""
        del notification  # declared for the OpenAPI document; verified as received below
        return GatewayAnswer(**await payments.notify(dict(request.query_params)))

    @r.get("/v1/payments/vnpay/return", tags=["gateway"], responses=errors(400, 422))
    async def returned(request: Request, notification: Annotated[VnpayNotification, Query()]) -> ReturnView:
        """Where the gateway sends the user's browser back: shows what the gateway says, for display only —
        the payment's state changes only by the IPN or by reconciliation."""
        del notification
        return await payments.returned(dict(request.query_params))

    return r
