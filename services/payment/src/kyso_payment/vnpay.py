"""VNPay-style signed parameters: HMAC-SHA512 over the sorted, URL-encoded query (vnp_SecureHash).

Follows VNPay's published scheme (v2.1.0): every ``vnp_*`` field except the hash itself, sorted by
name, ``quote_plus``-encoded, joined with ``&``; amounts are in đồng × 100.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import quote_plus, urlencode

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
    return bool(given) and hmac.compare_digest(given.lower(), sign(params, secret))


def signed_url(base: str, params: Mapping[str, str], secret: str) -> str:
    return f"{base}?{urlencode(sorted(params.items()))}&vnp_SecureHash={sign(params, secret)}"
