"""Secrets at rest: argon2id for PINs and passwords, AES-256-GCM envelopes for seeds and keys."""

from __future__ import annotations

import asyncio
import base64
import hmac
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

# OWASP's argon2id baseline (m=19 MiB, t=2, p=1): ~20–40 ms per check on one core.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1, hash_len=32, salt_len=16)


P = ParamSpec("P")
T = TypeVar("T")

# CPU-heavy work (argon2id, key generation, signatures) runs here, not on the event loop: argon2-cffi
# and OpenSSL release the GIL, so this uses every core while HTTP and consumers stay responsive.
_POOL = ThreadPoolExecutor(max_workers=os.cpu_count() or 2, thread_name_prefix="kyso-cpu")
_queued = 0


async def off_loop(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
    """Run ``fn`` in the bounded CPU pool; throttle *before* calling this, never after."""
    global _queued
    _queued += 1
    try:
        return await asyncio.get_running_loop().run_in_executor(_POOL, lambda: fn(*args, **kwargs))
    finally:
        _queued -= 1


def cpu_pool_queue() -> int:
    """Calls waiting for or running in the CPU pool (a metric)."""
    return _queued


def same_text(given: str, expected: str) -> bool:
    """Constant-time equality of two texts. ``hmac.compare_digest`` refuses a ``str`` with any non-ASCII
    character (TypeError) — and a forged signature may well carry one — so both are compared as UTF-8."""
    return hmac.compare_digest(given.encode("utf-8", "surrogatepass"), expected.encode("utf-8", "surrogatepass"))


def hash_secret(secret: str) -> str:
    return _hasher.hash(secret)


def verify_secret(stored_hash: str, secret: str) -> bool:
    try:
        return _hasher.verify(stored_hash, secret)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


class SecretBox:
    """AES-256-GCM under a master key; the associated data binds a ciphertext to its owner record."""

    def __init__(self, master_key_b64: str) -> None:
        key = base64.b64decode(master_key_b64)
        if len(key) != 32:
            raise ValueError("master key must be 32 bytes, base64-encoded")
        self._aead = AESGCM(key)

    def seal(self, plaintext: bytes, aad: str) -> str:
        nonce = os.urandom(12)
        return base64.b64encode(nonce + self._aead.encrypt(nonce, plaintext, aad.encode())).decode()

    def open(self, sealed: str, aad: str) -> bytes:
        raw = base64.b64decode(sealed)
        return self._aead.decrypt(raw[:12], raw[12:], aad.encode())
