"""VNPay-style signed parameters: HMAC-SHA512 over the sorted, URL-encoded query (vnp_SecureHash).

Follows VNPay's published scheme (v2.1.0): every ``vnp_*`` field except the hash itself, sorted by
name, ``quote_plus``-encoded, joined with ``&``; amounts are in đồng × 100.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import quote_plus, urlencode

from kyso_kit.crypto import same_text

HASH_FIELDS_EXCLUDED = {"vnp_SecureHash", "vnp_SecureHashType"}


def signing_data(params: Mapping[str, str]) -> str:
    items = sorted(
        (k, v) for k, v in params.items() if k.startswith("vnp_") and k not in HASH_FIELDS_EXCLUDED and v != ""
    )
    return "&".join(f"{k}={quote_plus(str(v))}" for k, v in items)


def sign(params: Mapping[str, str], secret: str) -> str:
    return hmac.new(secret.encode(), signing_data(params).encode(), hashlib.sha512).hexdigest()


def verify(params: Mapping[str, str], secret: str) -> bool:
    given = params.get("vnp_SecureHash", "")
    return bool(given) and same_text(given.lower(), sign(params, secret))


def signed_url(base: str, params: Mapping[str, str], secret: str) -> str:
    return f"{base}?{urlencode(sorted(params.items()))}&vnp_SecureHash={sign(params, secret)}"


# The merchant API (``POST /merchant_webapi/api/transaction``, JSON): querydr and refund are signed over
# a fixed list of fields joined with "|" (not the sorted query string of the payment URL).
QUERYDR_FIELDS = (
    "vnp_RequestId", "vnp_Version", "vnp_Command", "vnp_TmnCode", "vnp_TxnRef", "vnp_TransactionDate",
    "vnp_CreateDate", "vnp_IpAddr", "vnp_OrderInfo",
)  # fmt: skip
REFUND_FIELDS = (
    "vnp_RequestId", "vnp_Version", "vnp_Command", "vnp_TmnCode", "vnp_TransactionType", "vnp_TxnRef",
    "vnp_Amount", "vnp_TransactionNo", "vnp_TransactionDate", "vnp_CreateBy", "vnp_CreateDate", "vnp_IpAddr",
    "vnp_OrderInfo",
)  # fmt: skip
QUERYDR_RESPONSE_FIELDS = (
    "vnp_ResponseId", "vnp_Command", "vnp_ResponseCode", "vnp_Message", "vnp_TmnCode", "vnp_TxnRef",
    "vnp_Amount", "vnp_BankCode", "vnp_PayDate", "vnp_TransactionNo", "vnp_TransactionType",
    "vnp_TransactionStatus", "vnp_OrderInfo", "vnp_PromotionCode", "vnp_PromotionAmount",
)  # fmt: skip
REFUND_RESPONSE_FIELDS = (
    "vnp_ResponseId", "vnp_Command", "vnp_ResponseCode", "vnp_Message", "vnp_TmnCode", "vnp_TxnRef",
    "vnp_Amount", "vnp_BankCode", "vnp_PayDate", "vnp_TransactionNo", "vnp_TransactionType",
    "vnp_TransactionStatus", "vnp_OrderInfo",
)  # fmt: skip
FIELDS = {
    ("querydr", False): QUERYDR_FIELDS,
    ("refund", False): REFUND_FIELDS,
    ("querydr", True): QUERYDR_RESPONSE_FIELDS,
    ("refund", True): REFUND_RESPONSE_FIELDS,
}


def pipe_data(body: Mapping[str, object], fields: tuple[str, ...]) -> str:
    return "|".join("" if body.get(f) is None else str(body.get(f)) for f in fields)


def sign_api(body: Mapping[str, object], secret: str, *, response: bool = False) -> str:
    """``vnp_SecureHash`` of a querydr/refund request (or, ``response``, of the gateway's answer)."""
    fields = FIELDS[(str(body.get("vnp_Command")), response)]
    return hmac.new(secret.encode(), pipe_data(body, fields).encode(), hashlib.sha512).hexdigest()


def verify_api(body: Mapping[str, object], secret: str, *, response: bool = False) -> bool:
    given = str(body.get("vnp_SecureHash") or "")
    if (str(body.get("vnp_Command")), response) not in FIELDS or not given:
        return False
    return same_text(given.lower(), sign_api(body, secret, response=response))
