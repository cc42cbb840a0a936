"""The CSC API's routes (``/csc/v2/…``): parse the body the spec's way, call ``remote.csc.Csc``, answer the
spec's errors (``{"error", "error_description"}``) with the spec's statuses."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ValidationError

from kyso_kit.client_address import ClientAddresses
from kyso_kit.errors import DomainError, Unauthenticated
from kyso_signing.api.relying_parties import client_dependency, rp_bearer
from kyso_signing.remote.clients import Client, Clients
from kyso_signing.remote.csc import Csc
from kyso_signing.remote.csc_wire import (
    AuthorizeIn,
    CredentialInfoOut,
    CredentialListOut,
    CscError,
    CscErrorBody,
    HandleIn,
    HandleOut,
    InfoIn,
    InfoOut,
    InfoReq,
    ListIn,
    PollIn,
    SadOut,
    SignaturesOut,
    SignDocIn,
    SignDocOut,
    SignHashIn,
    TimestampIn,
    TimestampOut,
    invalid,
)

M = TypeVar("M", bound=BaseModel)


def _body(model: type[BaseModel], required: bool = True) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": required,
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{model.__name__}"}}},
        }
    }


CSC_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": CscErrorBody, "description": "invalid_request and the spec's other errors"},
    401: {"model": CscErrorBody, "description": "invalid_token"},
}


def _csc_error(exc: CscError) -> JSONResponse:
    headers = {"WWW-Authenticate": exc.challenge} if exc.status == 401 else {}
    return JSONResponse(
        {"error": exc.error, "error_description": exc.description}, status_code=exc.status, headers=headers
    )


def _translate(exc: DomainError) -> CscError:
    if isinstance(exc, Unauthenticated):
        return CscError(401, "invalid_token", exc.message_en, exc.challenge)
    return invalid(exc.message_en)


def router(
    csc: Csc, clients_dep: Callable[..., Awaitable[Client]], addresses: ClientAddresses | None = None
) -> APIRouter:
    """``addresses``: how a request's client address is found (behind TRUSTED_PROXIES only; None: the
    TCP peer), recorded with an authorisation as the relying party's address."""
    r = APIRouter(prefix="/csc/v2", tags=["CSC API v2"])
    where = addresses or ClientAddresses()

    async def parse(request: Request, model: type[M]) -> M:
        try:
            raw = await request.body()
            return model.model_validate(json.loads(raw) if raw.strip() else {})
        except (ValueError, ValidationError) as exc:
            first = exc.errors()[0] if isinstance(exc, ValidationError) else None
            where = ".".join(str(p) for p in first["loc"]) if first else "body"
            raise invalid(f"Invalid parameter {where}") from None

    async def guarded(call: Callable[[], Awaitable[JSONResponse]]) -> JSONResponse:
        try:
            return await call()
        except CscError as exc:
            return _csc_error(exc)
        except DomainError as exc:
            return _csc_error(_translate(exc))

    @r.post("/info", responses=CSC_ERRORS, openapi_extra=_body(InfoIn, required=False), response_model=InfoOut)
    async def info(request: Request) -> dict[str, Any]:
        """Who this service is and what it supports (the only mandatory method; no authentication), with
        where its OAuth 2.0 token endpoint is (``oauth2``). The body is optional (none is ``{}``); one
        that is there is a JSON object."""
        await parse(request, InfoIn)
        return csc.info(str(request.base_url))

    def method(
        path: str,
        model: type[BaseModel],
        out: type[BaseModel],
        summary: str,
        status_code: int = 200,
        more: dict[int | str, dict[str, Any]] | None = None,
    ) -> Callable[[Any], Any]:
        def register(fn: Callable[[Client, Any, Request], Awaitable[tuple[int, dict[str, Any]]]]) -> Any:
            @r.post(
                path,
                responses={**CSC_ERRORS, **(more or {})},
                openapi_extra=_body(model),
                summary=summary,
                response_model=out,
                status_code=status_code,
            )
            async def endpoint(request: Request, client: Client = Depends(clients_dep)) -> Any:
                async def run() -> JSONResponse:
                    status, out = await fn(client, await parse(request, model), request)
                    return JSONResponse(out, status_code=status)

                return await guarded(run)

            return endpoint

        return register

    @method("/credentials/list", ListIn, CredentialListOut, "The subscriber's credentials")
    async def credentials_list(client: Client, body: ListIn, _: Request) -> tuple[int, dict[str, Any]]:
        return 200, await csc.credentials(client, body)

    @method(
        "/credentials/info",
        InfoReq,
        CredentialInfoOut,
        "One credential: key, certificate (and chain), how it is authorised",
    )
    async def credentials_info(client: Client, body: InfoReq, _: Request) -> tuple[int, dict[str, Any]]:
        cert = await csc._credential(client, body.credentialID)
        return 200, csc.credential_info(cert, body.certificates, body.certInfo, body.authInfo)

    @method(
        "/credentials/authorize",
        AuthorizeIn,
        HandleOut,
        "Ask the subscriber to authorise these digests (202 + handle)",
        status_code=202,
    )
    async def credentials_authorize(client: Client, body: AuthorizeIn, request: Request) -> tuple[int, dict[str, Any]]:
        return 202, await csc.authorize(client, body, where.of(request))

    @method(
        "/credentials/authorizeCheck",
        HandleIn,
        SadOut,
        "202 while the subscriber decides, then the SAD",
        more={202: {"model": HandleOut, "description": "The subscriber has not decided yet: ask again"}},
    )
    async def credentials_authorize_check(client: Client, body: HandleIn, _: Request) -> tuple[int, dict[str, Any]]:
        return await csc.authorize_check(client, body)

    @method(
        "/signatures/signHash",
        SignHashIn,
        SignaturesOut,
        "Sign authorised digests with the SAD (sync, or async: operationMode A)",
    )
    async def signatures_sign_hash(client: Client, body: SignHashIn, _: Request) -> tuple[int, dict[str, Any]]:
        if body.operationMode not in ("S", "A"):
            raise invalid("Invalid parameter operationMode")
        if body.operationMode == "A":
            return 200, await csc.sign_hash_async(client, body)
        return 200, {"signatures": await csc.sign_hash(client, body)}

    @method("/signatures/signDoc", SignDocIn, SignDocOut, "PAdES signatures over authorised PDF digests")
    async def signatures_sign_doc(client: Client, body: SignDocIn, _: Request) -> tuple[int, dict[str, Any]]:
        return 200, await csc.sign_doc(client, body)

    @method("/signatures/signPolling", PollIn, SignaturesOut, "The result of an asynchronous signHash")
    async def signatures_sign_polling(client: Client, body: PollIn, _: Request) -> tuple[int, dict[str, Any]]:
        return 200, {"signatures": await csc.poll(client, body)}

    @method("/signatures/timestamp", TimestampIn, TimestampOut, "An RFC 3161 timestamp token over a digest")
    async def signatures_timestamp(client: Client, body: TimestampIn, _: Request) -> tuple[int, dict[str, Any]]:
        return 200, {"timestamp": csc.timestamp(body)}

    return r


def csc_client_dependency(clients: Clients) -> Callable[..., Awaitable[Client]]:
    """The relying party behind the bearer token, or the spec's 401 ``invalid_token``."""
    plain = client_dependency(clients)

    async def current(creds: HTTPAuthorizationCredentials | None = Depends(rp_bearer)) -> Client:
        try:
            return await plain(creds)
        except Unauthenticated as exc:  # no credentials at all: a bare "Bearer" challenge (RFC 6750 §3.1)
            raise CscError(401, "invalid_token", "A valid access token is required", exc.challenge) from None

    return current


async def csc_error_handler(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, CscError)
    return _csc_error(exc)
