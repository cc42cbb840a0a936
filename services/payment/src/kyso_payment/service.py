"""Payment use cases: a pending payment per order, checkout, and the gateway's signed notification (IPN)."""

from __future__ import annotations

import logging
import secrets
import uuid
from typing import Any

from pymongo import ReturnDocument
from pymongo.errors import DuplicateKeyError

from kyso_contracts import CloudEvent, OrderPlaced, PaymentConfirmed, PaymentFailed
from kyso_kit.auth import forbidden
from kyso_kit.errors import ApiError, not_found
from kyso_kit.outbox import with_events
from kyso_kit.runtime import ServiceRuntime
from kyso_kit.timeutil import VN, now

from . import vnpay
from .settings import PaymentSettings

log = logging.getLogger(__name__)

PROVIDER = "vnpay"


class PaymentService:
    def __init__(self, runtime: ServiceRuntime, settings: PaymentSettings) -> None:
        self.rt = runtime
        self.s = settings
        self.payments = runtime.db["payments"]
        assert settings.vnpay_hash_secret
        self.secret = settings.vnpay_hash_secret

    async def init_indexes(self) -> None:
        await self.payments.create_index([("order_id", 1)], unique=True)
        await self.payments.create_index([("txn_ref", 1)], unique=True)

    async def when_order_placed_open_payment(self, event: CloudEvent[OrderPlaced]) -> None:
        o = event.data
        try:
            await self.payments.insert_one(
                {
                    "_id": uuid.uuid4().hex,
                    "order_id": o.order_id,
                    "account_id": o.account_id,
                    "amount_vnd": o.amount_vnd,
                    "description": f"kyso {o.package_code} {o.order_id}",
                    "txn_ref": secrets.token_hex(10),
                    "status": "pending",
                    "created_at": now(),
                    "correlation_id": event.correlationid,
                    "order_event_id": event.id,
                    "outbox": [],
                }
            )
        except DuplicateKeyError:
            pass  # the payment for this order exists: the event was applied before

    async def get_for_order(self, account_id: str, order_id: str) -> dict[str, Any]:
        doc = await self.payments.find_one({"order_id": order_id})
        if doc is None:
            raise not_found("payment", "giao dịch thanh toán")
        if doc["account_id"] != account_id:
            raise forbidden()
        return self._view(doc)

    @staticmethod
    def _view(doc: dict[str, Any]) -> dict[str, Any]:
        return {
            "payment_id": doc["_id"],
            "order_id": doc["order_id"],
            "amount_vnd": doc["amount_vnd"],
            "status": doc["status"],
            "provider": PROVIDER,
        }

    async def checkout(self, account_id: str, payment_id: str, client_ip: str) -> dict[str, Any]:
        doc = await self.payments.find_one({"_id": payment_id})
        if doc is None:
            raise not_found("payment", "giao dịch thanh toán")
        if doc["account_id"] != account_id:
            raise forbidden()
        if doc["status"] == "failed":
            # A failed or cancelled attempt may be retried: a new gateway reference, the old one retired.
            retried = await self.payments.find_one_and_update(
                {"_id": payment_id, "status": "failed", "txn_ref": doc["txn_ref"]},
                {
                    "$set": {"status": "pending", "txn_ref": secrets.token_hex(10)},
                    "$push": {
                        "previous_attempts": {
                            "txn_ref": doc["txn_ref"],
                            "failed_at": doc.get("settled_at"),
                            "gateway_response_code": doc.get("gateway_response_code"),
                        }
                    },
                },
                return_document=ReturnDocument.AFTER,
            )
            doc = retried or await self.payments.find_one({"_id": payment_id}) or doc
        if doc["status"] != "pending":
            raise ApiError(409, "payment_not_pending", "This payment is already settled", "Giao dịch này đã được xử lý")
        params = {
            "vnp_Version": "2.1.0",
            "vnp_Command": "pay",
            "vnp_TmnCode": self.s.vnpay_tmn_code,
            "vnp_Amount": str(doc["amount_vnd"] * 100),
            "vnp_CurrCode": "VND",
            "vnp_TxnRef": doc["txn_ref"],
            "vnp_OrderInfo": doc["description"],
            "vnp_OrderType": "other",
            "vnp_Locale": "vn",
            "vnp_ReturnUrl": self.s.vnpay_return_url,
            "vnp_IpAddr": client_ip,
            "vnp_CreateDate": now().astimezone(VN).strftime("%Y%m%d%H%M%S"),
        }
        return {
            "payment_id": payment_id,
            "payment_url": vnpay.signed_url(self.s.vnpay_pay_url, params, self.secret),
            "amount_vnd": doc["amount_vnd"],
        }

    async def handle_ipn(self, params: dict[str, str]) -> dict[str, str]:
        """The gateway's server-to-server notification. Answers in VNPay's RspCode vocabulary; idempotent."""
        if not vnpay.verify(params, self.secret):
            return {"RspCode": "97", "Message": "Invalid Checksum"}
        doc = await self.payments.find_one({"txn_ref": params.get("vnp_TxnRef", "")})
        if doc is None:
            return {"RspCode": "01", "Message": "Order not found"}
        if params.get("vnp_Amount") != str(doc["amount_vnd"] * 100):
            return {"RspCode": "04", "Message": "Invalid amount"}
        if doc["status"] != "pending":
            return {"RspCode": "02", "Message": "Order already confirmed"}
        t = now()
        success = params.get("vnp_ResponseCode") == "00" and params.get("vnp_TransactionStatus") == "00"
        txn_no = params.get("vnp_TransactionNo") or "0"
        common = {
            "payment_id": doc["_id"],
            "order_id": doc["order_id"],
            "account_id": doc["account_id"],
            "amount_vnd": doc["amount_vnd"],
        }
        event: CloudEvent[Any]
        if success:
            event = self.rt.event(
                PaymentConfirmed(**common, provider=PROVIDER, provider_transaction_no=txn_no, confirmed_at=t),
                correlation_id=doc.get("correlation_id"),
            )
            new_status = "confirmed"
        else:
            code = params.get("vnp_ResponseCode") or "99"
            event = self.rt.event(
                PaymentFailed(**common, reason_code=code, reason=f"gateway response {code}", failed_at=t),
                correlation_id=doc.get("correlation_id"),
            )
            new_status = "failed"
        res = await self.payments.update_one(
            {"_id": doc["_id"], "status": "pending"},
            with_events(
                {
                    "$set": {
                        "status": new_status,
                        "settled_at": t,
                        "provider_transaction_no": txn_no,
                        "gateway_response_code": params.get("vnp_ResponseCode"),
                    }
                },
                [event],
            ),
        )
        if res.modified_count != 1:
            return {"RspCode": "02", "Message": "Order already confirmed"}
        self.rt.relay.nudge("payments", doc["_id"])
        return {"RspCode": "00", "Message": "Confirm Success"}

    def sandbox_gateway_notification(self, payment_url_query: dict[str, str], outcome: str) -> dict[str, str]:
        """What the sandbox gateway would send back for a checkout it was given (development only)."""
        if not vnpay.verify(payment_url_query, self.secret):
            raise ApiError(
                400,
                "invalid_checkout_signature",
                "The checkout URL signature is invalid",
                "Chữ ký URL thanh toán không hợp lệ",
            )
        code = "00" if outcome == "success" else "24"  # 24 = customer cancelled
        ipn = {
            "vnp_TmnCode": payment_url_query["vnp_TmnCode"],
            "vnp_Amount": payment_url_query["vnp_Amount"],
            "vnp_BankCode": "NCB",
            "vnp_OrderInfo": payment_url_query["vnp_OrderInfo"],
            "vnp_TransactionNo": str(secrets.randbelow(10**8)),
            "vnp_ResponseCode": code,
            "vnp_TransactionStatus": "00" if code == "00" else "02",
            "vnp_TxnRef": payment_url_query["vnp_TxnRef"],
            "vnp_PayDate": now().astimezone(VN).strftime("%Y%m%d%H%M%S"),
        }
        ipn["vnp_SecureHash"] = vnpay.sign(ipn, self.secret)
        return ipn
