"""The relying parties' API (SmartCA style) and the kyso app's side of remote signing.

Relying parties authenticate with OAuth 2.0 client credentials (``POST /v1/oauth2/token``) and see
only their own requests. The subscriber's PIN and one-time code are typed only in the kyso app: a
relying party never sends them (ETSI TS 119 432 rates the CSC "explicit" mode, where the relying
party collects the PIN, unsuitable for SCAL2).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Awaitable, Callable
from typing import Annotated, Any
from urllib.parse import unquote_plus

from fastapi import APIRouter, Depends, Header, Request
from fastapi.responses import JSONResponse, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from kyso_contracts.types import Id
from kyso_kit.auth import Principal, TokenVerifier, bearer_dependency, role_dependency
from kyso_kit.client_address import ClientAddresses
from kyso_kit.clock import Clock
from kyso_kit.errors import Invalid, Unauthenticated
from kyso_kit.openapi import errors
from kyso_kit.timeutil import as_utc
from kyso_signing.api.downloads import PDF_RESPONSE, pdf_response
from kyso_signing.flows.pdfs import PdfRequests
from kyso_signing.remote.clients import CallbackRefused, Client, Clients, OAuthError
from kyso_signing.remote.domain import Document
from kyso_signing.remote.requests import RemoteSigning
from kyso_signing.remote.views import (
    ConfirmRequest,
    OAuthErrorBody,
    PdfSigningRequestIn,
    RelyingPartyCreated,
    RelyingPartyRequest,
    SignatureEntry,
    SigningRequestCreated,
    SigningRequestIn,
    SigningRequestList,
    SigningRequestView,
    TokenRequest,
    TokenResponse,
)

rp_bearer = HTTPBearer(
    auto_error=False, description="A relying party's access token from `POST /v1/oauth2/token` (client credentials)"
)


def client_dependency(clients: Clients) -> Callable[..., Awaitable[Client]]:
    """The relying party behind the bearer token. A request with no credentials at all is challenged
    with a bare ``Bearer`` (RFC 6750 §3.1: no error code then); a wrong or expired token with
    ``Bearer error="invalid_token"``."""

    async def current(creds: HTTPAuthorizationCredentials | None = Depends(rp_bearer)) -> Client:
        client = None
        if creds is not None and creds.scheme.lower() == "bearer" and creds.credentials.strip():
            client = await clients.authenticate(creds.credentials.strip())
        if client is None:
            raise Unauthenticated(
                "invalid_token",
                "A valid relying-party access token is required",
                "Cần mã truy cập hợp lệ của bên sử dụng dịch vụ",
                challenge="Bearer" if creds is None else 'Bearer error="invalid_token"',
            )
        return client

    return current


def view(doc: dict[str, Any], *, for_relying_party: bool) -> SigningRequestView:
    """A request as its relying party or its subscriber sees it. The signatures of a CSC authorisation
    are never here (nor stored with the request): only ``signHash``/``signPolling``/``signDoc`` give
    them, against the SAD, while it is valid."""
    signed = doc["status"] == "signed"
    shown = signed and "csc" not in doc and "signatures_b64" in doc
    return SigningRequestView(
        request_id=doc["_id"],
        status=doc["status"],
        description=doc["description"],
        relying_party=doc.get("client_name", ""),
        certificate_id=doc["certificate_id"],
        certificate_serial=doc["serial_number"],
        documents_digest=doc["documents_digest"],
        created_at=as_utc(doc["created_at"]).isoformat(),
        expires_at=as_utc(doc["expires_at"]).isoformat(),
        signed_at=as_utc(doc["signed_at"]).isoformat() if signed else None,
        signatures=[
            SignatureEntry(
                label=d["label"],
                hash=d["hash_b64"],
                hash_algorithm=d["hash_algorithm"],
                signature=doc["signatures_b64"][i] if shown else None,
                signature_algorithm=doc["signature_algorithms"][i] if signed else None,
            )
            for i, d in enumerate(doc["documents"])
        ],
        otp_verified=None if for_relying_party else "otp" in doc,
    )


def created(doc: dict[str, Any], signed_pdf_url: str | None = None) -> SigningRequestCreated:
    return SigningRequestCreated(
        request_id=doc["_id"],
        status=doc["status"],
        certificate_id=doc["certificate_id"],
        documents_digest=doc["documents_digest"],
        expires_at=as_utc(doc["expires_at"]).isoformat(),
        signed_pdf_url=signed_pdf_url,
    )


NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}  # RFC 6749 §5.1, on every token answer


def oauth_error(exc: OAuthError) -> JSONResponse:
    headers = {"WWW-Authenticate": 'Basic realm="kyso"'} if exc.status == 401 else {}
    return JSONResponse(
        {"error": exc.error, "error_description": exc.description},
        status_code=exc.status,
        headers={**headers, **NO_STORE},
    )


def basic_credentials(authorization: str) -> tuple[str, str]:
    """RFC 6749 §2.3.1: base64 of ``client_id:client_secret``, each form-urlencoded first."""
    try:
        text = base64.b64decode(authorization[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        raise OAuthError(401, "invalid_client", "Client authentication failed") from None
    client_id, sep, client_secret = text.partition(":")
    if not sep:
        raise OAuthError(401, "invalid_client", "Client authentication failed")
    return unquote_plus(client_id), unquote_plus(client_secret)


TOKEN_REQUEST_REF = f"#/components/schemas/{TokenRequest.__name__}"  # bootstrap documents the model
TOKEN_FIELDS = ("grant_type", "client_id", "client_secret")


def _text(value: Any) -> str | None:
    """A form field's text; an uploaded file where text belongs counts as missing."""
    return value if isinstance(value, str) else None


