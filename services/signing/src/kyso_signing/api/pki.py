"""Public PKI endpoints, no authentication: CA certificates (AIA caIssuers), the provider's own
certificates (seal, timestamp authority, OCSP responder: what a relying party pins or inspects), CRLs
(cRLDistributionPoints) and the OCSP responder (RFC 6960 Appendix A: GET with the base64 request in the
path, or POST)."""

from __future__ import annotations

import base64
import binascii
import hashlib
from typing import Annotated, Any
from urllib.parse import unquote

from cryptography import x509
from fastapi import APIRouter, Header, Path, Request
from fastapi.responses import Response

from kyso_kit.clock import Clock
from kyso_kit.errors import NotFound
from kyso_kit.openapi import ErrorBody
from kyso_kit.timeutil import as_utc
from kyso_signing.pki import keys as pki
from kyso_signing.pki.authority import Authority
from kyso_signing.pki.crl import ISSUING, ROOT, RevocationLists, conditional_headers
from kyso_signing.pki.ocsp import Responder
from kyso_signing.pki.tsa import TimestampAuthority

MAX_OCSP_REQUEST = 16 * 1024
CRL_MAX_AGE = 60  # CRLs are regenerated at once on revocation, so caches revalidate soon
CERT_MAX_AGE = 86400
RESPONDER_MAX_AGE = 300  # the responder certificate is renewed every ~2/3 of its 48 h
DER_CERT = "application/pkix-cert"
DER_CRL = "application/pkix-crl"
OCSP_RESPONSE = "application/ocsp-response"
TIMESTAMP_REPLY = "application/timestamp-reply"


def _binary(media_type: str, description: str) -> dict[int | str, dict[str, Any]]:
    return {
        200: {"content": {media_type: {"schema": {"type": "string", "format": "binary"}}}, "description": description}
    }


def _not_modified(request: Request, etag: str) -> bool:
    return request.headers.get("if-none-match", "").strip() == f'"{etag}"'


