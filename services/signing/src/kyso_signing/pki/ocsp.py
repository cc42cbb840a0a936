"""The OCSP responder (RFC 6960), signed by the delegated responder certificate.

- good / revoked (time and reason; a suspension is revoked with reason certificateHold) / unknown
  (a serial the CA never issued — a reserved serial whose certificate is not signed yet included);
- ``malformedRequest`` for anything that cannot be parsed, including requests for several
  certificates (``cryptography`` cannot read them); ``unauthorized`` for a certificate of another issuer;
- the request's nonce is echoed (RFC 8954 bounds it to 1..32 octets; longer ones are refused);
- an answer without a nonce is kept and reused until shortly before its nextUpdate, as long as the
  certificate's ``revision`` (bumped by every status change) is the one it was made for — a
  revocation makes the next answer fresh at once, on every instance.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509 import ocsp

from kyso_kit.clock import Clock
from kyso_kit.store import Store
from kyso_signing.pki import keys as pki
from kyso_signing.pki.authority import Authority
from kyso_signing.pki.crl import REASONS
from kyso_signing.pki.registry import Registry

log = logging.getLogger(__name__)

MAX_NONCE = 32  # RFC 8954 §2.1
CACHE_MAX = 100_000
# SHA-1 is what most clients (openssl included) name the issuer with in a CertID; it identifies, it does not sign
ISSUER_HASHES = (hashes.SHA1(), hashes.SHA256(), hashes.SHA384(), hashes.SHA512())  # noqa: S303


def unsuccessful(status: ocsp.OCSPResponseStatus) -> bytes:
    return ocsp.OCSPResponseBuilder.build_unsuccessful(status).public_bytes(serialization.Encoding.DER)


@dataclass
class Answer:
    der: bytes
    produced_at: datetime
    next_update: datetime
    cacheable: bool  # no nonce: the same bytes may be served to anyone until shortly before next_update


@dataclass(frozen=True)
class _Cached:
    revision: int
    generation: int
    answer: Answer
    reuse_until: datetime


def _issuer_hashes(ca: x509.Certificate) -> dict[str, tuple[bytes, bytes]]:
    """issuerNameHash and issuerKeyHash (RFC 6960 §4.1.1: over the DER name and over the *contents* of
    the subjectPublicKey BIT STRING) of the issuing CA, under each hash a request may use."""
    name_der = ca.subject.public_bytes()
    public = ca.public_key()
    if isinstance(public, ec.EllipticCurvePublicKey):
        key_bits = public.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
    elif isinstance(public, rsa.RSAPublicKey):
        key_bits = public.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.PKCS1)
    else:
        raise ValueError("unsupported CA key")
    out = {}
    for h in ISSUER_HASHES:
        name = hashes.Hash(h)
        name.update(name_der)
        key = hashes.Hash(h)
        key.update(key_bits)
        out[h.name] = (name.finalize(), key.finalize())
    return out


class Responder:
    def __init__(self, store: Store, authority: Authority, clock: Clock, validity: timedelta) -> None:
        self.registry = Registry(store)  # the issued serials and their status; never the subscribers' records
        self.authority = authority
        self.clock = clock
        self.validity = validity
        self.reuse_margin = min(validity / 6, timedelta(minutes=10))
        self._cache: OrderedDict[tuple[int, str], _Cached] = OrderedDict()
        self._hashes: dict[str, tuple[bytes, bytes]] | None = None
        self.hits = 0
        self.misses = 0

    def forget_all(self) -> None:
        """A new responder certificate: answers signed by the old one are not reused."""
        self._cache.clear()

    def _issuer(self) -> dict[str, tuple[bytes, bytes]]:
        if self._hashes is None:
            self._hashes = _issuer_hashes(self.authority.ca_certificate)
        return self._hashes

    async def respond(self, body: bytes) -> Answer:
        now = self.clock.now()
        try:
            req = ocsp.load_der_ocsp_request(body)
            nonce = self._nonce(req)
            serial, algorithm = req.serial_number, req.hash_algorithm
            name_hash, key_hash = req.issuer_name_hash, req.issuer_key_hash
        except Exception as exc:  # whatever the bytes are, the answer is malformedRequest
            # NotImplementedError: several certificates in one request (cryptography reads only one);
            # UnsupportedAlgorithm: a CertID hashed with something cryptography does not know
            log.info("malformed OCSP request", extra={"error": type(exc).__name__})
            return Answer(unsuccessful(ocsp.OCSPResponseStatus.MALFORMED_REQUEST), now, now, False)
        expected = self._issuer().get(algorithm.name)
        if expected is None or expected != (name_hash, key_hash):
            return Answer(unsuccessful(ocsp.OCSPResponseStatus.UNAUTHORIZED), now, now, False)
        reg = await self.registry.get(serial)
        # the provider's own certificates (seal, TSA) are the CA's too: good while the CA stands
        own = reg is None and self.authority.own_certificate(serial) is not None
        issued = own or reg is not None
        revision = reg.revision if reg is not None else -1
        generation = self.authority.responder_generation
        key = (serial, algorithm.name)
        if nonce is None and issued:
            hit = self._cache.get(key)
            if hit and hit.revision == revision and hit.generation == generation and now < hit.reuse_until:
                self.hits += 1
                self._cache.move_to_end(key)
                return hit.answer
        self.misses += 1
        at = now.replace(microsecond=0)
        b = ocsp.OCSPResponseBuilder()
        entry = reg.entry if reg is not None else None
        if not issued:
            status, rev_time, reason = ocsp.OCSPCertStatus.UNKNOWN, None, None
        elif entry is not None:
            status, rev_time = ocsp.OCSPCertStatus.REVOKED, entry.revoked_at.replace(microsecond=0)
            reason = REASONS.get(entry.reason, x509.ReasonFlags.unspecified)
        else:
            status, rev_time, reason = ocsp.OCSPCertStatus.GOOD, None, None
        next_update = at + self.validity
        b = b.add_response_by_hash(
            issuer_name_hash=name_hash,
            issuer_key_hash=key_hash,
            serial_number=serial,
            algorithm=algorithm,
            cert_status=status,
            this_update=at,
            next_update=next_update,
            revocation_time=rev_time,
            revocation_reason=reason if status == ocsp.OCSPCertStatus.REVOKED else None,
        )
        b = b.responder_id(ocsp.OCSPResponderEncoding.HASH, self.authority.responder_certificate)
        b = b.certificates([self.authority.responder_certificate])
        if nonce is not None:
            b = b.add_extension(x509.OCSPNonce(nonce), critical=False)
        key_ = self.authority.responder_key
        signed = b.sign(key_, pki.digest_for(key_))
        answer = Answer(signed.public_bytes(serialization.Encoding.DER), at, next_update, nonce is None)
        if nonce is None and issued:
            self._cache[key] = _Cached(revision, generation, answer, next_update - self.reuse_margin)
            if len(self._cache) > CACHE_MAX:
                self._cache.popitem(last=False)
        return answer

    @staticmethod
    def _nonce(req: ocsp.OCSPRequest) -> bytes | None:
        try:
            ext = req.extensions.get_extension_for_class(x509.OCSPNonce)
        except x509.ExtensionNotFound:
            return None
        nonce = ext.value.nonce
        if not 1 <= len(nonce) <= MAX_NONCE:
            raise ValueError("nonce length outside 1..32 octets (RFC 8954)")
        return nonce
