"""HTTP entry points of the payment service."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, StringConstraints

from kyso_kit.auth import TokenVerifier, bearer_dependency

from .service import PaymentService

IdStr = Annotated[str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")]


class SandboxPay(BaseModel):
    model_config = ConfigDict(extra="forbid")
    payment_url: Annotated[str, StringConstraints(min_length=1, max_length=4096)]
    outcome: Literal["success", "cancel"] = "success"


def router(svc: PaymentService, verifier: TokenVerifier, sandbox: bool) -> APIRouter:
    r = APIRouter()
    account = bearer_dependency(verifier)

    @r.get("/v1/payments", tags=["payments"])
    async def payment_for_order(
        order_id: Annotated[str, Query(pattern=r"^[A-Za-z0-9_-]{1,64}$")], account_id: str = Depends(account)
    ) -> dict[str, Any]:
        return await svc.get_for_order(account_id, order_id)

    @r.post("/v1/payments/{payment_id}/checkout", tags=["payments"])
    async def checkout(payment_id: IdStr, request: Request, account_id: str = Depends(account)) -> dict[str, Any]:
        ip = request.client.host if request.client else "127.0.0.1"
        return await svc.checkout(account_id, payment_id, ip)

    @r.get("/v1/payments/vnpay/ipn", tags=["gateway"])
    async def ipn(request: Request) -> dict[str, str]:
        """Server-to-server notification from the gateway (signed, idempotent)."""
        return await svc.handle_ipn(dict(request.query_params))

    if sandbox:

        @r.post("/sandbox/vnpay/pay", tags=["development"])
        async def sandbox_pay(body: SandboxPay) -> dict[str, Any]:
            """Development only: play the gateway — the user pays, the gateway notifies us (signed IPN)."""
            from urllib.parse import parse_qsl, urlsplit

            query = dict(parse_qsl(urlsplit(body.payment_url).query))
            notification = svc.sandbox_gateway_notification(query, body.outcome)
            return {"ipn_response": await svc.handle_ipn(notification)}

    return r
