"""The CA hierarchy and the provider's contract seal, loaded once and kept in memory.

- The **root CA** key signs only the issuing CA certificate and the root's own CRL (the ARL).
- The **issuing CA** signs subscriber certificates, the CRL and the OCSP responder certificate.
- The **OCSP responder** is a delegated, short-lived certificate, renewed automatically when a third of
  its life is left (every instance picks up the newest one on its next tick).
- The provider's **seal** and **timestamp authority** certificates are issued by the issuing CA on the
  first start. A certificate made under an older profile (``PROFILE``) is certified again for the same
  key on the next start; the previous certificates stay known, so the OCSP responder still answers for
  the documents they signed.

In production the root and issuing CA come from configuration (sealed under the master key; the
settings refuse to start without them). In development they are created on the first start and
stored sealed; concurrent first starts agree on one hierarchy (the first insert wins).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

from cryptography import x509

from kyso_kit.clock import Clock
from kyso_kit.crypto import SecretBox
from kyso_kit.store import Aggregates, DuplicateKey
from kyso_signing.pki import keys as pki
from kyso_signing.pki import profiles
from kyso_signing.pki.hierarchy import ISSUING, RESPONDER, ROOT, SEAL, TSA, Hierarchy, aad, new_hierarchy
from kyso_signing.pki.keys import PrivateKey

TSA_VALIDITY = timedelta(days=5 * 365)
SEAL_VALIDITY = timedelta(days=3 * 365)
# The version of the provider's own certificate profiles (seal, TSA, responder). 2: the seal names the
# legal person (organizationIdentifier, UID=MST:), signer EKUs, every certificate under the CA's policy,
# inclusive validity. Stored certificates of an older profile are certified again on start.
PROFILE = 2


class Authority:
    def __init__(self, coll: Aggregates, box: SecretBox, hierarchy: Hierarchy, clock: Clock) -> None:
        self._coll = coll
        self._clock = clock
        self._box = box
        self.h = hierarchy
        self.urls = hierarchy.urls
        self.policy_oid = hierarchy.policy_oid
        self._root_key: PrivateKey | None = None
        self._root: x509.Certificate | None = None
        self._ca_key: PrivateKey | None = None
        self._ca: x509.Certificate | None = None
        self._responder_key: PrivateKey | None = None
        self._responder: x509.Certificate | None = None
        self._responder_generation = -1
        self._seal_key: PrivateKey | None = None
        self._tsa_key: PrivateKey | None = None
        self._tsa: x509.Certificate | None = None
        self._seal: x509.Certificate | None = None
        self._previous: list[x509.Certificate] = []
        self.on_responder_change: list[Callable[[], None]] = []

    # ------------------------------------------------------------------ loading

    async def load(self) -> None:
        if self.h.root_key_sealed:
            assert self.h.root_certificate_pem and self.h.issuing_certificate_pem and self.h.issuing_key_sealed
            root = {"key": self.h.root_key_sealed, "certificate_pem": self.h.root_certificate_pem}
            issuing = {"key": self.h.issuing_key_sealed, "certificate_pem": self.h.issuing_certificate_pem}
        else:
            made: dict[str, dict[str, Any]] = {}

            def make(name: str) -> dict[str, Any]:
                if not made:
                    made.update(new_hierarchy(self._box, self.h, self._clock))
                return made[name]

            root = await self._get_or_create(ROOT, lambda: make(ROOT))
            issuing = await self._get_or_create(ISSUING, lambda: make(ISSUING))
        self._root_key = pki.key_from_der(self._box.open(root["key"], aad(ROOT)))
        self._root = pki.load_certificate(root["certificate_pem"])
        self._ca_key = pki.key_from_der(self._box.open(issuing["key"], aad(ISSUING)))
        self._ca = pki.load_certificate(issuing["certificate_pem"])
        if self._ca.issuer != self._root.subject:
            raise ValueError("the issuing CA certificate was not issued by the root CA")
        if pki.spki_sha256(self._ca.public_key()) != pki.spki_sha256(self._ca_key):  # type: ignore[arg-type]
            raise ValueError("the issuing CA key does not match its certificate")
        if self.policy_oid not in policies_of(self._ca):
            # every certificate the CA issues asserts CA_POLICY_OID: a CA without it breaks the policy tree
            raise ValueError(f"the issuing CA certificate does not assert CA_POLICY_OID {self.policy_oid}")
        seal = await self._get_or_create(SEAL, self._new_seal)
        self._seal_key = pki.key_from_der(self._box.open(seal["key"], aad(SEAL)))
        if "certificate_pem" not in seal:  # a seal key from before seals had certificates: certify it once
            pem = pki.pem(self._seal_certificate_for(self._seal_key))
            await self._coll.update(
                {"_id": SEAL, "certificate_pem": {"$exists": False}},
                {"$set": {"certificate_pem": pem, "profile": PROFILE}},
            )
            seal = await self._get_or_create(SEAL, self._new_seal)
        seal = await self._current_profile(SEAL, seal, lambda: self._seal_certificate_for(self.seal_key))
        self._seal = pki.load_certificate(seal["certificate_pem"])
        tsa = await self._get_or_create(TSA, self._new_tsa)
        self._tsa_key = pki.key_from_der(self._box.open(tsa["key"], aad(TSA)))
        tsa = await self._current_profile(TSA, tsa, lambda: self._tsa_certificate_for(self.tsa_key))
        self._tsa = pki.load_certificate(tsa["certificate_pem"])
        self._previous = [
            pki.load_certificate(pem) for doc in (seal, tsa) for pem in doc.get("previous_certificates", [])
        ]
        await self.refresh_responder()

    async def _current_profile(
        self, name: str, doc: dict[str, Any], fresh: Callable[[], x509.Certificate]
    ) -> dict[str, Any]:
        """``doc`` itself when its certificate is of the current profile; otherwise the same key certified
        again (``fresh()``), the old certificate kept in ``previous_certificates``. Concurrent starts agree:
        the first write wins and the others read it."""
        if doc.get("profile", 1) >= PROFILE:
            return doc
        await self._coll.update(
            {"_id": name, "certificate_pem": doc["certificate_pem"]},
            {
                "$set": {
                    "certificate_pem": pki.pem(fresh()),
                    "profile": PROFILE,
                    "previous_certificates": [*doc.get("previous_certificates", []), doc["certificate_pem"]],
                }
            },
        )
        return dict(await self._coll.get(name) or doc)

    def _tsa_certificate_for(self, key: PrivateKey) -> x509.Certificate:
        """Under the CA's certificate policy (the policy tree holds); its tokens name ``tsa_policy_oid``."""
        return profiles.timestamp_authority(
            key.public_key(),
            self.ca_key,
            self.ca_certificate,
            self.urls,
            self.policy_oid,
            self._clock.now(),
            TSA_VALIDITY,
        )

    def _new_tsa(self) -> dict[str, Any]:
        key = pki.new_key()
        return {
            "key": self._box.seal(pki.key_to_der(key), aad(TSA)),
            "certificate_pem": pki.pem(self._tsa_certificate_for(key)),
            "profile": PROFILE,
        }

    @property
    def tsa_policy_oid(self) -> str:
        """The TSA policy its tokens name (RFC 3161 ``TSTInfo.policy``): the provider's policy arc, sub-arc 2
        (timestamps). A TSA policy, not a certificate policy: no certificate asserts it."""
        return self.policy_oid.rsplit(".", 1)[0] + ".2" if self.policy_oid.count(".") >= 2 else self.policy_oid

    @property
    def tsa_key(self) -> PrivateKey:
        assert self._tsa_key is not None, "authority not loaded"
        return self._tsa_key

    @property
    def tsa_certificate(self) -> x509.Certificate:
        assert self._tsa is not None, "authority not loaded"
        return self._tsa

    def _seal_certificate_for(self, key: PrivateKey) -> x509.Certificate:
        return profiles.provider_seal(
            key.public_key(),
            self.h.organisation,
            self.h.tax_code,
            self.ca_key,
            self.ca_certificate,
            self.urls,
            self.policy_oid,
            self._clock.now(),
            SEAL_VALIDITY,
        )

    def _new_seal(self) -> dict[str, Any]:
        key = pki.new_key()
        return {
            "key": self._box.seal(pki.key_to_der(key), aad(SEAL)),
            "public_key_pem": pki.public_key_pem(key),
            "certificate_pem": pki.pem(self._seal_certificate_for(key)),
            "profile": PROFILE,
        }

    @property
    def seal_certificate(self) -> x509.Certificate:
        assert self._seal is not None, "authority not loaded"
        return self._seal

    def own_certificate(self, serial: int) -> x509.Certificate | None:
        """A certificate the issuing CA issued to the provider itself (seal, timestamp authority), the
        current ones or those they replaced (documents sealed or stamped before still name them)."""
        for cert in (self._seal, self._tsa, *self._previous):
            if cert is not None and cert.serial_number == serial:
                return cert
        return None

    async def _get_or_create(self, name: str, make: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        doc = await self._coll.get(name)
        if doc is None:
            try:
                await self._coll.insert({"_id": name, "created_at": self._clock.now(), **make()})
            except DuplicateKey:
                pass  # another instance created it first; use theirs
            doc = await self._coll.get(name)
        assert doc is not None
        return dict(doc)

    # ------------------------------------------------------------------ the OCSP responder certificate

    def _responder_doc(self, generation: int) -> dict[str, Any]:
        key = pki.new_key()
        cert = profiles.ocsp_responder(
            key.public_key(),
            self.ca_key,
            self.ca_certificate,
            self._clock.now(),
            self.h.responder_validity,
            self.policy_oid,
        )
        return {
            "generation": generation,
            "profile": PROFILE,
            "key": self._box.seal(pki.key_to_der(key), aad(RESPONDER)),
            "certificate_pem": pki.pem(cert),
            "not_after": cert.not_valid_after_utc,
        }

    async def refresh_responder(self) -> None:
        """Use the newest responder certificate; issue a new one when a third of its life is left, or
        when it was made under an older profile."""
        doc = await self._get_or_create(RESPONDER, lambda: self._responder_doc(0))
        cert = pki.load_certificate(doc["certificate_pem"])
        life = cert.not_valid_after_utc - cert.not_valid_before_utc
        if self._clock.now() >= cert.not_valid_after_utc - life / 3 or doc.get("profile", 1) < PROFILE:
            generation = doc["generation"] + 1
            fresh = self._responder_doc(generation)
            renewed = await self._coll.update_and_get(
                {"_id": RESPONDER, "generation": doc["generation"]}, {"$set": fresh}
            )
            doc = renewed if renewed is not None else (await self._coll.get(RESPONDER) or doc)
        if doc["generation"] != self._responder_generation:
            self._responder_key = pki.key_from_der(self._box.open(doc["key"], aad(RESPONDER)))
            self._responder = pki.load_certificate(doc["certificate_pem"])
            self._responder_generation = doc["generation"]
            for hook in self.on_responder_change:
                hook()

    # ------------------------------------------------------------------ what the rest of the service uses

    @property
    def root_key(self) -> PrivateKey:
        assert self._root_key is not None, "authority not loaded"
        return self._root_key

    @property
    def root_certificate(self) -> x509.Certificate:
        assert self._root is not None, "authority not loaded"
        return self._root

    @property
    def ca_key(self) -> PrivateKey:
        assert self._ca_key is not None, "authority not loaded"
        return self._ca_key

    @property
    def ca_certificate(self) -> x509.Certificate:
        assert self._ca is not None, "authority not loaded"
        return self._ca

    @property
    def responder_key(self) -> PrivateKey:
        assert self._responder_key is not None, "authority not loaded"
        return self._responder_key

    @property
    def responder_certificate(self) -> x509.Certificate:
        assert self._responder is not None, "authority not loaded"
        return self._responder

    @property
    def responder_generation(self) -> int:
        return self._responder_generation

    @property
    def seal_key(self) -> PrivateKey:
        assert self._seal_key is not None, "authority not loaded"
        return self._seal_key

    @property
    def ca_pem(self) -> str:
        return pki.pem(self.ca_certificate)

    @property
    def root_pem(self) -> str:
        return pki.pem(self.root_certificate)

    @property
    def chain_pem(self) -> str:
        """Issuing CA then root, as relying parties want the chain."""
        return self.ca_pem + self.root_pem

    @property
    def seal_public_pem(self) -> str:
        return pki.public_key_pem(self.seal_key)


def policies_of(cert: x509.Certificate) -> set[str]:
    """The certificate policy OIDs ``cert`` asserts (none when it has no certificatePolicies)."""
    try:
        ext = cert.extensions.get_extension_for_class(x509.CertificatePolicies)
    except x509.ExtensionNotFound:
        return set()
    return {p.policy_identifier.dotted_string for p in ext.value}