def router(
    clients: Clients,
    remote: RemoteSigning,
    pdfs: PdfRequests,
    verifier: TokenVerifier,
    clock: Clock,
    addresses: ClientAddresses | None = None,
) -> APIRouter:
    """``addresses``: how a request's client address is found (the evidence records it); behind
    TRUSTED_PROXIES only, never from a header the client wrote. None: the TCP peer."""
    r = APIRouter()
    relying_party = client_dependency(clients)
    client_address = (addresses or ClientAddresses()).dependency()
    subscriber = bearer_dependency(verifier)
    operator = role_dependency(verifier, "operator")

    @r.post(
        "/v1/operator/relying-parties",
        tags=["operator"],
        status_code=201,
        responses=errors(401, 403, 422),
    )
    async def register_relying_party(
        body: RelyingPartyRequest, who: Principal = Depends(operator)
    ) -> RelyingPartyCreated:
        """Register an integrator: its client id and secret and its webhook signing key are shown once.
        ``allowed_origins`` are the only places kyso will send requests for it (webhook, CSC
        ``response_uri``); a URL kyso would not call is refused here (422 ``invalid_callback_url``)."""
        try:
            created = await clients.register(body.name, body.webhook_url, body.allowed_origins)
        except CallbackRefused as exc:
            raise Invalid(
                "invalid_callback_url",
                f"kyso does not send requests there: {exc}",
                "Địa chỉ webhook hoặc nguồn gốc (origin) không được chấp nhận",
            ) from None
        return RelyingPartyCreated(**created)

    @r.post(
        "/v1/oauth2/token",
        tags=["relying parties"],
        response_model=TokenResponse,
        responses={
            400: {"description": "RFC 6749 §5.2 error", "model": OAuthErrorBody},
            401: {"description": "RFC 6749 §5.2 invalid_client", "model": OAuthErrorBody},
        },
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/x-www-form-urlencoded": {"schema": {"$ref": TOKEN_REQUEST_REF}}},
            }
        },
    )
    async def token(
        request: Request, authorization: Annotated[str | None, Header(include_in_schema=False)] = None
    ) -> Any:
        """OAuth 2.0 client credentials (RFC 6749 §4.4): HTTP Basic *or* form parameters, never both
        (§2.3: one authentication method per request). A missing or repeated parameter, or both
        methods at once: ``invalid_request``; every answer is ``Cache-Control: no-store``. The form is
        read here, not by the framework, so a missing ``grant_type`` is the RFC's 400 ``invalid_request``
        (the document declares it required, as it is) rather than a 422."""
        try:
            form = await request.form()
            repeated = [k for k in ("grant_type", "client_id", "client_secret") if len(form.getlist(k)) > 1]
            if repeated:  # §3.2: parameters MUST NOT be included more than once
                raise OAuthError(400, "invalid_request", f"The parameter {repeated[0]} is repeated")
            grant_type, client_id, client_secret = (_text(form.get(k)) for k in TOKEN_FIELDS)
            if authorization and authorization.lower().startswith("basic "):
                basic_id, basic_secret = basic_credentials(authorization)
                if client_secret is not None or (client_id is not None and client_id != basic_id):
                    raise OAuthError(
                        400, "invalid_request", "Authenticate with HTTP Basic or with form parameters, not both"
                    )
                client_id, client_secret = basic_id, basic_secret
            out = await clients.token(grant_type, client_id, client_secret)
        except OAuthError as exc:
            return oauth_error(exc)
        return JSONResponse(TokenResponse(**out).model_dump(), headers=NO_STORE)

    @r.post(
        "/v1/signing-requests",
        tags=["relying parties"],
        status_code=202,
        responses=errors(401, 404, 409, 422),
    )
    async def submit(
        body: SigningRequestIn, address: str = Depends(client_address), client: Client = Depends(relying_party)
    ) -> SigningRequestCreated:
        """Ask a subscriber to sign 1–50 document digests; the subscriber confirms in the kyso app."""
        doc = await remote.submit(
            client,
            [Document(d.label, d.hash, d.hash_algorithm) for d in body.documents],
            description=body.description,
            account_id=body.user_id,
            certificate_id=body.credential_id,
            client_address=address,
        )
        return created(doc)

    @r.post(
        "/v1/signing-requests/pdf",
        tags=["relying parties"],
        status_code=202,
        responses=errors(401, 404, 409, 413, 422),
    )
    async def submit_pdf(
        body: PdfSigningRequestIn, address: str = Depends(client_address), client: Client = Depends(relying_party)
    ) -> SigningRequestCreated:
        """Ask a subscriber to sign a PDF (PAdES, up to B-LTA): kyso adds the signature field, the subscriber
        confirms in the kyso app, then ``GET /v1/signing-requests/{id}/pdf`` gives the signed file. Not a PDF,
        an encrypted or damaged PDF: 422; over 10 MiB: 413; nothing is asked of the subscriber then."""
        try:
            pdf = base64.b64decode(body.pdf_base64, validate=True)
        except ValueError:
            raise Invalid(
                "invalid_base64", "pdf_base64 is not standard base64", "pdf_base64 không đúng base64"
            ) from None
        doc = await pdfs.submit(
            client,
            pdf,
            label=body.label,
            description=body.description,
            level=body.level,
            reason=body.reason,
            account_id=body.user_id,
            certificate_id=body.credential_id,
            client_address=address,
        )
        return created(doc, signed_pdf_url=f"/v1/signing-requests/{doc['_id']}/pdf")

    @r.get(
        "/v1/signing-requests/{request_id}/pdf",
        tags=["relying parties"],
        response_class=Response,
        responses={**PDF_RESPONSE, **errors(401, 404, 409, 422)},
    )
    async def signed_pdf(request_id: Id, client: Client = Depends(relying_party)) -> Response:
        """The signed PDF of a PDF request (409 until the subscriber has signed)."""
        return pdf_response(await pdfs.signed_pdf(client, request_id), f"{request_id}.pdf")

    @r.get("/v1/signing-requests/{request_id}", tags=["relying parties"], responses=errors(401, 404, 422))
    async def status(request_id: Id, client: Client = Depends(relying_party)) -> SigningRequestView:
        """The request's status and, once signed, the signatures in the order of the documents. A request
        made through the CSC API (``credentials/authorize``) shows its status only: its signatures are
        given by ``signatures/signHash`` (``signPolling``, ``signDoc``) against the SAD, never here."""
        return view(await remote.of_client(client, request_id), for_relying_party=True)

    # ------------------------------------------------------------------ the kyso app

    @r.get("/v1/me/signing-requests", tags=["remote signing"], responses=errors(401))
    async def pending(who: Principal = Depends(subscriber)) -> SigningRequestList:
        """What relying parties are waiting for the subscriber to confirm."""
        return SigningRequestList(requests=[view(d, for_relying_party=False) for d in await remote.pending(who)])

    @r.get("/v1/me/signing-requests/{request_id}", tags=["remote signing"], responses=errors(401, 403, 404, 422))
    async def one(request_id: Id, who: Principal = Depends(subscriber)) -> SigningRequestView:
        return view(await remote.of_subscriber(who, request_id), for_relying_party=False)

    @r.post(
        "/v1/me/signing-requests/{request_id}/confirmation",
        tags=["remote signing"],
        responses=errors(400, 401, 403, 404, 409, 422),
    )
    async def confirm(
        request_id: Id,
        body: ConfirmRequest,
        address: str = Depends(client_address),
        who: Principal = Depends(subscriber),
    ) -> SigningRequestView:
        """Sign: first verify a one-time code over ``documents_digest`` at the otp service (a SmartOTP
        transaction code with this request id as ``reference``, or an SMS code of purpose
        ``signature_confirmation`` bound to the digest), then send the signing PIN here."""
        return view(await remote.confirm(who, request_id, body.pin, address), for_relying_party=False)

    @r.post(
        "/v1/me/signing-requests/{request_id}/rejection",
        tags=["remote signing"],
        responses=errors(401, 403, 404, 409, 422),
    )
    async def reject(request_id: Id, who: Principal = Depends(subscriber)) -> SigningRequestView:
        return view(await remote.reject(who, request_id), for_relying_party=False)

    return r
