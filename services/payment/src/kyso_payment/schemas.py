"""What the payment API accepts and answers (the OpenAPI document is generated from these)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from kyso_contracts.types import Id, Vnd


class PaymentView(BaseModel):
    payment_id: Id
    order_id: Id
    amount_vnd: Vnd
    status: Literal["pending", "confirmed", "failed"]
    provider: str


class CheckoutView(BaseModel):
    payment_id: Id
    payment_url: str = Field(description="Where the user pays (the gateway's page)")
    amount_vnd: Vnd


class GatewayAnswer(BaseModel):
    RspCode: str = Field(
        description="00 accepted · 01 unknown order · 02 already settled · 04 wrong amount · 97 bad signature"
    )
    Message: str


class SandboxPay(BaseModel):
    model_config = ConfigDict(extra="forbid")
    payment_url: Annotated[str, StringConstraints(min_length=1, max_length=4096)]
    outcome: Literal["success", "cancel"] = "success"


class SandboxPayResult(BaseModel):
    ipn_response: GatewayAnswer


class VnpayNotification(BaseModel):
    """The query parameters VNPay sends to the IPN URL (all are covered by ``vnp_SecureHash``)."""

    vnp_TmnCode: str | None = Field(default=None, description="Merchant code")
    vnp_Amount: str | None = Field(default=None, description="Amount in đồng × 100", pattern=r"^\d{1,20}$")
    vnp_BankCode: str | None = None
    vnp_BankTranNo: str | None = None
    vnp_CardType: str | None = None
    vnp_PayDate: str | None = Field(default=None, description="yyyyMMddHHmmss, GMT+7")
    vnp_OrderInfo: str | None = None
    vnp_TransactionNo: str | None = None
    vnp_ResponseCode: str | None = Field(default=None, description="00 = success")
    vnp_TransactionStatus: str | None = Field(default=None, description="00 = success")
    vnp_TxnRef: str | None = Field(default=None, description="Our reference of the payment attempt")
    vnp_SecureHashType: str | None = None
    vnp_SecureHash: str | None = Field(default=None, description="HMAC-SHA512 of the sorted parameters")
