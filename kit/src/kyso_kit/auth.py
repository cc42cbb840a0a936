"""Who is calling, for the HTTP routes: FastAPI dependencies that turn a bearer token into a
:class:`~kyso_kit.policy.Principal` (any token, a role, a fresh credential, or none at all).

Tokens are made and checked in :mod:`kyso_kit.tokens` and the Principal with :func:`ensure_may` is in
:mod:`kyso_kit.policy`; neither imports FastAPI, so use cases depend on them and not on this module.
Their names are re-exported here for the routers and older imports.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from .clock import SYSTEM_CLOCK, Clock
from .errors import Unauthenticated, unauthorized
from .policy import ROLES, Action, Principal, Role, ensure_may, ensure_role, may
from .tokens import (
    ALGORITHMS,
    AUDIENCE,
    ISSUER,
    LEEWAY_SECONDS,
    FetchKeys,
    TokenIssuer,
    TokenVerifier,
    jwks_fetcher,
    jwt_id,
    public_pem_of,
)

__all__ = [
    "ALGORITHMS",
    "AUDIENCE",
    "ISSUER",
    "LEEWAY_SECONDS",
    "ROLES",
    "Action",
    "FetchKeys",
    "Principal",
    "Role",
    "TokenIssuer",
    "TokenVerifier",
    "bearer_dependency",
    "ensure_may",
    "ensure_role",
    "fresh_credential_dependency",
    "jwks_fetcher",
    "jwt_id",
    "may",
    "optional_bearer_dependency",
    "public_pem_of",
    "role_dependency",
]

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
