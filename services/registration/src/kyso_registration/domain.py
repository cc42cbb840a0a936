"""Registration rules with no I/O: the package catalogue, order status, password policy, VNeID assertions."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kyso_contracts.vneid import canonical_identity


@dataclass(frozen=True)
class Package:
    code: str
    name_vi: str
    name_en: str
    validity_years: int
    price_vnd: int


# Decree 23/2025: a subscriber certificate is valid for at most three years.
PACKAGES: dict[str, Package] = {
    p.code: p
    for p in (
        Package("PERSONAL_1Y", "Chứng thư số cá nhân 1 năm", "Personal certificate, 1 year", 1, 800_000),
        Package("PERSONAL_2Y", "Chứng thư số cá nhân 2 năm", "Personal certificate, 2 years", 2, 1_400_000),
        Package("PERSONAL_3Y", "Chứng thư số cá nhân 3 năm", "Personal certificate, 3 years", 3, 1_900_000),
    )
}

# Order status only moves forward; events from different topics may arrive in any order.
STATUS_RANK = {
    "awaiting_payment": 10,
    "payment_failed": 15,
    "paid": 20,
    "contract_signed": 30,
    "pending_activation": 40,
    "active": 50,
}
RANK_STATUS = {v: k for k, v in STATUS_RANK.items()}
STATUS_VI = {
    "awaiting_payment": "Chờ thanh toán",
    "payment_failed": "Thanh toán không thành công",
    "paid": "Đã thanh toán",
    "contract_signed": "Đã ký hợp đồng",
    "pending_activation": "Chờ người dùng kích hoạt",
    "active": "Đang hoạt động",
}


def password_problems(password: str, phone: str, email: str) -> list[str]:
    """NIST SP 800-63B style: length over composition rules, and no obvious values."""
    problems = []
    if len(password) < 10:
        problems.append("at least 10 characters")
    if len(password) > 128:
        problems.append("at most 128 characters")
    lowered = password.lower()
    if lowered in {"password123", "1234567890", "qwertyuiop", "matkhau123", "0123456789"} or len(set(password)) < 4:
        problems.append("too easy to guess")
    local_part = email.split("@")[0].lower()
    if phone.lstrip("+") in password or phone[3:] in password or (len(local_part) >= 4 and local_part in lowered):
        problems.append("must not contain the phone number or email")
    return problems


class VneidVerifier:
    def __init__(self, public_pem: str) -> None:
        key = serialization.load_pem_public_key(public_pem.encode())
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ValueError("VNeID key must be an EC public key")
        self._key = key

    def valid(self, identity: dict[str, Any], signature_b64: str) -> bool:
        try:
            sig = base64.b64decode(signature_b64, validate=True)
            self._key.verify(sig, canonical_identity(identity), ec.ECDSA(hashes.SHA256()))
        except (ValueError, InvalidSignature):
            return False
        return True