def router(
    authority: Authority, crls: RevocationLists, responder: Responder, stamper: TimestampAuthority, clock: Clock
) -> APIRouter:
    r = APIRouter(tags=["pki"])

    def served(c: x509.Certificate, request: Request | None = None, max_age: int = CERT_MAX_AGE) -> Response:
        body = pki.der(c)
        etag = hashlib.sha256(body).hexdigest()[:32]
        headers = {"ETag": f'"{etag}"', "Cache-Control": f"public, max-age={max_age}"}
        if request is not None and _not_modified(request, etag):
            return Response(status_code=304, headers=headers)
        return Response(body, media_type=DER_CERT, headers=headers)

    def cert(which: str) -> Response:
        return served(authority.root_certificate if which == ROOT else authority.ca_certificate)

    @r.get("/pki/ca/root.cer", response_class=Response, responses=_binary(DER_CERT, "The root CA certificate (DER)"))
    async def root_certificate() -> Response:
        return cert(ROOT)

    @r.get(
        "/pki/ca/issuing.cer", response_class=Response, responses=_binary(DER_CERT, "The issuing CA certificate (DER)")
    )
    async def issuing_certificate() -> Response:
        return cert(ISSUING)

    @r.get(
        "/pki/provider/seal.cer",
        response_class=Response,
        responses=_binary(
            DER_CERT,
            "The provider's seal certificate (DER): a legal person's certificate (organizationIdentifier "
            "NTRVN-<MST>, UID=MST:<MST>) that seals service contracts and audit checkpoints",
        ),
    )
    async def seal_certificate(request: Request) -> Response:
        return served(authority.seal_certificate, request)

    @r.get(
        "/pki/provider/tsa.cer",
        response_class=Response,
        responses=_binary(
            DER_CERT, "The timestamp authority's certificate (DER; critical EKU id-kp-timeStamping, RFC 3161 §2.3)"
        ),
    )
    async def tsa_certificate(request: Request) -> Response:
        return served(authority.tsa_certificate, request)

    @r.get(
        "/pki/provider/ocsp-responder.cer",
        response_class=Response,
        responses=_binary(
            DER_CERT,
            "The current delegated OCSP responder certificate (DER; RFC 6960 §4.2.2.2). Short-lived and "
            "renewed automatically: OCSP answers also carry it",
        ),
    )
    async def responder_certificate(request: Request) -> Response:
        return served(authority.responder_certificate, request, RESPONDER_MAX_AGE)

    @r.get(
        "/pki/ca/chain.pem",
        response_class=Response,
        responses={
            200: {
                "content": {"application/pem-certificate-chain": {"schema": {"type": "string"}}},
                "description": "Issuing CA then root (PEM)",
            }
        },
    )
    async def chain() -> Response:
        return Response(authority.chain_pem, media_type="application/pem-certificate-chain")

    async def crl(which: str, request: Request) -> Response:
        doc = await crls.current(which)
        if doc is None:
            raise NotFound("crl_not_published", "No CRL is published yet", "Chưa công bố danh sách thu hồi")
        etag = f"{which}-{doc['number']}"
        remaining = int((as_utc(doc["next_update"]) - clock.now()).total_seconds())
        headers = conditional_headers(etag, doc["this_update"], doc["next_update"], min(CRL_MAX_AGE, remaining))
        if _not_modified(request, etag):
            return Response(status_code=304, headers=headers)
        return Response(bytes(doc["der"]), media_type=DER_CRL, headers=headers)

    @r.get(
        "/pki/crl/issuing.crl", response_class=Response, responses=_binary(DER_CRL, "The issuing CA's full CRL (DER)")
    )
    async def issuing_crl(request: Request) -> Response:
        return await crl(ISSUING, request)

    @r.get("/pki/crl/root.crl", response_class=Response, responses=_binary(DER_CRL, "The root CA's ARL (DER)"))
    async def root_crl(request: Request) -> Response:
        return await crl(ROOT, request)

    async def answer(body: bytes, cacheable_get: bool) -> Response:
        a = await responder.respond(body)
        headers: dict[str, str] = {}
        if cacheable_get and a.cacheable:
            etag = hashlib.sha256(a.der).hexdigest()[:32]
            max_age = int((a.next_update - clock.now()).total_seconds())
            headers = conditional_headers(etag, a.produced_at, a.next_update, max_age)
        else:
            headers = {"Cache-Control": "no-store"}
        return Response(a.der, media_type=OCSP_RESPONSE, headers=headers)

    @r.post(
        "/tsa",
        response_class=Response,
        responses=_binary(TIMESTAMP_REPLY, "A TimeStampResp (RFC 3161); a refusal too is one"),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/timestamp-query": {"schema": {"type": "string", "format": "binary"}}},
            }
        },
    )
    async def timestamp(request: Request) -> Response:
        """The RFC 3161 timestamp authority (HTTP transport, RFC 3161 §3.4)."""
        body = await request.body()
        return Response(stamper.respond(body), media_type=TIMESTAMP_REPLY, headers={"Cache-Control": "no-store"})

    @r.post(
        "/ocsp",
        response_class=Response,
        responses=_binary(OCSP_RESPONSE, "An OCSP response (errors too are OCSP responses)"),
        openapi_extra={
            "requestBody": {
                "required": True,
                "content": {"application/ocsp-request": {"schema": {"type": "string", "format": "binary"}}},
            }
        },
    )
    async def ocsp_post(
        request: Request, content_length: Annotated[int | None, Header(include_in_schema=False)] = None
    ) -> Response:
        if content_length is not None and content_length > MAX_OCSP_REQUEST:
            return await answer(b"", False)
        body = await request.body()
        return await answer(body[: MAX_OCSP_REQUEST + 1] if len(body) <= MAX_OCSP_REQUEST else b"", False)

    @r.get(
        "/ocsp/{encoded:path}",
        response_class=Response,
        responses={
            **_binary(OCSP_RESPONSE, "An OCSP response (errors too are OCSP responses)"),
            404: {
                "model": ErrorBody,
                "description": "No such path: an `encoded` that is only dot segments (`..`) leaves `/ocsp/` once "
                "the client removes them (RFC 3986 §5.2.4); a real request is base64 and never one",
            },
        },
    )
    async def ocsp_get(
        encoded: Annotated[str, Path(description="The DER OCSPRequest in base64, URL-encoded (RFC 6960 appendix A.1)")],
    ) -> Response:
        text = unquote(encoded).strip()
        try:
            body = (
                base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
                if len(text) <= 2 * MAX_OCSP_REQUEST
                else b""
            )
        except (binascii.Error, ValueError):
            body = b""
        return await answer(body, True)

    return r
