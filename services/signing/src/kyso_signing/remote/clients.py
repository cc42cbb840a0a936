"""Relying parties (integrators) and their OAuth 2.0 client-credentials tokens (RFC 6749 §4.4).

An operator registers a relying party: it gets a client id and secret for the API and a webhook
signing key (Standard Webhooks ``whsec_…``), each shown once. Secrets are 256-bit random values, so
a SHA-256 of the secret is what is kept (no slow hash is needed for a value nobody can guess); the
webhook key is kept sealed, since kyso must sign with it. Access tokens are opaque: their SHA-256
is the key of a record that says whose they are and until when.

kyso makes requests to a relying party's addresses (its webhook, a CSC ``response_uri``), from the
service that holds the keys: so only to the origins registered for it (``allowed_origins``), over
http(s), and in production never to a loopback, link-local or private address — checked on the URL
and again on the address its host resolves to when kyso connects (``callback_target``).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import secrets
import socket
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from kyso_kit.clock import Clock
from kyso_kit.crypto import SecretBox
from kyso_kit.errors import not_found
from kyso_kit.store import Doc, Store
from kyso_kit.timeutil import as_utc

TOKEN_TTL = timedelta(hours=1)
REMEMBER = timedelta(seconds=30)
KNOWN_MAX = 10_000
MAX_ORIGINS = 10
DEFAULT_PORTS = {"http": 80, "https": 443}

Resolve = Callable[[str, int], Awaitable[list[str]]]


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


class CallbackRefused(ValueError):
    """kyso will not send a request to this address; the message says why (in English)."""


@dataclass(frozen=True)
class Target:
    """Where a callback goes: its URL, and in production the checked address kyso connects to (so the
    host cannot resolve to another, private, address between the check and the connection)."""

    url: str
    host: str
    port: int
    address: str | None = None


@dataclass(frozen=True)
class _Url:
    scheme: str
    host: str
    port: int

    @property
    def origin(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        default = DEFAULT_PORTS[self.scheme] == self.port
        return f"{self.scheme}://{host}" if default else f"{self.scheme}://{host}:{self.port}"


def _parse(url: str, *, origin_only: bool) -> _Url:
    if len(url) > 2000:
        raise CallbackRefused("the URL is too long")
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        raise CallbackRefused("not a URL") from None
    scheme = parts.scheme.lower()
    if scheme not in DEFAULT_PORTS:
        raise CallbackRefused("only http and https URLs")
    if not parts.hostname or "@" in parts.netloc:
        raise CallbackRefused("a URL needs a host and no user name or password")
    if origin_only and (parts.path not in ("", "/") or parts.query or parts.fragment):
        raise CallbackRefused("an origin is scheme://host[:port], without a path")
    return _Url(scheme, parts.hostname.lower().rstrip("."), port or DEFAULT_PORTS[scheme])


def origin_of(url: str) -> str:
    """The RFC 6454 origin of an http(s) URL, written the one way kyso compares: lower case, no
    default port (``https://RP.example.vn:443/x`` → ``https://rp.example.vn``)."""
    return _parse(url, origin_only=False).origin


def _public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def _literal(host: str) -> str | None:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


async def system_resolve(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


class Clients:
    def __init__(
        self,
        store: Store,
        box: SecretBox,
        clock: Clock,
        *,
        public_callbacks_only: bool = False,
        resolve: Resolve = system_resolve,
    ) -> None:
        """``public_callbacks_only`` (the production profile): callbacks go only to public addresses."""
        self.clients = store.collection("clients")
        self.tokens = store.collection("client_tokens")
        self.box = box
        self.clock = clock
        self.public_callbacks_only = public_callbacks_only
        self.resolve = resolve
        self._known: dict[str, tuple[Client, datetime]] = {}

    # ------------------------------------------------------------------ where kyso may send requests

    def _static_check(self, url: _Url) -> None:
        if not self.public_callbacks_only:
            return
        literal = _literal(url.host)
        if url.host == "localhost" or url.host.endswith(".localhost") or (literal and not _public(literal)):
            raise CallbackRefused("a loopback, link-local or private address")

    def allowed_origins(self, origins: list[str], webhook_url: str | None) -> list[str]:
        """The allow-list a registration stores: the origins given (checked and normalised), or — none
        given — the webhook URL's own origin. A webhook URL outside the list is refused."""
        out: list[str] = []
        for text in origins:
            url = _parse(text, origin_only=True)
            self._static_check(url)
            if url.origin not in out:
                out.append(url.origin)
        if len(out) > MAX_ORIGINS:
            raise CallbackRefused(f"at most {MAX_ORIGINS} origins")
        if webhook_url is not None:
            hook = _parse(webhook_url, origin_only=False)
            self._static_check(hook)
            if not origins:
                out = [hook.origin]
            elif hook.origin not in out:
                raise CallbackRefused("the webhook URL is not on an allowed origin")
        return out

    @staticmethod
    def origins_of(doc: Doc) -> list[str]:
        """A relying party's allow-list (registrations made before it existed: the webhook's origin)."""
        if "allowed_origins" in doc:
            return list(doc["allowed_origins"])
        try:
            return [origin_of(doc["webhook_url"])] if doc.get("webhook_url") else []
        except CallbackRefused:
            return []

    async def callback_target(self, doc: Doc, url: str) -> Target:
        """Where a request to ``url`` for the relying party ``doc`` may go, or ``CallbackRefused``: an
        http(s) URL on one of its origins and, in production, a host whose every address is public
        (the address returned is the one to connect to)."""
        parsed = _parse(url, origin_only=False)
        if parsed.origin not in self.origins_of(doc):
            raise CallbackRefused("not on an origin registered for this relying party")
        self._static_check(parsed)
        if not self.public_callbacks_only:
            return Target(url, parsed.host, parsed.port)
        literal = _literal(parsed.host)
        try:
            addresses = [literal] if literal else await self.resolve(parsed.host, parsed.port)
        except OSError:
            raise CallbackRefused("the host does not resolve") from None
        if not addresses:
            raise CallbackRefused("the host does not resolve")
        if not all(_public(a) for a in addresses):
            raise CallbackRefused("the host resolves to a loopback, link-local or private address")
        return Target(url, parsed.host, parsed.port, addresses[0])

    # ------------------------------------------------------------------ registration and tokens

    async def register(self, name: str, webhook_url: str | None, origins: list[str] | None = None) -> dict[str, Any]:
        """Raises ``CallbackRefused`` for a webhook URL or an origin kyso would not call."""
        allowed = self.allowed_origins(origins or [], webhook_url)
        client_id = uuid.uuid4().hex
        secret = secrets.token_urlsafe(32)
        webhook_secret = "whsec_" + base64.b64encode(secrets.token_bytes(32)).decode()
        await self.clients.insert(
            {
                "_id": client_id,
                "name": name,
                "secret_sha256": _sha(secret),
                "webhook_url": webhook_url,
                "allowed_origins": allowed,
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
            "allowed_origins": allowed,
        }

    async def get(self, client_id: str) -> Doc:
        doc = await self.clients.get(client_id)
        if doc is None:
            raise not_found("relying_party", "bên sử dụng dịch vụ")
        return doc

    def webhook_secret(self, doc: Doc) -> str:
        return self.box.open(doc["webhook_secret"], aad=f"webhook:{doc['_id']}").decode()

    async def token(self, grant_type: str | None, client_id: str | None, client_secret: str | None) -> dict[str, Any]:
        if not grant_type:
            raise OAuthError(400, "invalid_request", "The grant_type parameter is missing")  # RFC 6749 §5.2
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
