"""The Cloud Signature Consortium API, version 2.0.0.2 (``/csc/v2/…``), for relying parties.

Authorisation is asynchronous and out of band, as in SmartCA: ``credentials/authorize`` names the
exact digests and answers 202 with a ``handle``; the subscriber confirms in the kyso app with the
signing PIN and a one-time code bound to those digests; ``credentials/authorizeCheck`` then answers
the SAD. The relying party never sends a PIN or an OTP (``authData`` objects are out of band: their
values must be empty). The SAD is server-side state: bound to the subscriber, the credential, this
client and the digests; valid 300 s; each digest is signed once. ``signatures/signHash`` works
synchronously or asynchronously (``operationMode`` "A", ``signatures/signPolling``). The signatures
of an authorisation leave kyso only here, against a valid SAD: a SAD ends (and its signatures are
destroyed) when it expires or the certificate's status changes, suspension included. An async
``response_uri`` must be on an origin registered for the relying party (``Clients.callback_target``).

Errors are the spec's: an HTTP status with ``{"error", "error_description"}``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from datetime import timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from kyso_kit.crypto import off_loop
from kyso_kit.errors import NotFound
from kyso_kit.store import Doc
from kyso_kit.timeutil import as_utc
from kyso_signing.credentials.domain import CertificateStatus as S
from kyso_signing.documents import ltv, pades
from kyso_signing.pki import keys as pki
from kyso_signing.pki import signer
from kyso_signing.pki.keys import KeyAlgorithm
from kyso_signing.remote.clients import CallbackRefused, Client
from kyso_signing.remote.csc_credentials import CscCredentials
from kyso_signing.remote.csc_wire import (
    CERT_STATUS,
    LEVELS,
    AuthorizeIn,
    CscError,
    DocumentDigestsIn,
    HandleIn,
    PollIn,
    SignDocIn,
    SignHashIn,
    TimestampIn,
    invalid,
)
from kyso_signing.remote.domain import SIGNED, WAITING, Document
from kyso_signing.remote.sads import expires_in

_RACES = 16


class Csc(CscCredentials):
    """Authorising (out of band, SAD) and signing: ``credentials/authorize[Check]``, ``signatures/*``."""

    async def authorize(self, client: Client, body: AuthorizeIn, address: str | None) -> dict[str, Any]:
        h = signer.HASH_BY_OID.get(body.hashAlgorithmOID)
        if h is None:
            raise invalid("Invalid parameter hashAlgorithmOID")
        if body.numSignatures != len(body.hashes):
            raise invalid("numSignatures must equal the number of hashes")
        if any(a.value for a in body.authData):
            raise invalid("The PIN and OTP are entered only in the kyso app; send authData values empty")
        docs = [Document(f"Document {i + 1}", text, h.name) for i, text in enumerate(body.hashes)]
        try:
            doc = await self.remote.submit(
                client,
                docs,
                description=body.description or "Ký tài liệu / Sign documents",
                certificate_id=body.credentialID,
                client_address=address,
                csc={"num_signatures": body.numSignatures, "hash_algorithm_oid": h.oid},
            )
        except NotFound:
            raise invalid("Invalid parameter credentialID") from None
        return {"handle": doc["_id"]}

    async def authorize_check(self, client: Client, body: HandleIn) -> tuple[int, dict[str, Any]]:
        try:
            doc = await self.remote.of_client(client, body.handle)
        except NotFound:
            raise invalid("Invalid parameter handle") from None
        if "csc" not in doc:
            raise invalid("Invalid parameter handle")
        if doc["status"] == WAITING:
            if as_utc(doc["expires_at"]) <= self.clock.now():
                raise CscError(400, "access_denied", "The subscriber did not confirm in time")
            return 202, {"handle": doc["_id"]}
        if doc["status"] != SIGNED:
            raise CscError(400, "access_denied", f"The authorisation was {doc['status']}")
        left = expires_in(doc, self.clock.now())
        if left <= 0:
            raise invalid("SAD expired")
        sad = self.remote.sad_of(doc)
        if sad is None:  # ended early: the certificate was suspended, revoked or expired
            record = await self.sads.get(doc.get("sad_sha256"), {"ended": 1}) if doc.get("sad_sha256") else None
            raise invalid(f"SAD no longer valid ({(record or {}).get('ended', 'ended')})")
        return 200, {"SAD": sad, "expiresIn": left}

    async def _sad(self, sad: str) -> dict[str, Any] | None:
        """The SAD's own small record (its SHA-256 is the key; ``RemoteSigning.record_sad``).

        It holds what ``signHash`` needs and nothing else — the authorised digests, their signatures and a
        bitmask of the ones already used — so each call reads and rewrites a few hundred bytes, not the
        request with its evidence. The bitmask lives only here: it is the one place a digest is spent."""
        record = await self.sads.get(hashlib.sha256(sad.encode()).hexdigest())
        return dict(record) if record is not None else None

    async def _usable_sad(self, client: Client, sad_text: str, credential_id: str, fields: Any = None) -> Doc:
        sad = await self._sad(sad_text)
        if sad is None or sad["client_id"] != client.client_id:
            raise invalid("Invalid parameter SAD")
        if sad["certificate_id"] != credential_id:
            raise invalid("Invalid parameter credentialID")
        if as_utc(sad["expires_at"]) <= self.clock.now():
            await self.remote.end_sad(sad, "expired")
            raise invalid("SAD expired")
        cert = await self.certs.get(sad["certificate_id"], (fields or {"status": 1}) | {"revision": 1})
        if cert is None or cert["status"] != S.ACTIVE:
            status = CERT_STATUS.get(S(cert["status"]), "invalid") if cert else "invalid"
            raise invalid(f"Signing certificate is {status}")
        if not sad.get("live") or cert.get("revision", 0) != sad.get("certificate_revision"):
            # the certificate was suspended (or changed) after this SAD was issued: it ended then
            await self.remote.end_sad(sad, "certificate status changed")
            raise invalid(f"SAD no longer valid ({sad.get('ended') or 'certificate status changed'})")
        return sad | {"_cert": cert}

    @staticmethod
    def _decoded(hashes: list[str], h: signer.Hash) -> list[bytes]:
        raw = []
        for text in hashes:
            try:
                raw.append(signer.decode_hash(text, h))
            except ValueError:
                raise invalid("Invalid parameter hashes") from None
        return raw

    async def sign_hash(self, client: Client, body: SignHashIn) -> list[str]:
        sad = await self._usable_sad(client, body.SAD, body.credentialID)
        h = signer.HASHES[sad["hash"]]
        self._check_algorithm(body, KeyAlgorithm(sad["key_algorithm"]), h)
        raw = self._decoded(body.hashes, h)
        return [sad["signatures"][i] for i in await self._spend(sad, raw)]

    async def _spend(self, sad: Doc, raw: list[bytes]) -> list[int]:
        """Mark the digests used, each exactly once across concurrent calls; their indexes in the SAD."""
        sad = {k: v for k, v in sad.items() if k != "_cert"}
        digests = [bytes(d) for d in sad["digests"]]
        if len(raw) > len(digests):
            raise invalid("Numbers of signatures is too high")
        for _ in range(_RACES):
            used, wanted = sad["used"], []
            for r in raw:
                free = [i for i, d in enumerate(digests) if d == r and not used >> i & 1 and i not in wanted]
                if not free:
                    raise invalid("Hash is not authorized by the SAD")
                wanted.append(free[0])
            mask = sum(1 << i for i in wanted)
            if await self.sads.update({"_id": sad["_id"], "used": used}, {"$set": {"used": used | mask}}):
                return wanted
            again = await self.sads.get(sad["_id"])  # another call spent some digests meanwhile
            if again is None:
                raise invalid("Invalid parameter SAD")
            sad = dict(again)
        raise invalid("Hash is not authorized by the SAD")

    async def sign_doc(self, client: Client, body: SignDocIn) -> dict[str, Any]:
        """``signatures/signDoc`` for PAdES: the integrator prepared the PDF and sends its byte-range
        digests (authorised like any digest); each answer is a CMS SignedData to embed — signed
        attributes over the digest, the signature the subscriber confirmed, and for B-T and B-LT a
        signature timestamp from kyso's TSA; B-LT also returns the validation data for the DSS."""
        assert self.papers is not None and self.stamper is not None
        if body.documents:
            raise invalid("documents are not supported: prepare the PDF and send documentDigests")
        if not body.documentDigests:
            raise invalid("Missing parameter documentDigests")
        if body.operationMode != "S":
            raise invalid("Invalid parameter operationMode")
        sad = await self._usable_sad(client, body.SAD, body.credentialID, {"status": 1, "certificate": 1})
        if not sad.get("pades_signatures") or sad["hash"] != "sha256":
            raise invalid("The SAD does not authorise PAdES signatures (authorise SHA-256 digests)")
        levels, raw = [], []
        for d in body.documentDigests:
            if d.signature_format != "P":
                raise invalid("Invalid parameter signature_format")
            if d.conformance_level not in LEVELS:
                raise invalid("Invalid parameter conformance_level")
            h = signer.HASHES["sha256"]
            self._check_algorithm(d, KeyAlgorithm(sad["key_algorithm"]), h)
            for r in self._decoded(d.hashes, h):
                raw.append(r)
                levels.append(d.conformance_level)
        spent = await self._spend(sad, raw)
        cert = pki.load_certificate(sad["_cert"]["certificate"]["certificate_pem"])
        trust = await self.papers.trust()
        stamper = self.papers.timestamper()
        signatures = [base64.b64decode(sad["pades_signatures"][i]) for i in spent]

        def build() -> list[str]:
            return [
                base64.b64encode(pades.cms(r, sig, cert, trust, stamper if level != "Ades-B-B" else None)).decode()
                for r, sig, level in zip(raw, signatures, levels, strict=True)
            ]

        out: dict[str, Any] = {"SignatureObject": await off_loop(build)}
        if body.returnValidationInfo or "Ades-B-LT" in levels:
            out["validationInfo"] = await self._validation_info(cert, trust)
        return out

    async def _validation_info(self, cert: x509.Certificate, trust: ltv.Trust) -> dict[str, list[str]]:
        """What a PAdES B-LT DSS needs for this signer: the chain, the CA's CRLs, an OCSP answer."""
        info: dict[str, list[str]] = {
            "certificates": [_b64(pki.der(c)) for c in (cert, trust.issuing, trust.root)],
            "crl": [_b64(c) for c in trust.crls_der],
            "ocsp": [],
        }
        if self.responder is not None:
            request = (
                ocsp.OCSPRequestBuilder()
                .add_certificate(cert, trust.issuing, hashes.SHA256())
                .build()
                .public_bytes(serialization.Encoding.DER)
            )
            info["ocsp"].append(_b64((await self.responder.respond(request)).der))
        return info

    @staticmethod
    def _check_algorithm(body: SignHashIn | DocumentDigestsIn, algorithm: KeyAlgorithm, h: signer.Hash) -> None:
        if body.hashAlgorithmOID is not None and signer.HASH_BY_OID.get(body.hashAlgorithmOID) != h:
            raise invalid("Invalid parameter hashAlgorithmOID")
        if body.signAlgo not in signer.signature_algorithms(algorithm):
            raise invalid("Invalid parameter signAlgo")
        if body.signAlgo == signer.RSASSA_PSS:
            try:
                if signer.hash_of_pss_params(base64.b64decode(body.signAlgoParams or "", validate=True)) != h:
                    raise ValueError("another hash")
            except ValueError:
                raise invalid("Invalid parameter signAlgoParams") from None
        elif signer.ECDSA_BY_OID[body.signAlgo] != h:
            raise invalid("Invalid parameter signAlgo")

    async def check_response_uri(self, client: Client, url: str) -> None:
        """A ``response_uri`` kyso would not call is the spec's ``invalid_request`` — before anything is
        signed, spent or queued."""
        doc = await self.webhooks.clients.clients.get(client.client_id)
        try:
            if doc is None:
                raise CallbackRefused("unknown relying party")
            await self.webhooks.clients.callback_target(doc, url)
        except CallbackRefused as exc:
            raise invalid(f"Invalid parameter response_uri: {exc}") from None

    async def sign_hash_async(self, client: Client, body: SignHashIn) -> dict[str, Any]:
        if body.response_uri is not None:
            await self.check_response_uri(client, body.response_uri)
        signatures = await self.sign_hash(client, body)
        response_id = secrets.token_hex(16)
        keep = timedelta(milliseconds=body.validity_period or 600_000)
        await self.responses.insert(
            {
                "_id": response_id,
                "client_id": client.client_id,
                "signatures": signatures,
                "expires_at": self.clock.now() + keep,
            }
        )
        if body.response_uri:
            note = json.dumps({"responseID": response_id}).encode()
            await self.webhooks.enqueue(client.client_id, body.response_uri, note.decode(), f"csc-{response_id}")
        return {"responseID": response_id}

    def timestamp(self, body: TimestampIn) -> str:
        """``signatures/timestamp``: an RFC 3161 token over ``hash`` from kyso's own TSA."""
        assert self.stamper is not None
        h = signer.HASH_BY_OID.get(body.hashAlgo)
        if h is None:
            raise invalid("Invalid parameter hashAlgo")
        try:
            digest = signer.decode_hash(body.hash, h)
        except ValueError:
            raise invalid("Invalid parameter hash") from None
        nonce = None
        if body.nonce is not None:
            try:
                nonce = int(body.nonce, 16)
            except ValueError:
                raise invalid("Invalid parameter nonce") from None
        return base64.b64encode(self.stamper.stamp_imprint(digest, h.name, nonce)).decode()

    async def poll(self, client: Client, body: PollIn) -> list[str]:
        doc = await self.responses.get(body.responseID)
        if doc is None or doc["client_id"] != client.client_id or as_utc(doc["expires_at"]) <= self.clock.now():
            raise invalid("Invalid parameter responseID")
        return list(doc["signatures"])


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
