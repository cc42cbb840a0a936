"""The files a subscriber keeps: the service contract (sealed by the provider after consent) and the
acceptance record (signed by the subscriber with the new certificate).

Files are content-addressed: a file's ``_id`` is its SHA-256, so writing one twice is harmless, two
deliveries racing each store their own bytes, and a record can only ever point at exactly the bytes
whose hash it holds. A file is stored *before* any record points at it. Being immutable (and never
deleted), the files this process stored or read lately are kept in memory too: each journey reads its
contract and prepared record back (50–90 KB each) right after storing them.
"""

from __future__ import annotations

import base64
import dataclasses
import logging
import os
from collections import OrderedDict
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp

from kyso_kit.clock import Clock
from kyso_kit.crypto import off_loop
from kyso_kit.store import DuplicateKey, Store
from kyso_signing.documents import layout as documents
from kyso_signing.documents import ltv, pades
from kyso_signing.pki import keys as pki
from kyso_signing.pki.authority import Authority
from kyso_signing.pki.crl import RevocationLists
from kyso_signing.pki.ocsp import Responder
from kyso_signing.pki.tsa import TimestampAuthority

PDF = "application/pdf"
RECENT_FILES_BYTES = 32 * 1024 * 1024
OCSP_NONCE_BYTES = 16

log = logging.getLogger(__name__)


class Papers:
    def __init__(
        self,
        store: Store,
        authority: Authority,
        crls: RevocationLists,
        stamper: TimestampAuthority,
        clock: Clock,
        provider_name: str,
        responder: Responder,
    ) -> None:
        self.files = store.collection("documents")
        self.authority = authority
        self.crls = crls
        self.responder = responder
        self.stamper = stamper
        self.clock = clock
        self.provider_name = provider_name
        self._recent: OrderedDict[str, bytes] = OrderedDict()
        self._recent_bytes = 0

    def _remember(self, sha256: str, data: bytes) -> None:
        if sha256 in self._recent:
            self._recent.move_to_end(sha256)
            return
        self._recent[sha256] = data
        self._recent_bytes += len(data)
        while self._recent_bytes > RECENT_FILES_BYTES:
            _, dropped = self._recent.popitem(last=False)
            self._recent_bytes -= len(dropped)

    async def put(self, pdf: bytes, kind: str, account_id: str) -> str:
        sha = documents.sha256_hex(pdf)
        try:
            await self.files.insert(
                {"_id": sha, "kind": kind, "account_id": account_id, "media_type": PDF, "bytes": pdf,
                 "size": len(pdf), "created_at": self.clock.now()}
            )  # fmt: skip
        except DuplicateKey:
            pass  # the very same bytes are stored already
        self._remember(sha, pdf)  # only once stored: a cached file is always a stored one
        return sha

    async def get(self, sha256: str) -> bytes:
        if (data := self._recent.get(sha256)) is not None:
            self._recent.move_to_end(sha256)
            return data
        doc = await self.files.get(sha256)
        if doc is None:
            raise LookupError(f"file {sha256} is not stored")  # a record never points at a missing file
        data = bytes(doc["bytes"])
        self._remember(sha256, data)
        return data

    async def trust(self) -> ltv.Trust:
        """The chain and the CRLs the CA publishes (a due CRL is published first: never one past its nextUpdate)."""
        crls = await self.crls.evidence()
        return ltv.Trust(self.authority.root_certificate, self.authority.ca_certificate, crls, self.clock.now())

    def timestamper(self) -> pades.LocalTimeStamper:
        return pades.LocalTimeStamper(self.stamper)

    async def with_status(self, trust: ltv.Trust, signature_cms: bytes) -> ltv.Trust:
        """``trust`` and an OCSP answer made now for each end-entity certificate of a long-term signature
        whose timestamped CMS is made: the signer's and the TSA's (which also makes a B-LTA's document
        timestamp). Each is issued after the certificate it covers, which the CRLs need not be (they are
        not published on issuance), and after the signature timestamp. A nonce makes each answer a new
        one, not one cached before the signature; an answer the responder cannot give is left out, and
        the CRL covers that certificate instead."""
        certs = {pki.der(c): c for c in [*ltv.end_entities(signature_cms, trust), self.authority.tsa_certificate]}
        answers = []
        for cert in certs.values():
            request = (
                ocsp.OCSPRequestBuilder()
                .add_certificate(cert, trust.issuing, hashes.SHA256())
                .add_extension(x509.OCSPNonce(os.urandom(OCSP_NONCE_BYTES)), critical=False)
                .build()
                .public_bytes(serialization.Encoding.DER)
            )
            answer = await self.responder.respond(request)
            if ocsp.load_der_ocsp_response(answer.der).response_status != ocsp.OCSPResponseStatus.SUCCESSFUL:
                log.warning("no OCSP answer to embed", extra={"serial": pki.serial_hex(cert.serial_number)})
                continue
            answers.append(answer.der)
        return dataclasses.replace(trust, ocsps_der=tuple(answers))

    async def _to_level(self, prepared: pades.Prepared, signature_cms: bytes, trust: ltv.Trust, level: str) -> bytes:
        if level in pades.LONG_TERM:
            trust = await self.with_status(trust, signature_cms)
        return await off_loop(pades.to_level, prepared, signature_cms, trust, self.timestamper(), level)

    async def prepare(self, pdf: bytes, cert_pem: str, field: str, reason: str) -> dict[str, Any]:
        """Add ``cert``'s signature placeholder to ``pdf`` and store the result; what a record keeps to
        finish it once the subscriber's signature is there."""
        trust = await self.trust()
        cert = pki.load_certificate(cert_pem)
        prepared = await off_loop(pades.prepare, pdf, cert, trust, field, reason)
        sha = await self.put(prepared.pdf, "prepared", "")
        return {
            "prepared_sha256": sha,
            "document_digest_b64": base64.b64encode(prepared.document_digest).decode(),
            "byte_range": [prepared.start, prepared.end],
        }

    async def complete(
        self, info: dict[str, Any], signature_b64: str, cert_pem: str, level: str, kind: str, account_id: str
    ) -> tuple[bytes, str]:
        """The prepared PDF ``info`` names, signed with ``signature_b64`` (over the PAdES signed attributes),
        to ``level`` (B-B … B-LTA), and stored: its bytes and SHA-256."""
        start, end = info["byte_range"]
        prepared = pades.Prepared(
            await self.get(info["prepared_sha256"]), base64.b64decode(info["document_digest_b64"]), start, end
        )
        if level not in pades.LEVELS:
            raise ValueError(f"unknown PAdES level {level}")
        trust = await self.trust()
        cert = pki.load_certificate(cert_pem)
        signature = base64.b64decode(signature_b64)
        stamper = None if level == "B-B" else self.timestamper()
        signature_cms = await off_loop(pades.cms, prepared.document_digest, signature, cert, trust, stamper)
        signed = await self._to_level(prepared, signature_cms, trust, level)
        return signed, await self.put(signed, kind, account_id)

    async def seal(self, pdf: bytes, reason: str) -> bytes:
        """The provider's seal over ``pdf``: PAdES B-LTA."""
        trust = await self.trust()
        a = self.authority
        prepared, signature_cms = await off_loop(
            pades.seal_signature, pdf, a.seal_key, a.seal_certificate, trust, self.stamper, reason
        )
        return await self._to_level(prepared, signature_cms, trust, "B-LTA")
