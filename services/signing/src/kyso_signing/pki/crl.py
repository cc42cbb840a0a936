"""Certificate revocation lists (RFC 5280 §5): a full CRL of the issuing CA and the root's ARL.

Each is regenerated at once when a certificate is revoked, suspended or resumed, and otherwise when a
third of its validity is left (as EJBCA's CRL updater and step-ca's ``renewPeriod`` do). The cRLNumber
comes from a counter in the database, so it only ever grows, across restarts and instances: a number
is drawn first, and a CRL is stored only over one with a lower number. What is listed is read from
the CA registry (``pki.registry``), never from the subscribers' records.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kyso_kit.clock import Clock
from kyso_kit.store import Doc, DuplicateKey, Store
from kyso_kit.timeutil import as_utc
from kyso_signing.pki import keys as pki
from kyso_signing.pki.authority import Authority
from kyso_signing.pki.registry import Entry, Registry

log = logging.getLogger(__name__)

ISSUING, ROOT = "issuing", "root"
EXPIRED_GRACE = timedelta(hours=1)  # an expired revoked certificate stays listed this long (step-ca's default)
# How long the CRLs embedded in signatures (PAdES DSS, CSC signatures' revocation values) are reused before
# they are read again: any CRL is valid until its nextUpdate, a change this process publishes is seen at once,
# and one another instance publishes within this time.
EVIDENCE_REUSE = timedelta(seconds=5)

REASONS = {
    "keyCompromise": x509.ReasonFlags.key_compromise,
    "affiliationChanged": x509.ReasonFlags.affiliation_changed,
    "superseded": x509.ReasonFlags.superseded,
    "cessationOfOperation": x509.ReasonFlags.cessation_of_operation,
    "privilegeWithdrawn": x509.ReasonFlags.privilege_withdrawn,
    "certificateHold": x509.ReasonFlags.certificate_hold,
}


def build_crl(
    entries: list[Entry], number: int, issuer: x509.Certificate, key: pki.PrivateKey, at: datetime, validity: timedelta
) -> x509.CertificateRevocationList:
    b = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(issuer.subject)
        .last_update(at)
        .next_update(at + validity)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(key.public_key()), critical=False)
    )
    for e in entries:
        rb = x509.RevokedCertificateBuilder().serial_number(e.serial).revocation_date(e.revoked_at)
        if e.reason in REASONS:
            rb = rb.add_extension(x509.CRLReason(REASONS[e.reason]), critical=False)
        if e.invalidity_date is not None:
            rb = rb.add_extension(x509.InvalidityDate(e.invalidity_date.replace(tzinfo=None)), critical=False)
        b = b.add_revoked_certificate(rb.build())
    return b.sign(key, pki.digest_for(key))


class RevocationLists:
    def __init__(self, store: Store, authority: Authority, clock: Clock, validity: timedelta) -> None:
        self.registry = Registry(store)  # what is listed: the CA's registry, never the subscribers' records
        self.crls = store.collection("crls")
        self.authority = authority
        self.clock = clock
        self.validity = validity
        self._evidence: tuple[bytes, ...] = ()
        self._evidence_until: datetime | None = None

    async def init(self) -> None:
        for which in (ISSUING, ROOT):
            try:  # a new CA publishes an (empty) CRL at once
                await self.crls.insert({"_id": which, "number": 0, "next_number": 0})
            except DuplicateKey:
                pass
        await self.refresh()

    def _signer(self, which: str) -> tuple[x509.Certificate, pki.PrivateKey]:
        if which == ROOT:
            return self.authority.root_certificate, self.authority.root_key
        return self.authority.ca_certificate, self.authority.ca_key

    async def _entries(self, which: str) -> list[Entry]:
        if which == ROOT:
            return []  # the root has certified only the issuing CA, which is in force
        cutoff = self.clock.now() - EXPIRED_GRACE
        entries = []
        for r in await self.registry.listed():
            if r.entry is not None and r.not_after > cutoff:
                entries.append(r.entry)
        return sorted(entries, key=lambda e: e.serial)

    def _due(self, doc: Doc | None, now: datetime) -> bool:
        return doc is None or "der" not in doc or as_utc(doc["next_update"]) - self.validity / 3 <= now

    async def evidence(self) -> tuple[bytes, ...]:
        """The issuing CA's CRL and the root's ARL (DER) to embed in a signature now: the published ones, read
        at most every ``EVIDENCE_REUSE`` (never every signature), and published first when due."""
        now = self.clock.now()
        if self._evidence_until is not None and now < self._evidence_until:
            return self._evidence
        docs = [await self.current(which) for which in (ISSUING, ROOT)]
        if any(self._due(d, now) for d in docs):
            await self.refresh()
            docs = [await self.current(which) for which in (ISSUING, ROOT)]
        self._evidence = tuple(bytes(d["der"]) for d in docs if d is not None)
        self._evidence_until = now + EVIDENCE_REUSE
        return self._evidence

    async def refresh(self) -> int:
        """Publish each CRL whose content changed or whose nextUpdate draws near; how many were published."""
        published = 0
        for which in (ISSUING, ROOT):
            entries = await self._entries(which)
            content = hashlib.sha256("\n".join(e.line() for e in entries).encode()).hexdigest()
            doc = await self.crls.get(which)
            if doc is None or self._due(doc, self.clock.now()) or doc.get("content") != content:
                published += await self._publish(which, entries, content)
        return published

    async def _publish(self, which: str, entries: list[Entry], content: str) -> int:
        drawn = await self.crls.update_and_get({"_id": which}, {"$inc": {"next_number": 1}})
        assert drawn is not None, "CRL counters are created by init()"
        number = drawn["next_number"]
        issuer, key = self._signer(which)
        at = self.clock.now().replace(microsecond=0)
        crl = build_crl(entries, number, issuer, key, at, self.validity)
        stored = await self._store(
            which, number, crl.public_bytes(serialization.Encoding.DER), at, content, len(entries)
        )
        if stored:
            self._evidence_until = None  # what this process publishes goes into the next signature
            log.info("CRL published", extra={"crl": which, "number": number, "entries": len(entries)})
        return int(stored)

    async def _store(self, which: str, number: int, der: bytes, at: datetime, content: str, entries: int) -> bool:
        """Keep this CRL unless one with a higher number was stored first (a slower publisher lost)."""
        return await self.crls.update(
            {"_id": which, "number": {"$lt": number}},
            {
                "$set": {
                    "number": number,
                    "der": der,
                    "this_update": at,
                    "next_update": at + self.validity,
                    "content": content,
                    "entries": entries,
                }
            },
        )

    async def current(self, which: str) -> Doc | None:
        doc = await self.crls.get(which)
        return doc if doc is not None and "der" in doc else None


def conditional_headers(etag: str, last_modified: datetime, expires: datetime, max_age: int) -> dict[str, Any]:
    """HTTP caching headers for a published artefact (RFC 9111; RFC 5019 §6 for OCSP)."""
    from email.utils import format_datetime

    return {
        "ETag": f'"{etag}"',
        "Last-Modified": format_datetime(as_utc(last_modified), usegmt=True),
        "Expires": format_datetime(as_utc(expires), usegmt=True),
        "Cache-Control": f"public, max-age={max(0, max_age)}, no-transform, must-revalidate",
    }
