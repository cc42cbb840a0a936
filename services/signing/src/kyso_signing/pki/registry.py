"""The CA's registry, keyed by serial (smallstep's ``db.AuthDB``: ``StoreCertificate``, ``Revoke``,
``IsRevoked``): every serial this CA issued a subscriber certificate under, and which of them are revoked
or on hold. The CRL publisher and the OCSP responder read only this collection (``ca_registry``), never the
subscriber's record.

It is fed by the credentials room (``credentials.registration``) from the certificate's own record: right
after the write that issues the certificate or moves its status, and, should the process die before that,
by the periodic PKI job from the mark that same write left on the record. Each record carries the
certificate's ``revision``, which every status change bumps in the same write; a record is only ever
replaced by one of a higher revision, so a late or repeated feed never undoes a newer state. A serial
reserved for an issuance not yet signed is not here: OCSP answers ``unknown`` for it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from kyso_kit.store import Doc, DuplicateKey, Store
from kyso_kit.timeutil import as_utc
from kyso_signing.pki import keys

COLLECTION = "ca_registry"


@dataclass(frozen=True)
class Entry:
    """What the CRL (and OCSP) say of a revoked or suspended certificate."""

    serial: int
    revoked_at: datetime
    reason: str  # an RFC 5280 reason name; "unspecified" is left out of the entry (§5.3.1)
    invalidity_date: datetime | None = None

    def line(self) -> str:
        inv = self.invalidity_date.isoformat() if self.invalidity_date else ""
        return f"{self.serial:x}|{self.revoked_at.isoformat()}|{self.reason}|{inv}"


@dataclass(frozen=True)
class Registered:
    """One issued serial: its certificate, until when it is valid, and its CRL entry if it has one."""

    serial: int
    certificate_id: str
    not_after: datetime
    revision: int
    entry: Entry | None  # revoked or on hold; None while in good standing (or expired unrevoked)


class Registry:
    def __init__(self, store: Store) -> None:
        self.records = store.collection(COLLECTION)

    async def init(self) -> None:
        await self.records.ensure_index([("listed", 1)])

    async def record(self, r: Registered) -> bool:
        """Store ``r`` unless the registry holds this serial at the same or a newer revision."""
        e = r.entry
        fields = {
            "certificate_id": r.certificate_id,
            "not_after": r.not_after,
            "revision": r.revision,
            "listed": e is not None,
            "revoked_at": e.revoked_at if e else None,
            "reason": e.reason if e else None,
            "invalidity_date": e.invalidity_date if e else None,
        }
        key = keys.serial_hex(r.serial)
        try:
            await self.records.insert({"_id": key, **fields})
            return True
        except DuplicateKey:
            return await self.records.update({"_id": key, "revision": {"$lt": r.revision}}, {"$set": fields})

    async def get(self, serial: int) -> Registered | None:
        doc = await self.records.get(keys.serial_hex(serial))
        return _registered(doc) if doc is not None else None

    async def listed(self) -> list[Registered]:
        """The serials with a CRL entry (revoked or on hold), expired ones included: the caller cuts those."""
        return [_registered(doc) for doc in await self.records.find({"listed": True})]


def _registered(doc: Doc) -> Registered:
    serial = int(doc["_id"], 16)
    entry = None
    if doc.get("listed"):
        inv = doc.get("invalidity_date")
        entry = Entry(serial, as_utc(doc["revoked_at"]), doc["reason"], as_utc(inv) if inv else None)
    return Registered(serial, doc["certificate_id"], as_utc(doc["not_after"]), int(doc["revision"]), entry)
