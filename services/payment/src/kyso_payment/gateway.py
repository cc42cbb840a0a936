"""The payment gateway port and its VNPay adapter: the signed checkout URL, the IPN, the return URL, and
the merchant API (querydr, refund). In development the gateway is ``sandbox_gateway``, its own process."""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime
from typing import Any, ClassVar, Protocol

import httpx

from kyso_kit.timeutil import VN

from . import vnpay
from .domain import GatewayResult, NotificationOutcome, Payment, RefundOrder, RefundOutcome

log = logging.getLogger(__name__)
Post = Callable[[str, dict[str, str]], Awaitable[dict[str, Any]]]


async def _http_post(url: str, body: dict[str, str]) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=10) as http:
        r = await http.post(url, json=body)
        out: dict[str, Any] = r.json()
        return out


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

    def read_return(self, params: Mapping[str, str]) -> GatewayResult:
        """The return URL's parameters, verified (display only); :class:`BadNotification` if not genuine."""
        ...

    async def query(self, txn_ref: str, created_at: datetime, at: datetime) -> GatewayResult | None:
        """Ask the gateway what became of an attempt (its IPN may never come); None: it does not know
        yet, or could not be asked."""
        ...

    async def refund(self, refund: RefundOrder, at: datetime) -> RefundOutcome:
        """Ask the gateway to give the money of one transaction back."""
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
        NotificationOutcome.ERROR: ("99", "Unknown error"),
    }

    def __init__(
        self,
        tmn_code: str,
        hash_secret: str,
        pay_url: str,
        return_url: str,
        api_url: str = "",
        post: Post | None = None,
    ) -> None:
        self.tmn_code = tmn_code
        self._secret = hash_secret
        self.pay_url = pay_url
        self.return_url = return_url
        self.api_url = api_url
        self._post = post or _http_post

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

    def read_return(self, params: Mapping[str, str]) -> GatewayResult:
        """The return URL's parameters (the user's browser): for display only, never a state change."""
        return self.parse_notification(params)

    async def _call(self, body: dict[str, str]) -> dict[str, Any] | None:
        body["vnp_SecureHash"] = vnpay.sign_api(body, self._secret)
        try:
            answer = await self._post(self.api_url, body)
        except Exception as exc:  # the gateway is down or answered garbage: try again later
            log.warning("gateway API unreachable", extra={"command": body["vnp_Command"], "error": type(exc).__name__})
            return None
        if not vnpay.verify_api(answer, self._secret, response=True):
            log.warning("gateway API answer not signed by the gateway", extra={"command": body["vnp_Command"]})
            return None
        return answer

    def _common(self, command: str, txn_ref: str, created_at: datetime, at: datetime, info: str) -> dict[str, str]:
        return {
            "vnp_RequestId": secrets.token_hex(16),
            "vnp_Version": "2.1.0",
            "vnp_Command": command,
            "vnp_TmnCode": self.tmn_code,
            "vnp_TxnRef": txn_ref,
            "vnp_OrderInfo": info,
            "vnp_TransactionDate": created_at.astimezone(VN).strftime("%Y%m%d%H%M%S"),
            "vnp_CreateDate": at.astimezone(VN).strftime("%Y%m%d%H%M%S"),
            "vnp_IpAddr": "127.0.0.1",
        }

    async def query(self, txn_ref: str, created_at: datetime, at: datetime) -> GatewayResult | None:
        answer = await self._call(self._common("querydr", txn_ref, created_at, at, f"Truy van GD {txn_ref}"))
        if answer is None or answer.get("vnp_ResponseCode") != "00" or answer.get("vnp_TxnRef") != txn_ref:
            return None  # 91: the gateway has no such transaction (the user never paid); others: ask later
        status = str(answer.get("vnp_TransactionStatus"))
        if status == "01":  # not finished at the gateway yet
            return None
        amount = str(answer.get("vnp_Amount", ""))
        return GatewayResult(
            provider=self.name,
            txn_ref=txn_ref,
            amount_vnd=int(amount) // 100 if amount.isdigit() and int(amount) % 100 == 0 else None,
            success=status in ("00", "05", "06"),  # paid (and possibly refunded since)
            response_code=status,
            transaction_no=str(answer.get("vnp_TransactionNo") or "0"),
        )

    async def refund(self, refund: RefundOrder, at: datetime) -> RefundOutcome:
        body = self._common("refund", refund.txn_ref, refund.created_at, at, f"Hoan tien GD {refund.txn_ref}")
        body |= {
            "vnp_TransactionType": "02",  # the whole amount
            "vnp_Amount": str(refund.amount_vnd * 100),
            "vnp_TransactionNo": refund.transaction_no,
            "vnp_CreateBy": "kyso",
        }
        answer = await self._call(body)
        if answer is None:
            return RefundOutcome(done=False, code="unreachable")
        code = str(answer.get("vnp_ResponseCode"))
        # 94: this refund was asked for before (our earlier try got through; its answer did not)
        return RefundOutcome(done=code in ("00", "94"), code=code)
