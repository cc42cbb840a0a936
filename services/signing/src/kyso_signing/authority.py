"""The issuing CA and the provider's contract seal: created once, stored encrypted, cached in memory."""

from __future__ import annotations

from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from kyso_kit.clock import Clock
from kyso_kit.crypto import SecretBox
from kyso_kit.store import Aggregates, DuplicateKey

from . import pki


class Authority:
    """Loads (or on the very first start creates) the CA and seal keys; concurrent starts agree on one."""

    def __init__(self, coll: Aggregates, box: SecretBox, ca_common_name: str, clock: Clock) -> None:
        self._coll = coll
        self._clock = clock
        self._box = box
        self._cn = ca_common_name
        self.ca_key: ec.EllipticCurvePrivateKey | None = None
        self.ca_cert: x509.Certificate | None = None
        self.seal_key: ec.EllipticCurvePrivateKey | None = None

    async def load(self) -> None:
        ca = await self._get_or_create("issuing-ca", self._new_ca)
        self.ca_key = pki.key_from_der(self._box.open(ca["key"], aad="authority:issuing-ca"))
        self.ca_cert = x509.load_pem_x509_certificate(ca["certificate_pem"].encode())
        seal = await self._get_or_create("provider-seal", self._new_seal)
        self.seal_key = pki.key_from_der(self._box.open(seal["key"], aad="authority:provider-seal"))

    def _new_ca(self) -> dict[str, Any]:
        key = pki.new_key()
        cert = pki.self_signed_ca(key, self._cn, self._clock.now())
        return {
            "key": self._box.seal(pki.key_to_der(key), aad="authority:issuing-ca"),
            "certificate_pem": pki.pem(cert),
        }

    def _new_seal(self) -> dict[str, Any]:
        key = pki.new_key()
        public = (
            key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )
        return {"key": self._box.seal(pki.key_to_der(key), aad="authority:provider-seal"), "public_key_pem": public}

    async def _get_or_create(self, name: str, make: Any) -> dict[str, Any]:
        doc = await self._coll.get(name)
        if doc is None:
            try:
                await self._coll.insert({"_id": name, "created_at": self._clock.now(), **make()})
            except DuplicateKey:
                pass  # another instance created it first; use theirs
            doc = await self._coll.get(name)
        assert doc is not None
        return dict(doc)

    @property
    def ca_pem(self) -> str:
        assert self.ca_cert is not None
        return pki.pem(self.ca_cert)

    @property
    def seal_public_pem(self) -> str:
        assert self.seal_key is not None
        return (
            self.seal_key.public_key()
            .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
            .decode()
        )
