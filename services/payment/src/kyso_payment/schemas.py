"""What the payment API accepts and answers (the OpenAPI document is generated from these)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from kyso_contracts import RefundReason
from kyso_contracts.types import Id, Text, Vnd


class RefundRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: Text = Field(description="Why the operator refunds (kept in the log)")


class RefundView(BaseModel):
    amount_vnd: int
    reason: RefundReason
    status: Literal["requested", "failed", "refunded"] = Field(description="failed: asked again by reconciliation")
    provider_transaction_no: str
    refunded_at: str | None = None


class PaymentView(BaseModel):
    payment_id: Id
    order_id: Id
    amount_vnd: Vnd
    status: Literal["pending", "confirmed", "failed", "cancelled"]
    provider: str
    refunds: list[RefundView] = Field(default_factory=list, description="Money given back, and why")


class CheckoutView(BaseModel):
    payment_id: Id
    payment_url: str = Field(description="Where the user pays (the gateway's page)")
    amount_vnd: Vnd


class GatewayAnswer(BaseModel):
    RspCode: str = Field(
        description="00 accepted · 01 unknown order · 02 already settled · 04 wrong amount · 97 bad signature · "
        "99 not handled (send it again)"
    )
    Message: str


class ReturnView(BaseModel):
    """What the app shows when the gateway sends the user back (display only)."""

    payment_id: Id | None = None
    order_id: Id | None = None
    gateway_says: Literal["paid", "not_paid"]
    payment_status: str | None = Field(default=None, description="Ours, which only the IPN or reconciliation change")
    message: str
    message_vi: str


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
