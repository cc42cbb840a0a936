"""The payment gateway port and its adapters: VNPay, and the sandbox that plays VNPay in development."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from datetime import datetime
from typing import ClassVar, Protocol
from urllib.parse import parse_qsl, urlsplit

from kyso_kit.errors import Rejected
from kyso_kit.timeutil import VN

from . import vnpay
from .domain import GatewayResult, NotificationOutcome, Payment


class BadNotification(Exception):
    """The notification is not signed by the gateway (or is not one at all)."""


class PaymentGateway(Protocol):
    name: str

    def new_reference(self) -> str:
        """A fresh merchant reference for one payment attempt."""
        ...

    def checkout_url(self, payment: Payment, description: str, client_ip: str, at: datetime) -> str: ...

    def parse_notification(self, params: Mapping[str, str]) -> GatewayResult:
        """Verify and read a server-to-server notification; :class:`BadNotification` if not genuine."""
        ...

    def answer(self, outcome: NotificationOutcome) -> dict[str, str]:
        """What the gateway expects back for ``outcome``."""
        ...


class VnpayGateway:
    """VNPay v2.1.0: HMAC-SHA512 signed parameters, amounts in đồng × 100, GMT+7 timestamps."""

    name = "vnpay"
    ANSWERS: ClassVar[dict[NotificationOutcome, tuple[str, str]]] = {
        NotificationOutcome.ACCEPTED: ("00", "Confirm Success"),
        NotificationOutcome.UNKNOWN_PAYMENT: ("01", "Order not found"),
        NotificationOutcome.ALREADY_SETTLED: ("02", "Order already confirmed"),
        NotificationOutcome.AMOUNT_MISMATCH: ("04", "Invalid amount"),
        NotificationOutcome.BAD_SIGNATURE: ("97", "Invalid Checksum"),
    }

    def __init__(self, tmn_code: str, hash_secret: str, pay_url: str, return_url: str) -> None:
        self.tmn_code = tmn_code
        self._secret = hash_secret
        self.pay_url = pay_url
        self.return_url = return_url

    def new_reference(self) -> str:
        return secrets.token_hex(10)

    def checkout_url(self, payment: Payment, description: str, client_ip: str, at: datetime) -> str:
        params = {
            "vnp_Version": "2.1.0",
            "vnp_Command": "pay",
            "vnp_TmnCode": self.tmn_code,
            "vnp_Amount": str(payment.amount_vnd * 100),
            "vnp_CurrCode": "VND",
            "vnp_TxnRef": payment.txn_ref,
            "vnp_OrderInfo": description,
            "vnp_OrderType": "other",
            "vnp_Locale": "vn",
            "vnp_ReturnUrl": self.return_url,
            "vnp_IpAddr": client_ip,
            "vnp_CreateDate": at.astimezone(VN).strftime("%Y%m%d%H%M%S"),
        }
        return vnpay.signed_url(self.pay_url, params, self._secret)

    def parse_notification(self, params: Mapping[str, str]) -> GatewayResult:
        if not vnpay.verify(params, self._secret):
            raise BadNotification("vnp_SecureHash does not verify")
        amount = params.get("vnp_Amount", "")
        if not amount.isdigit():
            raise BadNotification("vnp_Amount is not an amount")
        code = params.get("vnp_ResponseCode") or "99"
        return GatewayResult(
            provider=self.name,
            txn_ref=params.get("vnp_TxnRef", ""),
            amount_vnd=int(amount) // 100 if int(amount) % 100 == 0 else None,
            success=code == "00" and params.get("vnp_TransactionStatus") == "00",
            response_code=code,
            transaction_no=params.get("vnp_TransactionNo") or "0",
        )

    def answer(self, outcome: NotificationOutcome) -> dict[str, str]:
        code, message = self.ANSWERS[outcome]
        return {"RspCode": code, "Message": message}


class SandboxVnpay(VnpayGateway):
    """Development only: VNPay's counterpart. Given a checkout URL it plays the user paying (or
    cancelling) and returns the signed notification VNPay would send."""

    def notification_for(self, payment_url: str, outcome: str, at: datetime) -> dict[str, str]:
        query = dict(parse_qsl(urlsplit(payment_url).query))
        if not vnpay.verify(query, self._secret):
            raise Rejected(
                "invalid_checkout_signature",
                "The checkout URL signature is invalid",
                "Chữ ký URL thanh toán không hợp lệ",
            )
        code = "00" if outcome == "success" else "24"  # 24 = customer cancelled
        ipn = {
            "vnp_TmnCode": query["vnp_TmnCode"],
            "vnp_Amount": query["vnp_Amount"],
            "vnp_BankCode": "NCB",
            "vnp_OrderInfo": query["vnp_OrderInfo"],
            "vnp_TransactionNo": str(secrets.randbelow(10**8)),
            "vnp_ResponseCode": code,
            "vnp_TransactionStatus": "00" if code == "00" else "02",
            "vnp_TxnRef": query["vnp_TxnRef"],
            "vnp_PayDate": at.astimezone(VN).strftime("%Y%m%d%H%M%S"),
        }
        ipn["vnp_SecureHash"] = vnpay.sign(ipn, self._secret)
        return ipn
