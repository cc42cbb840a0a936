from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from kyso_kit.settings import SecretKind, ServiceSettings


class PaymentSettings(ServiceSettings):
    service_name: str = "payment"
    secrets: ClassVar[dict[str, tuple[SecretKind, str]]] = {"vnpay_hash_secret": ("secret", "vnpay")}
    http_port: int = Field(default=8002, validation_alias="HTTP_PORT", description="HTTP port")
    vnpay_tmn_code: str = Field(
        default="KYSODEV1",
        validation_alias="VNPAY_TMN_CODE",
        description="Merchant (terminal) code at the payment gateway",
    )
    vnpay_hash_secret: str | None = Field(
        default=None,
        validation_alias="VNPAY_HASH_SECRET",
        description="Shared secret of the gateway's HMAC-SHA512 signatures (required in production)",
    )
    vnpay_pay_url: str = Field(
        default="http://127.0.0.1:8005/sandbox/pay",
        validation_alias="VNPAY_PAY_URL",
        description="Where the user is sent to pay (the sandbox gateway in development)",
    )
    vnpay_api_url: str = Field(
        default="http://127.0.0.1:8005/merchant_webapi/api/transaction",
        validation_alias="VNPAY_API_URL",
        description="The gateway's merchant API (querydr, refund)",
    )
    vnpay_ipn_url: str = Field(
        default="http://127.0.0.1:8002/v1/payments/vnpay/ipn",
        validation_alias="VNPAY_IPN_URL",
        description="(the sandbox gateway) the merchant's IPN URL it notifies",
    )
    reconcile_after_seconds: float = Field(
        default=300, validation_alias="RECONCILE_AFTER_SECONDS", description="Ask the gateway about a payment "
        "still pending this long after checkout (its IPN may never come)"
    )  # fmt: skip
    reconcile_every_seconds: float = Field(
        default=30, validation_alias="RECONCILE_EVERY_SECONDS", description="How often reconciliation runs"
    )
    vnpay_return_url: str = Field(
        default="kyso://payment-result",
        validation_alias="VNPAY_RETURN_URL",
        description="Where the gateway sends the user back",
    )
