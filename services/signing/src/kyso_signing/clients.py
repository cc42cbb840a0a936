"""Relying parties (integrators) and their OAuth 2.0 client-credentials tokens (RFC 6749 §4.4).

An operator registers a relying party: it gets a client id and secret for the API and a webhook
signing key (Standard Webhooks ``whsec_…``), each shown once. Secrets are 256-bit random values, so
a SHA-256 of the secret is what is kept (no slow hash is needed for a value nobody can guess); the
webhook key is kept sealed, since kyso must sign with it. Access tokens are opaque: their SHA-256
is the key of a record that says whose they are and until when.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from kyso_kit.clock import Clock
from kyso_kit.crypto import SecretBox
from kyso_kit.errors import Invalid, not_found
from kyso_kit.store import Doc, Store
from kyso_kit.timeutil import as_utc

TOKEN_TTL = timedelta(hours=1)
REMEMBER = timedelta(seconds=30)
KNOWN_MAX = 10_000


@dataclass(frozen=True)
class Client:
    client_id: str
    name: str


def _sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class OAuthError(Exception):
    """An RFC 6749 §5.2 error: ``{"error": code, "error_description": …}``."""

    def __init__(self, status: int, error: str, description: str) -> None:
        super().__init__(description)
        self.status, self.error, self.description = status, error, description


class Clients:
    def __init__(self, store: Store, box: SecretBox, clock: Clock) -> None:
        self.clients = store.collection("clients")
        self.tokens = store.collection("client_tokens")
        self.box = box
        self.clock = clock
        self._known: dict[str, tuple[Client, datetime]] = {}

    async def register(self, name: str, webhook_url: str | None) -> dict[str, Any]:
        client_id = uuid.uuid4().hex
        secret = secrets.token_urlsafe(32)
        webhook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        await self.clients.insert(
            {
                "_id": client_id,
                "name": name,
                "secret_sha256": _sha(secret),
                "webhook_url": webhook_url,
                "webhook_secret": self.box.seal(webhook_secret.encode(), aad=f"webhook:{client_id}"),
                "active": True,
                "created_at": self.clock.now(),
            }
        )
        return {
            "client_id": client_id,
            "client_secret": secret,
            "webhook_secret": webhook_secret,
            "name": name,
            "webhook_url": webhook_url,
        }

    async def get(self, client_id: str) -> Doc:
        doc = await self.clients.get(client_id)
        if doc is None:
            raise not_found("relying_party", "bên sử dụng dịch vụ")
        return doc

    def webhook_secret(self, doc: Doc) -> str:
        return self.box.open(doc["webhook_secret"], aad=f"webhook:{doc['_id']}").decode()

    async def token(self, grant_type: str | None, client_id: str | None, client_secret: str | None) -> dict[str, Any]:
        if grant_type != "client_credentials":
            raise OAuthError(400, "unsupported_grant_type", "Only the client_credentials grant is supported")
        if not client_id or not client_secret:
            raise OAuthError(401, "invalid_client", "Client authentication failed")
        doc = await self.clients.get(client_id) if len(client_id) <= 64 else None
        if doc is None or not doc.get("active") or not hmac.compare_digest(doc["secret_sha256"], _sha(client_secret)):
            raise OAuthError(401, "invalid_client", "Client authentication failed")
        token = secrets.token_urlsafe(32)
        expires = self.clock.now() + TOKEN_TTL
        await self.tokens.insert({"_id": _sha(token), "client_id": client_id, "expires_at": expires})
        return {"access_token": token, "token_type": "Bearer", "expires_in": int(TOKEN_TTL.total_seconds())}

    async def authenticate(self, token: str) -> Client | None:
        """The client a token belongs to. A known token is remembered for at most ``REMEMBER`` (and never
        past its expiry), so a busy integrator costs no database reads per call; a client switched off
        is refused within that time."""
        key, now = _sha(token), self.clock.now()
        hit = self._known.get(key)
        if hit is not None and now < hit[1]:
            return hit[0]
        doc = await self.tokens.get(key)
        if doc is None or as_utc(doc["expires_at"]) <= now:
            return None
        client = await self.clients.get(doc["client_id"])
        if client is None or not client.get("active"):
            return None
        known = Client(client["_id"], client["name"])
        if len(self._known) >= KNOWN_MAX:
            self._known.clear()
        self._known[key] = (known, min(as_utc(doc["expires_at"]), now + REMEMBER))
        return known

    async def forget_expired_tokens(self) -> int:
        return await self.tokens.delete_many({"expires_at": {"$lte": self.clock.now()}})


def check_webhook_url(url: str | None) -> str | None:
    if url is None:
        return None
    if not url.startswith(("https://", "http://")) or len(url) > 2000:
        raise Invalid("invalid_webhook_url", "The webhook URL must be an http(s) URL", "Địa chỉ webhook không hợp lệ")
    return url
