"""Well-known development secrets. Used only when ``KYSO_PROFILE=development`` and nothing is configured;
production refuses to start without real values. Everything here is public: never use it for real."""

from __future__ import annotations

import base64
import hashlib

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec


def dev_master_key(purpose: str) -> str:
    """A deterministic, publicly known 32-byte key per purpose."""
    return base64.b64encode(hashlib.sha256(f"kyso-development-only:{purpose}".encode()).digest()).decode()


def dev_ec_private_key(purpose: str) -> ec.EllipticCurvePrivateKey:
    """A deterministic, publicly known P-256 key per purpose (e.g. the VNeID sandbox signer)."""
    scalar = int.from_bytes(hashlib.sha256(f"kyso-development-only-ec:{purpose}".encode()).digest(), "big")
    return ec.derive_private_key(scalar, ec.SECP256R1())


def dev_ec_private_pem(purpose: str) -> str:
    return (
        dev_ec_private_key(purpose)
        .private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        .decode()
    )


def dev_ec_public_pem(purpose: str) -> str:
    return (
        dev_ec_private_key(purpose)
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
