"""A CSC SAD's own record (collection ``sads``), keyed by the SAD's SHA-256: the one place the signatures
of an authorisation are kept, read only by ``signHash``, destroyed when the SAD expires or the
certificate's status changes (see ``remote.requests``)."""

from __future__ import annotations

import base64
from datetime import datetime, timedelta

from kyso_kit.clock import Clock
from kyso_kit.crypto import SecretBox
from kyso_kit.store import Aggregates, Doc
from kyso_kit.timeutil import as_utc
from kyso_signing.credentials.domain import CertificateStatus as S

SAD_TTL = timedelta(seconds=300)


class SadRecords:
    """What ``RemoteSigning`` does with SADs; its collections and clock are the request's."""

    requests: Aggregates
    certs: Aggregates
    sads: Aggregates
    box: SecretBox
    clock: Clock

    async def record_sad(
        self, sad_sha256: str, doc: Doc, cert: Doc, signatures: list[str], pades_signatures: list[str], at: datetime
    ) -> None:
        """The SAD's own record: what ``signHash`` reads and rewrites (a bitmask of spent digests), keyed
        by the SAD's SHA-256 — and the one place the signatures are kept. It is written *before* the
        request is marked signed: should this process die in between, the request is still waiting
        and the record belongs to a SAD nobody was ever given (the sweep destroys it at expiry)."""
        await self.sads.insert(
            {
                "_id": sad_sha256,
                "request_id": doc["_id"],
                "client_id": doc["client_id"],
                "certificate_id": doc["certificate_id"],
                "certificate_revision": int(cert.get("revision", 0)),
                "key_algorithm": doc["key_algorithm"],
                "hash": doc["documents"][0]["hash_algorithm"],
                "digests": [base64.b64decode(d["hash_b64"]) for d in doc["documents"]],
                "signatures": signatures,
                "pades_signatures": pades_signatures,
                "expires_at": at + SAD_TTL,
                "used": 0,
                "live": True,
            }
        )

    async def end_sad(self, sad: Doc, why: str) -> bool:
        """Destroy a SAD's unused signatures (and the sealed SAD on its request): it can sign no more."""
        done = await self.sads.update(
            {"_id": sad["_id"], "live": True},
            {"$set": {"signatures": [], "pades_signatures": [], "ended": why}, "$unset": {"live": ""}},
        )
        if done:
            await self.requests.update(
                {"_id": sad["request_id"], "sad_sha256": sad["_id"]}, {"$unset": {"csc.sad_sealed": ""}}
            )
        return done

    async def end_sads_of(self, cert: Doc) -> int:
        """The certificate's status changed (``Lifecycle`` calls this after every change): every SAD of
        the credential ends — a suspension, a revocation or an expiry ends them for good, even if the
        certificate is resumed while they would still be within their 300 s."""
        n = 0
        for sad in await self.sads.find({"certificate_id": cert["_id"], "live": True}):
            n += await self.end_sad(sad, f"certificate {cert['status']}")
        return n

    async def end_due_sads(self) -> int:
        """Every second: end the SADs that expired, and those whose certificate changed since they were
        issued (should the process have died before ``end_sads_of`` ran)."""
        now, n = self.clock.now(), 0
        live = await self.sads.find({"live": True})
        certs: dict[str, Doc | None] = {}
        for sad in live:
            if as_utc(sad["expires_at"]) <= now:
                n += await self.end_sad(sad, "expired")
                continue
            cid = sad["certificate_id"]
            if cid not in certs:
                certs[cid] = await self.certs.get(cid, {"status": 1, "revision": 1})
            cert = certs[cid]
            if cert is None or cert["status"] != S.ACTIVE or cert.get("revision", 0) != sad["certificate_revision"]:
                n += await self.end_sad(sad, f"certificate {cert['status'] if cert else 'gone'}")
        return n

    def sad_of(self, doc: Doc) -> str | None:
        sealed = (doc.get("csc") or {}).get("sad_sealed")
        return self.box.open(sealed, aad=f"sad:{doc['_id']}").decode() if sealed else None


def expires_in(doc: Doc, now: datetime) -> int:
    return max(0, int((as_utc(doc["csc"]["sad_expires_at"]) - now).total_seconds()))
