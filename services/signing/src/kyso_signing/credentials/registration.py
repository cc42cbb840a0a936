"""Keeps the CA registry (``pki.registry``) current from the certificates' records: the one place that
turns a subscriber's record into what the CRL and OCSP say of its serial.

The write that issues a certificate or moves its status also sets ``registry_due`` on the record (the
same single-document write, so the two cannot part). Right after it, ``changed`` registers the record (so
the CRL is published and OCSP answers at once); should the process die in between, ``catch_up`` (the
periodic PKI job) registers every record still marked due and clears the mark, guarded by the revision it
registered. Both go through the registry's revision guard, so their order does not matter. ``init``
registers once the certificates issued before the registry existed.
"""

from __future__ import annotations

import logging

from kyso_kit.clock import Clock
from kyso_kit.store import Doc, DuplicateKey, Store
from kyso_kit.timeutil import as_utc
from kyso_signing.credentials.domain import CertificateStatus as S
from kyso_signing.credentials.records import certificates, is_issued
from kyso_signing.pki.crl import RevocationLists
from kyso_signing.pki.registry import Entry, Registered, Registry

log = logging.getLogger(__name__)

DUE = {"registry_due": True}
"""Set in the same write as a change the registry must learn; cleared once it has."""
_BACKFILLED = "registry_backfilled"
_FIELDS = {"serial_number": 1, "status": 1, "certificate": 1, "revision": 1, "revocation": 1, "suspension": 1}


def registered(doc: Doc) -> Registered | None:
    """What the registry holds for this certificate record (None before its certificate is signed)."""
    if not is_issued(doc):
        return None
    serial = int(doc["serial_number"], 16)
    entry = None
    if doc["status"] == S.REVOKED and doc.get("revocation"):
        r = doc["revocation"]
        inv = r.get("invalidity_date")
        entry = Entry(serial, as_utc(r["revoked_at"]), r["reason"], as_utc(inv) if inv else None)
    elif doc["status"] == S.SUSPENDED and doc.get("suspension"):
        entry = Entry(serial, as_utc(doc["suspension"]["at"]), "certificateHold")
    return Registered(serial, doc["_id"], as_utc(doc["certificate"]["not_after"]), int(doc.get("revision", 0)), entry)


class Registration:
    def __init__(self, store: Store, registry: Registry, crls: RevocationLists, clock: Clock) -> None:
        self.certs = certificates(store)
        self.state = store.collection("pki_state")
        self.registry = registry
        self.crls = crls
        self.clock = clock

    async def init(self) -> None:
        await self.registry.init()
        if await self.state.get(_BACKFILLED) is not None:
            return
        await self.certs.ensure_index([("registry_due", 1)], sparse=True)
        for doc in await self.certs.find({"certificate": {"$exists": True}}, projection=_FIELDS):
            await self.record(doc)
        try:  # once: from now on every issuance and change registers itself
            await self.state.insert({"_id": _BACKFILLED, "at": self.clock.now()})
        except DuplicateKey:
            pass

    async def record(self, doc: Doc) -> bool:
        """Register the certificate as ``doc`` has it; whether the registry changed."""
        r = registered(doc)
        return r is not None and await self.registry.record(r)

    async def issued(self, doc: Doc) -> None:
        """Right after issuance: register the new serial (never on the CRL, so none is published)."""
        try:
            await self.record(doc)
        except Exception:
            log.exception("registering an issued certificate failed")

    async def changed(self, doc: Doc) -> None:
        """Right after a write moved ``doc``: register it, and publish the CRL at once if its list changed
        (should either fail, the event re-registers it and the periodic job publishes the CRL)."""
        try:
            if await self.record(doc):
                await self.crls.refresh()
        except Exception:
            log.exception("registering a certificate change failed")

    async def catch_up(self) -> int:
        """Register the records still marked due and clear their mark (a record changed again meanwhile stays
        due); how many the registry had missed — normally none, as ``changed`` registered them at once."""
        missed = 0
        for doc in await self.certs.find(DUE, projection=_FIELDS):
            missed += await self.record(doc)
            await self.certs.update(
                {"_id": doc["_id"], "revision": doc.get("revision", 0), **DUE}, {"$unset": {"registry_due": ""}}
            )
        if missed:
            log.warning("the CA registry caught up with certificate changes", extra={"certificates": missed})
            await self.crls.refresh()
        return missed
