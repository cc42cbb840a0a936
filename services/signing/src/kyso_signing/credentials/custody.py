"""Key custody: the one place a subscriber's private key is sealed, opened, and re-sealed, and the one
holder of the master key's raw bytes.

A key lives in two stages on its certificate record (``key.stage``):

- ``master``: from issuance until activation, sealed under the master key alone (``SecretBox``, bound
  to ``subscriber:<certificate id>``): the CA signs the certificate over it and the subscriber's proof
  of possession is made with it at activation;
- ``pin``: from activation on, sealed under the master key *and* an argon2id stretch of the PIN
  (``keywrap``), so a database copy plus the master key still needs the PIN.

The PIN try is counted on the record that says the certificate is active, *before* the argon2id work
(a compare-and-set on ``pin_failures``): five wrong in a row lock the credential, with no reset by time;
a right one clears the count. A batch (a signing request or a CSC authorisation) unseals the key once.

The ``SecretBox`` over the same master key also seals the CA's keys (``pki.authority``), relying parties'
webhook secrets (``remote.clients``) and CSC SADs (``remote.requests``): bootstrap hands them the box,
never the key's bytes.
"""

from __future__ import annotations

import base64

from cryptography.exceptions import InvalidTag

from kyso_kit.crypto import SecretBox, off_loop
from kyso_kit.errors import Conflict, Forbidden, Rejected, not_found
from kyso_kit.store import Doc, Store
from kyso_signing.credentials import keywrap
from kyso_signing.credentials.domain import CertificateStatus as S
from kyso_signing.credentials.errors import not_in_force
from kyso_signing.credentials.records import certificates
from kyso_signing.pki import keys

PIN_MAX_FAILURES = 5
_RACES = 8


def pin_locked() -> Forbidden:
    return Forbidden(
        "pin_locked",
        "The signing PIN is locked after 5 wrong tries; unlock it with your password and an SMS code",
        "Mã PIN ký số đã bị khóa sau 5 lần nhập sai; mở khóa bằng mật khẩu và mã OTP SMS",
    )


def _owner(certificate_id: str) -> str:
    return f"subscriber:{certificate_id}"


class KeyCustody:
    def __init__(self, store: Store, master_key_b64: str) -> None:
        self.certs = certificates(store)
        self._master_key = base64.b64decode(master_key_b64)
        self._box = SecretBox(master_key_b64)

    # ------------------------------------------------------------------ stage "master": issuance to activation

    def seal_new(self, certificate_id: str, key: keys.PrivateKey) -> str:
        """A freshly drawn key, sealed under the master key alone (stored with the serial's reservation)."""
        return self._box.seal(keys.key_to_der(key), aad=_owner(certificate_id))

    def open_new(self, cert: Doc) -> keys.PrivateKey:
        """The key of a certificate not yet activated (stage ``master``): to issue over it."""
        return keys.key_from_der(self._box.open(cert["key"]["sealed"], aad=_owner(cert["_id"])), keep=False)

    async def seal_with_pin(self, cert: Doc, pin: str) -> tuple[keys.PrivateKey, dict[str, str]]:
        """Activation: the key (for the proof of possession) and its new seal under the master key and ``pin``."""
        owner = _owner(cert["_id"])
        der = self._box.open(cert["key"]["sealed"], aad=owner)
        sealed = await off_loop(keywrap.seal_with_pin, self._master_key, pin, owner, der)
        return keys.key_from_der(der, keep=False), sealed

    # ------------------------------------------------------------------ stage "pin": signing and unlocking

    async def count_try(self, read: Doc) -> int:
        """Count one PIN try before any hashing; the number of failures *including* this try. ``read`` is
        the certificate as the caller just read it; it is read again only when another try got in first."""
        cert_id, cert = read["_id"], read
        for _ in range(_RACES):
            failures = int(cert.get("pin_failures", 0))
            if failures >= PIN_MAX_FAILURES:
                raise pin_locked()
            guard = {"_id": cert_id, "pin_failures": failures} if "pin_failures" in cert else {
                "_id": cert_id, "pin_failures": {"$exists": False}
            }  # fmt: skip
            if await self.certs.update(guard, {"$set": {"pin_failures": failures + 1}}):
                return failures + 1
            again = await self.certs.get(cert_id)
            if again is None:
                raise not_found("credential", "chứng thư số")
            cert = again
        raise Conflict("busy", "Too many tries at once; try again", "Quá nhiều yêu cầu cùng lúc, vui lòng thử lại")

    async def unseal(self, cert: Doc, pin: str) -> keys.PrivateKey:
        """The subscriber's key, if ``pin`` is right (counted, locked after five wrong in a row); once per batch."""
        if cert["status"] != S.ACTIVE or cert.get("key", {}).get("stage") != "pin":
            raise not_in_force()
        tries = await self.count_try(cert)
        try:
            der = await off_loop(
                keywrap.open_with_pin, self._master_key, pin, _owner(cert["_id"]), cert["key"]["sealed"]
            )
        except InvalidTag:
            left = PIN_MAX_FAILURES - tries
            if left <= 0:
                raise pin_locked() from None
            raise Rejected(
                "wrong_pin",
                f"Wrong signing PIN; {left} tries left before it locks",
                f"Sai mã PIN ký số; còn {left} lần thử trước khi bị khóa",
            ) from None
        await self.certs.update({"_id": cert["_id"], "pin_failures": tries}, {"$set": {"pin_failures": 0}})
        return keys.key_from_der(der, keep=False)

    async def reseal(self, cert: Doc, current_pin: str, new_pin: str) -> dict[str, str]:
        """Unlocking: the key sealed under ``new_pin``, if ``current_pin`` opens it (not counted: the caller
        used up a fresh SMS proof for this try)."""
        owner = _owner(cert["_id"])
        try:
            der = await off_loop(keywrap.open_with_pin, self._master_key, current_pin, owner, cert["key"]["sealed"])
        except InvalidTag:
            raise Rejected("wrong_pin", "That is not the signing PIN", "Mã PIN ký số không đúng") from None
        return await off_loop(keywrap.seal_with_pin, self._master_key, new_pin, owner, der)
