"""Access tokens: compact ES256 JWTs issued by registration and checked by every service.

Small on purpose: one algorithm (ES256), fixed header, required ``iss``/``aud``/``sub``/``exp``/``iat``,
and a narrow clock leeway. Anything else is rejected.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from fastapi import Request

from .errors import ApiError

ISSUER = "kyso-registration"
AUDIENCE = "kyso"
LEEWAY_SECONDS = 30
_HEADER = {"alg": "ES256", "typ": "JWT"}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(data: str) -> bytes:
    return base64.urlsafe_b64decode(data + "=" * (-len(data) % 4))


class TokenIssuer:
    def __init__(self, private_pem: str, ttl_seconds: int = 900) -> None:
        key = serialization.load_pem_private_key(private_pem.encode(), password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
            raise ValueError("access-token key must be an EC P-256 private key")
        self._key = key
        self.ttl = ttl_seconds

    def issue(self, subject: str, **claims: Any) -> str:
        now = int(time.time())
        body = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": subject,
            "iat": now,
            "exp": now + self.ttl,
            "jti": uuid.uuid4().hex,
            **claims,
        }
        signing_input = f"{_b64(json.dumps(_HEADER).encode())}.{_b64(json.dumps(body).encode())}"
        der = self._key.sign(signing_input.encode(), ec.ECDSA(hashes.SHA256()))
        r, s = decode_dss_signature(der)
        return f"{signing_input}.{_b64(r.to_bytes(32, 'big') + s.to_bytes(32, 'big'))}"


class TokenVerifier:
    def __init__(self, public_pem: str) -> None:
        key = serialization.load_pem_public_key(public_pem.encode())
        if not isinstance(key, ec.EllipticCurvePublicKey):
            raise ValueError("access-token key must be an EC public key")
        self._key = key

    def verify(self, token: str) -> dict[str, Any]:
        try:
            header_b64, body_b64, sig_b64 = token.split(".")
            header = json.loads(_unb64(header_b64))
            if header != _HEADER:
                raise ValueError("header")
            sig = _unb64(sig_b64)
            if len(sig) != 64:
                raise ValueError("signature length")
            der = encode_dss_signature(int.from_bytes(sig[:32], "big"), int.from_bytes(sig[32:], "big"))
            self._key.verify(der, f"{header_b64}.{body_b64}".encode(), ec.ECDSA(hashes.SHA256()))
            claims: dict[str, Any] = json.loads(_unb64(body_b64))
        except (ValueError, InvalidSignature, json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise unauthorized() from exc
        now = time.time()
        if (
            claims.get("iss") != ISSUER
            or claims.get("aud") != AUDIENCE
            or not isinstance(claims.get("sub"), str)
            or not isinstance(claims.get("exp"), int)
            or claims["exp"] + LEEWAY_SECONDS < now
            or claims.get("iat", 0) - LEEWAY_SECONDS > now
        ):
            raise unauthorized()
        return claims


def unauthorized() -> ApiError:
    return ApiError(
        401,
        "unauthorized",
        "Sign in again: the access token is missing, invalid or expired",
        "Phiên đăng nhập không hợp lệ hoặc đã hết hạn, vui lòng đăng nhập lại",
        headers={"WWW-Authenticate": "Bearer"},
    )


def forbidden() -> ApiError:
    return ApiError(
        403, "forbidden", "This resource belongs to another account", "Tài nguyên này thuộc về tài khoản khác"
    )


def _bearer_token(request: Request) -> str:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise unauthorized()
    return token.strip()


def bearer_dependency(verifier: TokenVerifier) -> Callable[[Request], Awaitable[str]]:
    """A FastAPI dependency giving the authenticated account id (``Depends(bearer_dependency(v))``)."""

    async def current_account(request: Request) -> str:
        return str(verifier.verify(_bearer_token(request))["sub"])

    return current_account


def public_pem_of(private_pem: str) -> str:
    key = serialization.load_pem_private_key(private_pem.encode(), password=None)
    return (
        key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode()
    )


def fresh_credential_dependency(
    verifier: TokenVerifier, max_age_seconds: int = 300
) -> Callable[[Request], Awaitable[str]]:
    """The account id, only if the password was entered within ``max_age_seconds`` (OIDC ``max_age``).

    Sensitive changes (OTP method, SmartOTP enrolment, PIN reset, unlock) need a fresh credential,
    not merely a valid session.
    """

    async def fresh_account(request: Request) -> str:
        claims = verifier.verify(_bearer_token(request))
        auth_time = claims.get("auth_time")
        if (
            not isinstance(auth_time, int)
            or auth_time + max_age_seconds < time.time()
            or "pwd" not in claims.get("amr", [])
        ):
            raise ApiError(
                401,
                "fresh_credential_required",
                "Enter your account password again to continue",
                "Vui lòng nhập lại mật khẩu tài khoản để tiếp tục",
                headers={"WWW-Authenticate": 'Bearer error="insufficient_user_authentication"'},
            )
        return str(claims["sub"])

    return fresh_account


def optional_bearer_dependency(verifier: TokenVerifier) -> Callable[[Request], Awaitable[str | None]]:
    """Like :func:`bearer_dependency`, but ``None`` when no Authorization header is sent at all."""
    required = bearer_dependency(verifier)

    async def maybe_account(request: Request) -> str | None:
        if "Authorization" not in request.headers:
            return None
        return await required(request)

    return maybe_account
