"""Access tokens: ES256 JWTs made and checked with a maintained JOSE library (joserfc), issued by the
registration service and checked by every service against registration's JWKS (a ``kid`` in every
header, so signing keys can rotate). A token carries a :class:`~kyso_kit.policy.Principal`: the
account, an optional organisation and roles. No web framework here: use cases that issue or check
tokens import this module without FastAPI (the request dependencies are in :mod:`kyso_kit.auth`).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet

from .clock import SYSTEM_CLOCK, Clock
from .errors import unauthorized
from .policy import ROLES, Principal

log = logging.getLogger(__name__)

ISSUER = "kyso-registration"
AUDIENCE = "kyso"
LEEWAY_SECONDS = 30
ALGORITHMS = ["ES256"]


class TokenIssuer:
    def __init__(self, private_pem: str, ttl_seconds: int = 900, clock: Clock = SYSTEM_CLOCK) -> None:
        key = ECKey.import_key(private_pem)
        if key.curve_name != "P-256" or not key.is_private:
            raise ValueError("access-token key must be an EC P-256 private key")
        self._key = key
        self.kid = key.thumbprint()
        self.ttl = ttl_seconds
        self._clock = clock

    def issue(
        self,
        subject: str,
        *,
        roles: Iterable[str] = ("subscriber",),
        organisation_id: str | None = None,
        auth_time: int | None = None,
        amr: Iterable[str] = (),
    ) -> str:
        now = int(self._clock.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": subject,
            "iat": now,
            "exp": now + self.ttl,
            "jti": jwt_id(),
            "roles": sorted(set(roles)),
        }
        if organisation_id:
            claims["org"] = organisation_id
        if auth_time is not None:
            claims["auth_time"] = auth_time
        if amr:
            claims["amr"] = list(amr)
        return jwt.encode({"alg": "ES256", "typ": "JWT", "kid": self.kid}, claims, self._key, algorithms=ALGORITHMS)

    def jwks(self) -> dict[str, Any]:
        """The public half as a JWK Set (RFC 7517), for every service that checks tokens."""
        public = ECKey.import_key(self._key.as_dict(private=False))
        return dict(KeySet([public]).as_dict(private=False, kid=self.kid, use="sig", alg="ES256"))


def jwt_id() -> str:
    import uuid

    return uuid.uuid4().hex


FetchKeys = Callable[[], Awaitable[dict[str, Any]]]


def _key_set(keys: str | dict[str, Any]) -> KeySet:
    if isinstance(keys, str):
        key = ECKey.import_key(keys)
        keys = {"keys": [key.as_dict(private=False, kid=key.thumbprint())]}
    key_set = KeySet.import_key_set(keys)  # type: ignore[arg-type]
    for k in key_set:
        if not isinstance(k, ECKey) or k.curve_name != "P-256":
            raise ValueError("access-token keys must be EC P-256 keys")
    return key_set


def jwks_fetcher(url: str, timeout: float = 3.0) -> FetchKeys:
    """Reads registration's JWKS (``/.well-known/jwks.json``) over HTTP."""

    async def fetch() -> dict[str, Any]:
        import httpx

        async with httpx.AsyncClient(timeout=timeout) as client:
            resp = await client.get(url)
            resp.raise_for_status()
            keys: dict[str, Any] = resp.json()
            return keys

    return fetch


class TokenVerifier:
    """Checks ES256 tokens against a JWK Set (or one PEM public key).

    With ``fetch`` (registration's JWKS URL), a token signed by a key it does not know yet makes it
    read the key set again — at most once per ``refresh_seconds`` — so signing keys can rotate
    without redeploying the services that check tokens."""

    def __init__(
        self,
        keys: str | dict[str, Any] | None,
        clock: Clock = SYSTEM_CLOCK,
        *,
        fetch: FetchKeys | None = None,
        refresh_seconds: float = 60.0,
    ) -> None:
        if keys is None and fetch is None:
            raise ValueError("token keys or a JWKS URL are needed")
        self._configured = list(_key_set(keys)) if keys is not None else []
        self._keys = KeySet(list(self._configured))
        self._fetch = fetch
        self._refresh_seconds = refresh_seconds
        self._fetched_at: float | None = None
        self._clock = clock
        self._claims = jwt.JWTClaimsRegistry(
            now=lambda: int(self._clock.time()),
            leeway=LEEWAY_SECONDS,
            iss={"essential": True, "value": ISSUER},
            aud={"essential": True, "value": AUDIENCE},
            sub={"essential": True},
            exp={"essential": True},
            iat={"essential": True},
        )

    async def check(self, token: str) -> Principal:
        """:meth:`verify`, first reading the JWKS again if the token names a key not known yet."""
        if self._fetch is not None and self._unknown_kid(token) and self._may_refresh():
            self._fetched_at = self._clock.time()
            try:
                # what registration publishes now replaces what it published before: a key it
                # withdrew (rotated out, compromised) stops verifying; configured keys stay
                fetched = list(_key_set(await self._fetch()))
                kids = {k.kid for k in fetched}
                self._keys = KeySet([*fetched, *(k for k in self._configured if k.kid not in kids)])
            except Exception as exc:  # the registration service is unreachable: keep the keys we have
                log.warning("could not read the token keys: %r", exc)
        return self.verify(token)

    def _unknown_kid(self, token: str) -> bool:
        import base64
        import json

        try:
            header = json.loads(base64.urlsafe_b64decode(token.split(".")[0] + "=="))
        except (ValueError, IndexError):
            return False
        kid = header.get("kid") if isinstance(header, dict) else None
        return isinstance(kid, str) and all(k.kid != kid for k in self._keys)

    def _may_refresh(self) -> bool:
        return self._fetched_at is None or self._clock.time() - self._fetched_at >= self._refresh_seconds

    def verify(self, token: str) -> Principal:
        try:
            decoded = jwt.decode(token, self._keys, algorithms=ALGORITHMS)
            if decoded.header.get("typ") != "JWT":
                raise unauthorized()
            claims = decoded.claims
            self._claims.validate(claims)
            if claims["iat"] - LEEWAY_SECONDS > self._clock.time() or not isinstance(claims["sub"], str):
                raise unauthorized()
            roles = claims.get("roles", ["subscriber"])
            if not isinstance(roles, list) or not all(r in ROLES for r in roles):
                raise unauthorized()
        except (JoseError, ValueError, KeyError, TypeError) as exc:
            raise unauthorized() from exc
        auth_time = claims.get("auth_time")
        return Principal(
            account_id=claims["sub"],
            roles=frozenset(roles),
            organisation_id=claims.get("org"),
            auth_time=auth_time if isinstance(auth_time, int) else None,
            amr=tuple(claims.get("amr") or ()),
        )


def public_pem_of(private_pem: str) -> str:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
