"""Access tokens and who may do what.

Tokens are ES256 JWTs made and checked with a maintained JOSE library (joserfc), issued by the
registration service and checked by every service against registration's JWKS (a ``kid`` in every
header, so signing keys can rotate). A token carries a :class:`Principal`: the account, an optional
organisation and roles. :func:`ensure_may` is the one answer to "may this principal act on this
resource", used by every use case instead of hand-written owner checks.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet

from .clock import SYSTEM_CLOCK, Clock
from .errors import Forbidden, Unauthenticated, forbidden, unauthorized

log = logging.getLogger(__name__)

ISSUER = "kyso-registration"
AUDIENCE = "kyso"
LEEWAY_SECONDS = 30
ALGORITHMS = ["ES256"]

Role = Literal["subscriber", "sales_agent", "operator", "auditor"]
ROLES: tuple[Role, ...] = ("subscriber", "sales_agent", "operator", "auditor")


@dataclass(frozen=True)
class Principal:
    """Who is calling: an account, the organisation it acts for (if any) and its roles."""

    account_id: str
    roles: frozenset[str] = field(default_factory=lambda: frozenset({"subscriber"}))
    organisation_id: str | None = None
    auth_time: int | None = None
    amr: tuple[str, ...] = ()

    def has(self, role: Role) -> bool:
        return role in self.roles


Action = Literal["read", "write", "sign"]


def may(who: Principal, owner_account_id: str | None, action: Action = "write") -> bool:
    """May ``who`` act on a resource owned by ``owner_account_id``?

    The owner may; an operator may read or change anything but never ``sign`` (sole control of a
    signing key stays with its subscriber); an auditor may read anything.
    """
    if owner_account_id is not None and who.account_id == owner_account_id:
        return True
    if action == "sign":
        return False
    if who.has("operator"):
        return True
    return action == "read" and who.has("auditor")


def ensure_may(who: Principal, owner_account_id: str | None, action: Action = "write") -> None:
    if not may(who, owner_account_id, action):
        raise forbidden()


def ensure_role(who: Principal, role: Role) -> None:
    if not who.has(role):
        raise Forbidden("role_required", f"This needs the {role} role", "Bạn không có quyền thực hiện thao tác này")


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


# --------------------------------------------------------------------------- FastAPI dependencies

_bearer = HTTPBearer(auto_error=False, description="An access token from `POST /v1/sessions` (registration)")


def bearer_dependency(verifier: TokenVerifier) -> Callable[..., Awaitable[Principal]]:
    """A FastAPI dependency giving the authenticated principal; declares the bearer scheme in OpenAPI."""

    async def current(creds: HTTPAuthorizationCredentials | None = Depends(_bearer)) -> Principal:
        if creds is None or creds.scheme.lower() != "bearer" or not creds.credentials.strip():
            raise unauthorized()
        return await verifier.check(creds.credentials.strip())

    return current


def role_dependency(verifier: TokenVerifier, role: Role) -> Callable[..., Awaitable[Principal]]:
    authenticated = bearer_dependency(verifier)

    async def with_role(who: Principal = Depends(authenticated)) -> Principal:
        ensure_role(who, role)
        return who

    return with_role


def fresh_credential_dependency(
    verifier: TokenVerifier, max_age_seconds: int = 300, clock: Clock = SYSTEM_CLOCK
) -> Callable[..., Awaitable[Principal]]:
    """The principal, only if the password was entered within ``max_age_seconds`` (OIDC ``max_age``).

    Sensitive changes (OTP method, SmartOTP enrolment, PIN reset, unlock) need a fresh credential,
    not merely a valid session.
    """
    authenticated = bearer_dependency(verifier)

    async def fresh(who: Principal = Depends(authenticated)) -> Principal:
        if who.auth_time is None or who.auth_time + max_age_seconds < clock.time() or "pwd" not in who.amr:
            raise Unauthenticated(
                "fresh_credential_required",
                "Enter your account password again to continue",
                "Vui lòng nhập lại mật khẩu tài khoản để tiếp tục",
                challenge='Bearer error="insufficient_user_authentication"',
            )
        return who

    return fresh


def optional_bearer_dependency(verifier: TokenVerifier) -> Callable[..., Awaitable[Principal | None]]:
    """Like :func:`bearer_dependency`, but ``None`` when no Authorization header is sent at all.

    A route using it passes ``openapi_extra=kyso_kit.openapi.OPTIONAL_BEARER`` so that its OpenAPI
    operation says the token is optional (``security: [{}, {"HTTPBearer": []}]``)."""

    async def maybe(
        request: Request, creds: HTTPAuthorizationCredentials | None = Depends(_bearer)
    ) -> Principal | None:
        if "Authorization" not in request.headers:
            return None
        if creds is None:
            raise unauthorized()
        return await verifier.check(creds.credentials.strip())

    return maybe


def public_pem_of(private_pem: str) -> str:
    from cryptography.hazmat.primitives import serialization

    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )
