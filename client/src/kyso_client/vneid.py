"""A stand-in for the VNeID app: builds and signs a level-2 identity hand-over.

The development signer is derived the same way as the development VNeID public key the registration
service trusts when no real key is configured (public, deterministic: for local runs only).
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from datetime import UTC, datetime
from typing import Any

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from joserfc import jws
from joserfc.jwk import ECKey

from kyso_contracts.vneid import JWS_ALGORITHM, STATUS_QUERY


def sandbox_key() -> ec.EllipticCurvePrivateKey:
    scalar = int.from_bytes(hashlib.sha256(b"kyso-development-only-ec:vneid").digest(), "big")
    return ec.derive_private_key(scalar, ec.SECP256R1())


def identity(
    citizen_id: str,
    full_name: str,
    date_of_birth: str,
    eid_level: int = 2,
    *,
    province: str | None = None,
    locality: str | None = None,
) -> dict[str, Any]:
    residence = {k: v for k, v in {"province": province, "locality": locality}.items() if v}
    return {
        "citizen_id": citizen_id,
        "full_name": full_name,
        "date_of_birth": date_of_birth,
        "eid_level": eid_level,
        **residence,
        "certificate_type": "PERSONAL",
        "issued_at": datetime.now(UTC).isoformat(),
        "nonce": secrets.token_urlsafe(18),
    }


def status_query(citizen_id: str) -> dict[str, Any]:
    """What VNeID signs to ask for a citizen's certificate status."""
    return {
        "query": STATUS_QUERY,
        "citizen_id": citizen_id,
        "issued_at": datetime.now(UTC).isoformat(),
        "nonce": secrets.token_urlsafe(18),
    }


def sign(ident: dict[str, Any], key: ec.EllipticCurvePrivateKey | None = None) -> str:
    """The assertion VNeID hands over: a compact JWS (ES256) whose payload is the identity."""
    pem = (key or sandbox_key()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    payload = json.dumps(ident, ensure_ascii=False, separators=(",", ":")).encode()
    return jws.serialize_compact({"alg": JWS_ALGORITHM, "typ": "JWT"}, payload, ECKey.import_key(pem))


def tampered(assertion: str, **changes: Any) -> str:
    """The same signature over a changed identity (for tests of forgery)."""
    header, payload, signature = assertion.split(".")
    ident = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    forged = base64.urlsafe_b64encode(json.dumps({**ident, **changes}).encode()).decode().rstrip("=")
    return f"{header}.{forged}.{signature}"


def random_citizen_id() -> str:
    return "0" + "".join(str(secrets.randbelow(10)) for _ in range(11))


def random_phone() -> str:
    return "+849" + "".join(str(secrets.randbelow(10)) for _ in range(8))
