"""Signed webhooks to relying parties (the Standard Webhooks scheme, as the CSC spec defines none).

Each outcome of a signing request (signed, rejected, expired) becomes one delivery record, made once
per event (``caused_by``), then POSTed to the relying party's URL with

    webhook-id: <the event id — the same on every retry, so the receiver can deduplicate>
    webhook-timestamp: <unix seconds — the receiver rejects old ones, so a replay fails>
    webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>

and retried with exponential backoff (1 s, 2 s, 4 s … capped at 10 min) until a 2xx answer or
``MAX_ATTEMPTS``. A delivery is claimed with a guarded write before it is sent, so two instances
never send one attempt twice.

A request made through the CSC API gets its outcome only: its signatures leave kyso through
``signatures/signHash`` (``signPolling``, ``signDoc``) against a valid SAD, not by push. Every
delivery goes only to an origin registered for the relying party, redirects are not followed, and
in production the host's address is checked (public only) when kyso connects, and connected to as
checked (``Clients.callback_target``); a delivery refused there is not retried.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

import httpx

from kyso_contracts import CloudEvent, SignatureCompleted
from kyso_kit.clock import Clock
from kyso_kit.crypto import same_text
from kyso_kit.store import Doc, DuplicateKey, Store
from kyso_kit.timeutil import as_utc
from kyso_signing.remote.clients import CallbackRefused, Clients, Target

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 12
MAX_BACKOFF = timedelta(minutes=10)
CLAIM = timedelta(seconds=30)  # a claimed delivery whose sender died is retried after this

Post = Callable[[Target, bytes, dict[str, str]], Awaitable[int]]


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix("whsec_"))
    mac = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def verify(secret: str, headers: dict[str, str], body: bytes, now: float, tolerance: float = 300) -> bool:
    """What a relying party runs on receipt (also in the SDK): the signature, and a fresh timestamp."""
    try:
        ts = int(headers["webhook-timestamp"])
        expected = sign(secret, headers["webhook-id"], ts, body)
    except (KeyError, ValueError):
        return False
    if abs(now - ts) > tolerance:
        return False
    return any(same_text(s, expected) for s in headers.get("webhook-signature", "").split())


def payload(event: CloudEvent[Any], *, with_signatures: bool = True) -> dict[str, Any]:
    """``with_signatures`` is False for a CSC authorisation: its webhook says what happened, and the
    signatures are for ``signHash`` to give against the SAD."""
    d = event.data
    body: dict[str, Any] = {
        "type": event.type,
        "request_id": d.request_id,
        "status": {"SignatureCompleted": "signed", "SignatureRejected": "rejected"}.get(type(d).__name__, "expired"),
        "at": event.time.isoformat(),
    }
    if isinstance(d, SignatureCompleted):
        body["certificate_serial"] = d.serial_number
        body["signature_algorithm"] = d.signature_algorithm
    if isinstance(d, SignatureCompleted) and with_signatures and d.signatures_b64:
        body["signatures"] = [
            {"label": doc.label, "hash": doc.hash_b64, "signature": sig}
            for doc, sig in zip(d.documents, d.signatures_b64, strict=True)
        ]
    return body


class Webhooks:
    def __init__(self, store: Store, clients: Clients, clock: Clock, post: Post | None = None) -> None:
        self.deliveries = store.collection("webhook_deliveries")
        self.requests = store.collection("signing_requests", events=True)
        self.clients = clients
        self.clock = clock
        self._post = post or self._http_post
        self._http: httpx.AsyncClient | None = None

    async def init(self) -> None:
        await self.deliveries.ensure_index([("status", 1)])

    async def _http_post(self, target: Target, body: bytes, headers: dict[str, str]) -> int:
        """POST, following no redirect; to the checked address when there is one (the URL's host still
        names the server: ``Host`` and, for https, SNI and the certificate check)."""
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=10, follow_redirects=False)
        url, extensions = httpx.URL(target.url), {}
        if target.address is not None:
            extensions["sni_hostname"] = target.host
            headers = {**headers, "host": url.netloc.decode("ascii")}
            url = url.copy_with(host=target.address)
        r = await self._http.post(url, content=body, headers=headers, extensions=extensions, follow_redirects=False)
        return r.status_code

    async def when_signing_request_ended_notify(self, event: CloudEvent[Any]) -> None:
        client = await self.clients.clients.get(event.data.client_id)
        if client is None or not client.get("webhook_url"):
            return
        request = await self.requests.get(event.data.request_id, {"csc": 1})
        csc = request is None or "csc" in request  # not found: say less, not more
        body = json.dumps(payload(event, with_signatures=not csc), separators=(",", ":"), ensure_ascii=False)
        await self.enqueue(client["_id"], client["webhook_url"], body, event.id)

    async def enqueue(self, client_id: str, url: str, body: str, delivery_id: str) -> None:
        """Deliver ``body`` to ``url`` signed with the client's key; once per ``delivery_id``."""
        try:
            await self.deliveries.insert(
                {
                    "_id": delivery_id,
                    "client_id": client_id,
                    "url": url,
                    "body": body,
                    "status": "pending",
                    "attempts": 0,
                    "next_at": self.clock.now(),
                    "created_at": self.clock.now(),
                }
            )
        except DuplicateKey:
            return
        await self.deliver_due()

    async def deliver_due(self) -> int:
        now, sent = self.clock.now(), 0
        for doc in await self.deliveries.find({"status": "pending"}):
            if as_utc(doc["next_at"]) <= now:
                sent += await self._attempt(doc)
        return sent

    async def _attempt(self, doc: Doc) -> int:
        now = self.clock.now()
        claimed = await self.deliveries.update(
            {"_id": doc["_id"], "status": "pending", "attempts": doc["attempts"]},
            {"$set": {"next_at": now + CLAIM, "attempts": doc["attempts"] + 1}},
        )
        if not claimed:
            return 0  # another instance took this attempt
        client = await self.clients.clients.get(doc["client_id"])
        if client is None:
            return 0
        try:
            target = await self.clients.callback_target(client, doc["url"])
        except CallbackRefused as exc:  # not an address kyso sends to (now): never retried
            log.warning("webhook delivery refused", extra={"delivery": doc["_id"], "reason": str(exc)})
            await self.deliveries.update(
                {"_id": doc["_id"]}, {"$set": {"status": "refused", "refused_because": str(exc)}}
            )
            return 0
        ts = int(now.timestamp())
        body = doc["body"].encode()
        headers = {
            "content-type": "application/json",
            "webhook-id": doc["_id"],
            "webhook-timestamp": str(ts),
            "webhook-signature": sign(self.clients.webhook_secret(client), doc["_id"], ts, body),
        }
        try:
            status = await self._post(target, body, headers)
        except Exception as exc:  # the receiver is down: retried
            status = 0
            log.info("webhook delivery failed", extra={"delivery": doc["_id"], "error": type(exc).__name__})
        attempts = doc["attempts"] + 1
        if 200 <= status < 300:
            await self.deliveries.update(
                {"_id": doc["_id"]}, {"$set": {"status": "delivered", "delivered_at": now, "last_status": status}}
            )
            return 1
        if attempts >= MAX_ATTEMPTS:
            await self.deliveries.update({"_id": doc["_id"]}, {"$set": {"status": "failed", "last_status": status}})
            return 0
        backoff = min(timedelta(seconds=2 ** (attempts - 1)), MAX_BACKOFF)
        await self.deliveries.update(
            {"_id": doc["_id"], "attempts": attempts}, {"$set": {"next_at": now + backoff, "last_status": status}}
        )
        return 0

    async def close(self) -> None:
        if self._http is not None:
            await self._http.aclose()
