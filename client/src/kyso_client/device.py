"""The SmartOTP app's side of the soft token: the seed lives only on the device, encrypted under the
SmartOTP PIN, and the PIN never leaves the device.

Storage design (what an attacker who copies the file faces):

* key = argon2id(PIN, salt) — slow per guess;
* the seed is encrypted with AES-256-CTR — no authentication tag, so a wrong PIN does not announce
  itself: it decrypts to a different, plausible seed whose codes the server rejects and counts
  towards the token's lock-out (5 tries). Offline guessing therefore cannot confirm a PIN;
* a one-byte check value catches a mistyped PIN on the device 255 times in 256 while leaving an
  offline attacker ~3,900 equally plausible 6-digit PINs to try online, against a limit of 5.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import json
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

import pyotp
from argon2.low_level import Type, hash_secret_raw
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from kyso_contracts import otp_algorithms
from kyso_contracts.transactions import DocumentsTransaction, PaymentTransaction

COMMON_PINS = {"123123", "112233", "121212", "123321", "159753", "147258", "258369", "111222", "696969", "520520"}


class WeakPin(ValueError):
    pass


class WrongPin(ValueError):
    pass


def pin_problem(pin: str) -> str | None:
    """At least 6 digits; not one digit repeated, not a run up or down, not a well-known PIN."""
    if not (pin.isascii() and pin.isdigit()):
        return "The SmartOTP PIN must be digits only"
    if len(pin) < 6:
        return "The SmartOTP PIN must have at least 6 digits"
    if len(pin) > 12:
        return "The SmartOTP PIN must have at most 12 digits"
    steps = {(int(b) - int(a)) % 10 for a, b in itertools.pairwise(pin)}
    if len(set(pin)) == 1 or steps in ({1}, {9}) or pin in COMMON_PINS or pin[: len(pin) // 2] * 2 == pin:
        return "The SmartOTP PIN is too easy to guess"
    return None


def _keys(pin: str, salt: bytes) -> tuple[bytes, int]:
    raw = hash_secret_raw(
        pin.encode(), salt, time_cost=3, memory_cost=64 * 1024, parallelism=1, hash_len=32, type=Type.ID
    )
    check = hmac.new(raw, b"kyso-smartotp-pin-check", hashlib.sha256).digest()[0]
    return raw, check


def _ctr(key: bytes, nonce: bytes, data: bytes) -> bytes:
    c = Cipher(algorithms.AES(key), modes.CTR(nonce)).encryptor()
    return c.update(data) + c.finalize()


def _b64(b: bytes) -> str:
    return base64.b64encode(b).decode()


@dataclass
class SoftToken:
    token_id: str
    label: str
    algorithm: str
    digits: int
    period: int
    transaction_suite: str
    salt: str
    nonce: str
    sealed_seed: str
    pin_check: int
    clock_offset: float = 0.0  # server time minus device time, learned by time sync

    # ------------------------------------------------------------------ creation and storage

    @classmethod
    def from_activation(cls, activation: dict[str, Any], pin: str, confirm: str) -> SoftToken:
        if pin != confirm:
            raise WeakPin("The two PINs differ")
        problem = pin_problem(pin)
        if problem:
            raise WeakPin(problem)
        uri = urlsplit(activation["otpauth_uri"])
        q = {k: v[0] for k, v in parse_qs(uri.query).items()}
        secret = q["secret"] + "=" * (-len(q["secret"]) % 8)
        seed = base64.b32decode(secret)
        tok = cls(
            token_id=activation["token_id"],
            label=unquote(uri.path.lstrip("/")),
            algorithm=q.get("algorithm", "SHA1"),
            digits=int(q.get("digits", 6)),
            period=int(q.get("period", 30)),
            transaction_suite=activation["transaction_suite"],
            salt="",
            nonce="",
            sealed_seed="",
            pin_check=0,
        )
        tok._seal(seed, pin)
        if "server_time" in activation:
            tok.sync_time(float(activation["server_time"]))
        return tok

    def _seal(self, seed: bytes, pin: str) -> None:
        salt, nonce = os.urandom(16), os.urandom(16)
        key, check = _keys(pin, salt)
        self.salt, self.nonce, self.pin_check = _b64(salt), _b64(nonce), check
        self.sealed_seed = _b64(_ctr(key, nonce, seed))

    def _seed(self, pin: str) -> bytes:
        key, check = _keys(pin, base64.b64decode(self.salt))
        if not hmac.compare_digest(bytes([check]), bytes([self.pin_check])):
            raise WrongPin("Wrong SmartOTP PIN")
        return _ctr(key, base64.b64decode(self.nonce), base64.b64decode(self.sealed_seed))

    def save(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(self), indent=2))
        tmp.chmod(0o600)
        tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> SoftToken:
        return cls(**json.loads(path.read_text()))

    # ------------------------------------------------------------------ what the user does

    def server_now(self, device_time: float | None = None) -> float:
        return (time.time() if device_time is None else device_time) + self.clock_offset

    def code(self, pin: str, device_time: float | None = None) -> str:
        """'Get OTP without logging in': PIN → the current code."""
        step = otp_algorithms.time_step(self.server_now(device_time), self.period)
        secret = base64.b32encode(self._seed(pin)).decode().rstrip("=")
        digest = {"SHA1": hashlib.sha1, "SHA256": hashlib.sha256, "SHA512": hashlib.sha512}[self.algorithm]
        return str(pyotp.HOTP(secret, digits=self.digits, digest=digest).at(step))

    def transaction_code(
        self, pin: str, transaction: PaymentTransaction | DocumentsTransaction, device_time: float | None = None
    ) -> str:
        """A code bound to this transaction (filled inline in an in-app transaction)."""
        step = otp_algorithms.time_step(self.server_now(device_time), self.period)
        return otp_algorithms.ocra(self.transaction_suite, self._seed(pin), transaction.digest(), time_steps=step)

    def change_pin(self, old: str, new: str, confirm: str) -> None:
        """Old → new → confirm; re-encrypts the seed locally. The PIN is never sent anywhere."""
        seed = self._seed(old)
        if new != confirm:
            raise WeakPin("The two new PINs differ")
        problem = pin_problem(new)
        if problem:
            raise WeakPin(problem)
        self._seal(seed, new)

    def sync_time(self, server_time: float, device_time: float | None = None) -> float:
        """Fix "invalid OTP" caused by a wrong device clock: remember how far the device is off."""
        self.clock_offset = server_time - (time.time() if device_time is None else device_time)
        return self.clock_offset
