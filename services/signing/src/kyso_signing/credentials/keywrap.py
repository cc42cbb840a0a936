"""Subscriber keys at rest: usable only with the master key *and* the subscriber's PIN.

Before activation a key is sealed under the master key alone. Activation re-seals it under a key
derived from the master key and an argon2id stretch of the PIN, so a database copy plus the master
key still needs the PIN, and the PIN alone is worthless without the master key.
"""

from __future__ import annotations

import base64
import os

from argon2.low_level import Type, hash_secret_raw
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

TRIVIAL_PINS = {"123456", "654321", "12345678", "87654321", "123123", "112233", "121212"}


def pin_problem(pin: str) -> str | None:
    if not (pin.isascii() and pin.isdigit() and 6 <= len(pin) <= 8):
        return "The PIN must be 6 to 8 digits"
    if len(set(pin)) == 1 or pin in TRIVIAL_PINS or pin in "01234567890" or pin in "09876543210":
        return "The PIN is too easy to guess"
    return None


def _kek(master_key: bytes, pin: str, salt: bytes, owner: str) -> bytes:
    stretched = hash_secret_raw(
        pin.encode(), salt, time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, type=Type.ID
    )
    return HKDF(hashes.SHA256(), 32, salt=salt, info=f"kyso-subscriber-key:{owner}".encode()).derive(
        master_key + stretched
    )


def seal_with_pin(master_key: bytes, pin: str, owner: str, plaintext: bytes) -> dict[str, str]:
    salt, nonce = os.urandom(16), os.urandom(12)
    ct = AESGCM(_kek(master_key, pin, salt, owner)).encrypt(nonce, plaintext, owner.encode())
    return {
        "alg": "argon2id+hkdf-sha256+aes-256-gcm",
        "salt": base64.b64encode(salt).decode(),
        "nonce": base64.b64encode(nonce).decode(),
        "ct": base64.b64encode(ct).decode(),
    }


def open_with_pin(master_key: bytes, pin: str, owner: str, sealed: dict[str, str]) -> bytes:
    """Raises cryptography.exceptions.InvalidTag for a wrong PIN."""
    salt = base64.b64decode(sealed["salt"])
    return AESGCM(_kek(master_key, pin, salt, owner)).decrypt(
        base64.b64decode(sealed["nonce"]), base64.b64decode(sealed["ct"]), owner.encode()
    )
