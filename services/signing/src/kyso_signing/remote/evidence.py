"""Evidence of every signature, in an append-only log where each entry carries the hash of the one
before it; the head of the chain is signed with the provider's seal key at intervals.

    entry_digest = SHA-256(canonical JSON of the entry)
    hash         = SHA-256("kyso-audit-v1|<seq>|<previous hash>|<entry_digest>")

An export for one subscriber carries that subscriber's entries in full and every other entry as
``seq, prev, entry_digest, hash`` only, so it can be verified end to end without showing anyone
else's evidence: change one byte of an entry and its digest, its hash and every later link break.

Appending is crash- and race-safe without transactions: the entry's sequence number is its ``_id``
(two writers cannot both take one), its event id is unique (an event is recorded once), and a head
hint only saves reading forward.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import load_pem_public_key

from kyso_contracts import CloudEvent, SignatureCompleted
from kyso_kit.clock import Clock
from kyso_kit.store import DuplicateKey, Store
from kyso_kit.timeutil import as_utc
from kyso_signing.pki import keys as pki
from kyso_signing.pki.keys import PrivateKey, PublicKey

log = logging.getLogger(__name__)

GENESIS = "0" * 64
_RACES = 64


def canonical(value: Any) -> bytes:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str).encode()


def entry_digest(entry: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(entry)).hexdigest()


def link(seq: int, prev: str, digest: str) -> str:
    return hashlib.sha256(f"kyso-audit-v1|{seq}|{prev}|{digest}".encode()).hexdigest()


def checkpoint_message(seq: int, head: str) -> bytes:
    return f"kyso-audit-checkpoint-v1|{seq}|{head}".encode()


class AuditLog:
    def __init__(self, store: Store, clock: Clock) -> None:
        self.log = store.collection("audit_log")
        self.state = store.collection("audit_state")
        self.checkpoints = store.collection("audit_checkpoints")
        self.requests = store.collection("signing_requests", events=True)
        self.clock = clock

    async def init(self) -> None:
        await self.log.ensure_index([("event_id", 1)], unique=True)
        await self.log.ensure_index([("account_id", 1)])

    async def head(self) -> tuple[int, str]:
        hint = await self.state.get("head")
        seq, h = (int(hint["seq"]), str(hint["hash"])) if hint else (0, GENESIS)
        while (nxt := await self.log.get(seq + 1)) is not None:  # the hint may lag behind
            seq, h = seq + 1, nxt["hash"]
        return seq, h

    async def append(self, entry: dict[str, Any], event_id: str, account_id: str) -> int:
        """Add ``entry`` (once per ``event_id``); its sequence number."""
        entry = json.loads(canonical(entry))  # exactly what is hashed is what is stored
        digest = entry_digest(entry)
        for _ in range(_RACES):
            seq, prev = await self.head()
            record = {
                "_id": seq + 1,
                "event_id": event_id,
                "account_id": account_id,
                "entry": entry,
                "entry_digest": digest,
                "prev": prev,
                "hash": link(seq + 1, prev, digest),
            }
            try:
                await self.log.insert(record)
            except DuplicateKey:
                if await self.log.find_one({"event_id": event_id}) is not None:
                    return -1  # recorded before
                continue  # another writer took this sequence number: read the head again
            await self.state.update(
                {"_id": "head"},
                {"$set": {"seq": seq + 1, "hash": record["hash"]}},
                upsert_with={"_id": "head"},
            )
            return seq + 1
        raise RuntimeError("the audit log kept moving under this append")

    async def when_signature_completed_record(self, event: CloudEvent[SignatureCompleted]) -> None:
        d = event.data
        req = await self.requests.get(d.request_id)
        ev = (req or {}).get("evidence", {})
        entry = {
            "kind": "signature",
            "request_id": d.request_id,
            "who": {
                "account_id": d.account_id,
                "citizen_id": ev.get("citizen_id"),
                "identity_assurance": ev.get("identity_assurance"),
            },
            "what": {
                "documents": [doc.model_dump() for doc in d.documents],
                "signature_algorithm": d.signature_algorithm,
                "certificate_serial": d.serial_number,
                "certificate_id": d.certificate_id,
            },
            "when": d.signed_at.isoformat(),
            "how": {
                "pin_verified": ev.get("pin_verified", True),
                "otp": ev.get("otp"),
                "confirmed_with": d.confirmed_with,
            },
            "relying_party": {
                "client_id": d.client_id,
                "client_name": (req or {}).get("client_name"),
                "client_address": ev.get("client_address"),
            },
            "app_address": ev.get("app_address"),
            "event_id": event.id,
        }
        await self.append(entry, event.id, d.account_id)

    async def sign_head(self, key: PrivateKey) -> int | None:
        """Sign the chain head if it moved since the last checkpoint; the head's sequence number."""
        seq, h = await self.head()
        if seq == 0 or await self.checkpoints.get(seq) is not None:
            return None
        signature = base64.b64encode(pki.sign(key, checkpoint_message(seq, h))).decode()
        try:
            await self.checkpoints.insert({"_id": seq, "hash": h, "signature_b64": signature, "at": self.clock.now()})
        except DuplicateKey:
            return None
        return seq

    async def export(self, account_id: str, seal_public_pem: str) -> dict[str, Any]:
        seq, _ = await self.head()
        entries = []
        for n in range(1, seq + 1):
            rec = await self.log.get(n)
            if rec is None:
                break
            item: dict[str, Any] = {k: rec[k] for k in ("prev", "entry_digest", "hash")} | {"seq": n}
            if rec["account_id"] == account_id:
                item["entry"] = rec["entry"]
            entries.append(item)
        checkpoints = [
            {"seq": c["_id"], "hash": c["hash"], "signature_b64": c["signature_b64"], "at": as_utc(c["at"]).isoformat()}
            for c in sorted(await self.checkpoints.find({}), key=lambda c: c["_id"])
        ]
        return {
            "account_id": account_id,
            "entries": entries,
            "checkpoints": checkpoints,
            "seal_public_key_pem": seal_public_pem,
        }


def verify_export(export: dict[str, Any]) -> list[str]:
    """Every problem found in an export (empty when the chain, the entries and the checkpoints hold)."""
    problems: list[str] = []
    prev, hashes = GENESIS, {}
    for item in export["entries"]:
        seq = item["seq"]
        if item["prev"] != prev:
            problems.append(f"entry {seq}: does not follow entry {seq - 1}")
        if "entry" in item and entry_digest(item["entry"]) != item["entry_digest"]:
            problems.append(f"entry {seq}: its content does not match its digest (altered)")
        if link(seq, item["prev"], item["entry_digest"]) != item["hash"]:
            problems.append(f"entry {seq}: its hash does not match (altered)")
        prev, hashes[seq] = item["hash"], item["hash"]
    key: PublicKey | None = None
    try:
        loaded = load_pem_public_key(export["seal_public_key_pem"].encode())
        if isinstance(loaded, ec.EllipticCurvePublicKey | rsa.RSAPublicKey):
            key = loaded
        else:
            problems.append("the seal public key is of an unknown kind")
    except ValueError:
        problems.append("the seal public key cannot be read")
    for c in export["checkpoints"]:
        if hashes.get(c["seq"]) != c["hash"]:
            problems.append(f"checkpoint {c['seq']}: the chain no longer has the signed head")
        if key is not None:
            try:
                pki.verify(key, base64.b64decode(c["signature_b64"]), checkpoint_message(c["seq"], c["hash"]))
            except InvalidSignature:
                problems.append(f"checkpoint {c['seq']}: the signature does not verify")
    return problems
