"""A stand-in for the VNeID app: builds and signs a level-2 identity hand-over.

The development signer is derived the same way as the development VNeID public key the registration
service trusts when no real key is configured (public, deterministic: for local runs only).
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from kyso_contracts.vneid import canonical_identity


def sandbox_key() -> ec.EllipticCurvePrivateKey:
    scalar = int.from_bytes(hashlib.sha256(b"kyso-development-only-ec:vneid").digest(), "big")
    return ec.derive_private_key(scalar, ec.SECP256R1())


def identity(citizen_id: str, full_name: str, date_of_birth: str, eid_level: int = 2) -> dict[str, Any]:
    return {
        "citizen_id": citizen_id,
        "full_name": full_name,
        "date_of_birth": date_of_birth,
        "eid_level": eid_level,
        "certificate_type": "PERSONAL",
        "issued_at": datetime.now(UTC).isoformat(),
        "nonce": secrets.token_urlsafe(18),
    }


def sign(ident: dict[str, Any], key: ec.EllipticCurvePrivateKey | None = None) -> str:
    key = key or sandbox_key()
    return base64.b64encode(key.sign(canonical_identity(ident), ec.ECDSA(hashes.SHA256()))).decode()


def random_citizen_id() -> str:
    return "0" + "".join(str(secrets.randbelow(10)) for _ in range(11))


def random_phone() -> str:
    return "+849" + "".join(str(secrets.randbelow(10)) for _ in range(8))
