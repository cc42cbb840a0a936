"""The Cloud Signature Consortium API, version 2.0.0.2 (``/csc/v2/…``), for relying parties.

Authorisation is asynchronous and out of band, as in SmartCA: ``credentials/authorize`` names the
exact digests and answers 202 with a ``handle``; the subscriber confirms in the kyso app with the
signing PIN and a one-time code bound to those digests; ``credentials/authorizeCheck`` then answers
the SAD. The relying party never sends a PIN or an OTP (``authData`` objects are out of band: their
values must be empty). The SAD is server-side state: bound to the subscriber, the credential, this
client and the digests; valid 300 s; each digest is signed once. ``signatures/signHash`` works
synchronously or asynchronously (``operationMode`` "A", ``signatures/signPolling``). The signatures
of an authorisation leave kyso only here, against a valid SAD: a SAD ends (and its signatures are
destroyed) when it expires or the certificate's status changes, suspension included. An async
``response_uri`` must be on an origin registered for the relying party (``Clients.callback_target``).

Errors are the spec's: an HTTP status with ``{"error", "error_description"}``.
"""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp
from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse
from fastapi.security import HTTPAuthorizationCredentials
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from kyso_kit.client_address import ClientAddresses
from kyso_kit.clock import Clock
from kyso_kit.crypto import off_loop
from kyso_kit.errors import DomainError, NotFound, Unauthenticated
from kyso_kit.store import Doc, Store
from kyso_kit.timeutil import as_utc

from . import pades, pki, signer
from .authority import Authority
from .clients import CallbackRefused, Client, Clients
from .domain import CertificateStatus as S
from .ocsp import Responder
from .papers import Papers
from .pki import KeyAlgorithm
from .remote import MAX_DOCUMENTS, SIGNED, WAITING, Document, RemoteSigning, expires_in
from .rp_api import client_dependency, rp_bearer
from .schemas import ANY_DIGEST, DIGEST_PATTERNS, HTTP_URL, digest_rule
from .tsa import TimestampAuthority
from .webhooks import Webhooks

SPECS = "2.0.0.2"
LEVELS = ("Ades-B-B", "Ades-B-T", "Ades-B-LT")
_RACES = 16
M = TypeVar("M", bound=BaseModel)
CERT_STATUS = {
    S.ACTIVE: "valid",
    S.PENDING_ACTIVATION: "valid",
    S.SUSPENDED: "suspended",
    S.REVOKED: "revoked",
    S.EXPIRED: "expired",
}


class CscError(Exception):
    def __init__(
        self, status: int, error: str, description: str, challenge: str = 'Bearer error="invalid_token"'
    ) -> None:
        super().__init__(description)
        self.status, self.error, self.description = status, error, description
        self.challenge = challenge  # WWW-Authenticate of a 401


def invalid(description: str) -> CscError:
    return CscError(400, "invalid_request", description)


class CscErrorBody(BaseModel):
    error: str = Field(description="invalid_request · invalid_token · access_denied · server_error …")
    error_description: str | None = None


class _In(BaseModel):
    model_config = ConfigDict(extra="ignore")
    clientData: str | None = None


HASH_OIDS = {h.oid: h.name for h in signer.HASHES.values()}
SIGN_ALGOS = [*signer.ECDSA_WITH.values(), signer.RSASSA_PSS]
_DIGEST = {"type": "string", "pattern": ANY_DIGEST}


def _not_null(generated: dict[str, Any]) -> dict[str, Any]:
    """The non-null branch of an optional field's generated schema."""
    return next(b for b in generated.get("anyOf", [generated]) if b.get("type") != "null")


def _fields(
    **properties: dict[str, Any] | Callable[[dict[str, Any]], dict[str, Any]],
) -> Callable[[dict[str, Any]], None]:
    """``json_schema_extra``: narrow properties of the generated schema to what the service accepts, where
    the model is looser so that the service answers the spec's own error (CSC v2 §10: 400
    ``invalid_request``, "Invalid parameter …")."""

    def narrow(schema: dict[str, Any]) -> None:
        for name, rule in properties.items():
            generated = schema["properties"][name]
            schema["properties"][name] = {
                **{k: v for k, v in generated.items() if k in ("title", "description", "default") and v is not None},
                **(rule(generated) if callable(rule) else rule),
            }

    return narrow


def _rules(*steps: Callable[[dict[str, Any]], None] | dict[str, Any]) -> Callable[[dict[str, Any]], None]:
    def apply(schema: dict[str, Any]) -> None:
        for step in steps:
            if callable(step):
                step(schema)
            else:
                if "allOf" in step:
                    schema.setdefault("allOf", []).extend(step["allOf"])
                schema.update({k: v for k, v in step.items() if k != "allOf"})

    return apply


def _required(*names: str) -> dict[str, Any]:
    return {"required": list(names)}


class InfoIn(BaseModel):
    lang: str | None = None


class ListIn(_In):
    model_config = ConfigDict(
        json_schema_extra=_rules(
            _fields(userID={"type": "string", "minLength": 1, "maxLength": 64}), _required("userID")
        )
    )
    userID: str | None = Field(default=None, max_length=64, description="Required: whose credentials")
    credentialInfo: bool = False
    certificates: str = "single"
    certInfo: bool = False
    authInfo: bool = False
    onlyValid: bool = False


class InfoReq(_In):
    credentialID: str = Field(min_length=1, max_length=64)
    certificates: str = "single"
    certInfo: bool = False
    authInfo: bool = False


class AuthData(BaseModel):
    id: str = Field(max_length=64)
    value: str | None = Field(
        default=None,
        description="Always empty: the PIN and the OTP are typed in the kyso app (out of band)",
        json_schema_extra={"anyOf": [{"type": "string", "maxLength": 0}, {"type": "null"}]},
    )


class AuthorizeIn(_In):
    """``numSignatures`` equals the number of ``hashes``; each hash is a digest of ``hashAlgorithmOID``."""

    model_config = ConfigDict(
        json_schema_extra=_rules(
            _fields(
                hashes={"type": "array", "items": _DIGEST, "minItems": 1, "maxItems": MAX_DOCUMENTS},
                hashAlgorithmOID={"type": "string", "enum": list(HASH_OIDS), "default": signer.HASHES["sha256"].oid},
            ),
            digest_rule("hashes", "hashAlgorithmOID", HASH_OIDS, signer.HASHES["sha256"].oid, many=True),
        )
    )
    credentialID: str = Field(min_length=1, max_length=64)
    numSignatures: int = Field(ge=1, le=MAX_DOCUMENTS)
    hashes: list[str] = Field(min_length=1, max_length=MAX_DOCUMENTS)
    hashAlgorithmOID: str = signer.HASHES["sha256"].oid
    authData: list[AuthData] = Field(default_factory=list)
    description: str | None = Field(default=None, max_length=500)


class HandleIn(_In):
    handle: str = Field(min_length=1, max_length=64)


class SignHashIn(_In):
    """The hashes are digests of the algorithm authorised (``hashAlgorithmOID``, if given, names it)."""

    model_config = ConfigDict(
        json_schema_extra=_rules(
            _fields(
                hashes={"type": "array", "items": _DIGEST, "minItems": 1, "maxItems": MAX_DOCUMENTS},
                hashAlgorithmOID={"anyOf": [{"type": "string", "enum": list(HASH_OIDS)}, {"type": "null"}]},
                signAlgo={"type": "string", "enum": SIGN_ALGOS},
                operationMode={"type": "string", "enum": ["S", "A"], "default": "S"},
                response_uri={"anyOf": [{"type": "string", "maxLength": 2000, "pattern": HTTP_URL}, {"type": "null"}]},
            ),
            digest_rule("hashes", "hashAlgorithmOID", HASH_OIDS, None, many=True),
        )
    )
    credentialID: str = Field(min_length=1, max_length=64)
    SAD: str = Field(min_length=1, max_length=200)
    hashes: list[str] = Field(min_length=1, max_length=MAX_DOCUMENTS)
    hashAlgorithmOID: str | None = None
    signAlgo: str = Field(min_length=1, max_length=64)
    signAlgoParams: str | None = Field(default=None, max_length=1000)
    operationMode: str = "S"
    validity_period: int | None = Field(default=None, ge=1, le=3_600_000)
    response_uri: str | None = Field(default=None, max_length=2000)


class DocumentDigestsIn(BaseModel):
    """PAdES (``P``) over SHA-256 byte-range digests."""

    model_config = ConfigDict(
        extra="ignore",
        json_schema_extra=_fields(
            hashes={
                "type": "array",
                "items": {"type": "string", "pattern": DIGEST_PATTERNS["sha256"]},
                "minItems": 1,
                "maxItems": MAX_DOCUMENTS,
            },
            hashAlgorithmOID={"type": "string", "const": signer.HASHES["sha256"].oid},
            signature_format={"type": "string", "const": "P"},
            conformance_level={"type": "string", "enum": list(LEVELS), "default": "Ades-B-B"},
            signAlgo={"type": "string", "enum": SIGN_ALGOS},
        ),
    )
    hashes: list[str] = Field(min_length=1, max_length=MAX_DOCUMENTS, description="base64 PDF byte-range digests")
    hashAlgorithmOID: str = Field(min_length=1, max_length=64)
    signature_format: str = Field(min_length=1, max_length=8, description="P (PAdES) is the one supported")
    conformance_level: str = Field(default="Ades-B-B", max_length=16, description="Ades-B-B, Ades-B-T or Ades-B-LT")
    signAlgo: str = Field(min_length=1, max_length=64)
    signAlgoParams: str | None = Field(default=None, max_length=1000)


class SignDocIn(_In):
    """``documentDigests`` only: kyso does not take whole ``documents`` (prepare the PDF, send its digests)."""

    model_config = ConfigDict(
        json_schema_extra=_rules(
            _fields(
                documentDigests=_not_null,
                documents={"anyOf": [{"type": "array", "maxItems": 0}, {"type": "null"}]},
                operationMode={"type": "string", "const": "S", "default": "S"},
            ),
            _required("credentialID", "SAD", "documentDigests"),
        )
    )
    credentialID: str = Field(min_length=1, max_length=64)
    SAD: str = Field(min_length=1, max_length=200)
    documentDigests: list[DocumentDigestsIn] | None = Field(default=None, min_length=1, max_length=MAX_DOCUMENTS)
    documents: list[dict[str, Any]] | None = Field(default=None, max_length=MAX_DOCUMENTS)
    operationMode: str = "S"
    returnValidationInfo: bool = False


class TimestampIn(_In):
    model_config = ConfigDict(
        json_schema_extra=_rules(
            _fields(
                hash={"type": "string", "pattern": ANY_DIGEST, "description": "base64 digest to timestamp"},
                hashAlgo={"type": "string", "enum": list(HASH_OIDS), "description": "its algorithm's OID"},
            ),
            digest_rule("hash", "hashAlgo", HASH_OIDS, None, many=False),
        )
    )
    hash: str = Field(min_length=1, max_length=200, description="base64 digest to timestamp")
    hashAlgo: str = Field(min_length=1, max_length=64, description="its algorithm's OID")
    nonce: str | None = Field(default=None, max_length=64, pattern=r"^[0-9a-fA-F]+$", description="hex")


class PollIn(_In):
    responseID: str = Field(min_length=1, max_length=64)


class _Out(BaseModel):
    model_config = ConfigDict(extra="allow")


class InfoOut(_Out):
    specs: str
    name: str
    region: str
    lang: str
    authType: list[str]
    oauth2: str = Field(description="Base URI of the OAuth 2.0 server: its token endpoint is `{oauth2}oauth2/token`")
    methods: list[str]


class KeyOut(_Out):
    status: str
    algo: list[str]
    len: int
    curve: str | None = None


class CertOut(_Out):
    status: str
    certificates: list[str] | None = None
    issuerDN: str | None = None
    serialNumber: str | None = None
    subjectDN: str | None = None
    validFrom: str | None = None
    validTo: str | None = None


class CredentialInfoOut(_Out):
    key: KeyOut
    cert: CertOut
    auth: dict[str, Any]
    SCAL: str
    multisign: int


class CredentialListOut(_Out):
    credentialIDs: list[str]
    credentialInfos: list[dict[str, Any]] | None = None


class HandleOut(_Out):
    """202: the subscriber is asked in the kyso app; ask ``credentials/authorizeCheck`` with the handle."""

    handle: str = Field(description="The authorisation's handle (the signing request id)")


class SadOut(_Out):
    """200 (``credentials/authorizeCheck``): the subscriber confirmed."""

    SAD: str = Field(description="The signature activation data")
    expiresIn: int = Field(description="Seconds the SAD stays valid")


class TimestampOut(_Out):
    timestamp: str = Field(description="base64 RFC 3161 TimeStampToken")


class ValidationInfoOut(_Out):
    ocsp: list[str] = Field(default_factory=list, description="base64 DER OCSP responses")
    crl: list[str] = Field(default_factory=list, description="base64 DER CRLs")
    certificates: list[str] = Field(default_factory=list, description="base64 DER certificates")


class SignDocOut(_Out):
    SignatureObject: list[str] = Field(description="base64 DER CMS SignedData (PAdES), in input order")
    validationInfo: ValidationInfoOut | None = None


class SignaturesOut(_Out):
    signatures: list[str] | None = Field(default=None, description="Base64, in the order of the hashes")
    responseID: str | None = Field(default=None, description="operationMode A: then signatures/signPolling")


REQUEST_MODELS: tuple[type[BaseModel], ...] = (
    InfoIn,
    ListIn,
    InfoReq,
    AuthData,
    AuthorizeIn,
    HandleIn,
    SignHashIn,
    DocumentDigestsIn,
    SignDocIn,
    PollIn,
    TimestampIn,
)
"""The bodies the routes parse themselves: the composition root puts them into the document's components."""


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


class Csc:
    def __init__(
        self,
        store: Store,
        remote: RemoteSigning,
        authority: Authority,
        webhooks: Webhooks,
        clock: Clock,
        stamper: TimestampAuthority | None = None,
        papers: Papers | None = None,
        responder: Responder | None = None,
    ) -> None:
        self.stamper = stamper
        self.papers = papers
        self.responder = responder
        self.certs = store.collection("certificates", events=True)
        self.requests = remote.requests
        self.responses = store.collection("csc_responses")
        self.sads = remote.sads
        self.remote = remote
        self.authority = authority
        self.webhooks = webhooks
        self.clock = clock

    def info(self, base_url: str) -> dict[str, Any]:
        """``base_url``: where this service was reached (``…/``); ``oauth2`` is the base URI of its OAuth
        2.0 server (CSC v2 §11.1), so ``{oauth2}oauth2/token`` is ``POST /v1/oauth2/token``."""
        return {
            "specs": SPECS,
            "name": "kyso",
            "logo": "https://kyso.vn/logo.png",
            "region": "VN",
            "lang": "vi-VN",
            "description": "kyso remote signing (SCAL2: the subscriber confirms in the kyso app with PIN and OTP)",
            "authType": ["oauth2client"],
            "oauth2": base_url.rstrip("/") + "/v1/",
            "asynchronousOperationMode": True,
            "methods": [
                "credentials/list",
                "credentials/info",
                "credentials/authorize",
                "credentials/authorizeCheck",
                "signatures/signHash",
                "signatures/signDoc",
                "signatures/signPolling",
                "signatures/timestamp",
            ],
            "signature_formats": {"formats": ["P"], "envelope_properties": [["Certification", "Revision"]]},
            "conformance_levels": list(LEVELS),
            "signAlgorithms": {
                "algos": [*signer.ECDSA_WITH.values(), signer.RSASSA_PSS],
                "algoParams": [base64.b64encode(signer.pss_params(h)).decode() for h in signer.HASHES.values()],
            },
        }

    async def _credential(self, client: Client, credential_id: str) -> dict[str, Any]:
        cert = await self.certs.get(credential_id)
        if cert is None or "certificate" not in cert:
            raise invalid("Invalid parameter credentialID")
        return cert

    def credential_info(
        self, cert: dict[str, Any], certificates: str, cert_info: bool, auth_info: bool
    ) -> dict[str, Any]:
        c = cert["certificate"]
        x = pki.load_certificate(c["certificate_pem"])
        algorithm = KeyAlgorithm(c.get("key_algorithm", KeyAlgorithm.ECDSA_P256))
        status = S(cert["status"])
        key: dict[str, Any] = {
            "status": "enabled" if status == S.ACTIVE else "disabled",
            "algo": signer.signature_algorithms(algorithm),
            "len": pki.public_key_of(x).key_size,
        }
        if algorithm != KeyAlgorithm.RSA_3072_PSS:
            key["curve"] = "1.3.132.0.34" if algorithm == KeyAlgorithm.ECDSA_P384 else "1.2.840.10045.3.1.7"
        out: dict[str, Any] = {
            "description": f"kyso personal certificate {c['serial_number']}",
            "key": key,
            "cert": {"status": CERT_STATUS.get(status, "valid")},
            "auth": {"mode": "explicit"},
            "SCAL": "2",
            "multisign": MAX_DOCUMENTS,
            "lang": "vi-VN",
        }
        chain = [pki.der(x)]
        if certificates == "chain":
            chain += [pki.der(self.authority.ca_certificate), pki.der(self.authority.root_certificate)]
        if certificates in ("single", "chain"):
            out["cert"]["certificates"] = [base64.b64encode(d).decode() for d in chain]
        if cert_info:
            out["cert"] |= {
                "issuerDN": x.issuer.rfc4514_string(),
                "serialNumber": c["serial_number"],
                "subjectDN": x.subject.rfc4514_string(),
                "validFrom": x.not_valid_before_utc.strftime("%Y%m%d%H%M%SZ"),
                "validTo": x.not_valid_after_utc.strftime("%Y%m%d%H%M%SZ"),
            }
        if auth_info:
            out["auth"] |= {
                "expression": "PIN AND OTP",
                "objects": [
                    {"type": "PasswordOOB", "id": "PIN", "format": "N", "label": "Signing PIN",
                     "description": "Typed by the subscriber in the kyso app, never sent by the relying party"},
                    {"type": "ChallengeResponseOOB", "id": "OTP", "format": "N", "generator": "ocra",
                     "label": "SmartOTP transaction code or SMS code",
                     "description": "Computed over the digests being signed (dynamic linking)"},
                ],
            }  # fmt: skip
        return out

    async def credentials(self, client: Client, body: ListIn) -> dict[str, Any]:
        if not body.userID:
            raise invalid("Missing parameter userID")
        certs = [d for d in await self.certs.find({"account_id": body.userID}) if "certificate" in d]
        if body.onlyValid:
            certs = [d for d in certs if d["status"] == S.ACTIVE]
        certs.sort(key=lambda d: as_utc(d["certificate"]["not_before"]), reverse=True)
        out: dict[str, Any] = {"credentialIDs": [d["_id"] for d in certs]}
        if body.credentialInfo:
            out["credentialInfos"] = [
                {"credentialID": d["_id"], **self.credential_info(d, body.certificates, body.certInfo, body.authInfo)}
                for d in certs
            ]
        if body.onlyValid:
            out["onlyValid"] = True
        return out

    async def authorize(self, client: Client, body: AuthorizeIn, address: str | None) -> dict[str, Any]:
        h = signer.HASH_BY_OID.get(body.hashAlgorithmOID)
        if h is None:
            raise invalid("Invalid parameter hashAlgorithmOID")
        if body.numSignatures != len(body.hashes):
            raise invalid("numSignatures must equal the number of hashes")
        if any(a.value for a in body.authData):
            raise invalid("The PIN and OTP are entered only in the kyso app; send authData values empty")
        docs = [Document(f"Document {i + 1}", text, h.name) for i, text in enumerate(body.hashes)]
        try:
            doc = await self.remote.submit(
                client,
                docs,
                description=body.description or "Ký tài liệu / Sign documents",
                certificate_id=body.credentialID,
                client_address=address,
                csc={"num_signatures": body.numSignatures, "hash_algorithm_oid": h.oid},
            )
        except NotFound:
            raise invalid("Invalid parameter credentialID") from None
        return {"handle": doc["_id"]}

    async def authorize_check(self, client: Client, body: HandleIn) -> tuple[int, dict[str, Any]]:
        try:
            doc = await self.remote.of_client(client, body.handle)
        except NotFound:
            raise invalid("Invalid parameter handle") from None
        if "csc" not in doc:
            raise invalid("Invalid parameter handle")
        if doc["status"] == WAITING:
            if as_utc(doc["expires_at"]) <= self.clock.now():
                raise CscError(400, "access_denied", "The subscriber did not confirm in time")
            return 202, {"handle": doc["_id"]}
        if doc["status"] != SIGNED:
            raise CscError(400, "access_denied", f"The authorisation was {doc['status']}")
        left = expires_in(doc, self.clock.now())
        if left <= 0:
            raise invalid("SAD expired")
        sad = self.remote.sad_of(doc)
        if sad is None:  # ended early: the certificate was suspended, revoked or expired
            record = await self.sads.get(doc.get("sad_sha256"), {"ended": 1}) if doc.get("sad_sha256") else None
            raise invalid(f"SAD no longer valid ({(record or {}).get('ended', 'ended')})")
        return 200, {"SAD": sad, "expiresIn": left}

    async def _sad(self, sad: str) -> dict[str, Any] | None:
        """The SAD's own small record (its SHA-256 is the key; ``RemoteSigning.record_sad``).

        It holds what ``signHash`` needs and nothing else — the authorised digests, their signatures and a
        bitmask of the ones already used — so each call reads and rewrites a few hundred bytes, not the
        request with its evidence. The bitmask lives only here: it is the one place a digest is spent."""
        record = await self.sads.get(hashlib.sha256(sad.encode()).hexdigest())
        return dict(record) if record is not None else None

    async def _usable_sad(self, client: Client, sad_text: str, credential_id: str, fields: Any = None) -> Doc:
        sad = await self._sad(sad_text)
        if sad is None or sad["client_id"] != client.client_id:
            raise invalid("Invalid parameter SAD")
        if sad["certificate_id"] != credential_id:
            raise invalid("Invalid parameter credentialID")
        if as_utc(sad["expires_at"]) <= self.clock.now():
            await self.remote.end_sad(sad, "expired")
            raise invalid("SAD expired")
        cert = await self.certs.get(sad["certificate_id"], (fields or {"status": 1}) | {"revision": 1})
        if cert is None or cert["status"] != S.ACTIVE:
            status = CERT_STATUS.get(S(cert["status"]), "invalid") if cert else "invalid"
            raise invalid(f"Signing certificate is {status}")
        if not sad.get("live") or cert.get("revision", 0) != sad.get("certificate_revision"):
            # the certificate was suspended (or changed) after this SAD was issued: it ended then
            await self.remote.end_sad(sad, "certificate status changed")
            raise invalid(f"SAD no longer valid ({sad.get('ended') or 'certificate status changed'})")
        return sad | {"_cert": cert}

    @staticmethod
    def _decoded(hashes: list[str], h: signer.Hash) -> list[bytes]:
        raw = []
        for text in hashes:
            try:
                raw.append(signer.decode_hash(text, h))
            except ValueError:
                raise invalid("Invalid parameter hashes") from None
        return raw

    async def sign_hash(self, client: Client, body: SignHashIn) -> list[str]:
        sad = await self._usable_sad(client, body.SAD, body.credentialID)
        h = signer.HASHES[sad["hash"]]
        self._check_algorithm(body, KeyAlgorithm(sad["key_algorithm"]), h)
        raw = self._decoded(body.hashes, h)
        return [sad["signatures"][i] for i in await self._spend(sad, raw)]

    async def _spend(self, sad: Doc, raw: list[bytes]) -> list[int]:
        """Mark the digests used, each exactly once across concurrent calls; their indexes in the SAD."""
        sad = {k: v for k, v in sad.items() if k != "_cert"}
        digests = [bytes(d) for d in sad["digests"]]
        if len(raw) > len(digests):
            raise invalid("Numbers of signatures is too high")
        for _ in range(_RACES):
            used, wanted = sad["used"], []
            for r in raw:
                free = [i for i, d in enumerate(digests) if d == r and not used >> i & 1 and i not in wanted]
                if not free:
                    raise invalid("Hash is not authorized by the SAD")
                wanted.append(free[0])
            mask = sum(1 << i for i in wanted)
            if await self.sads.update({"_id": sad["_id"], "used": used}, {"$set": {"used": used | mask}}):
                return wanted
            again = await self.sads.get(sad["_id"])  # another call spent some digests meanwhile
            if again is None:
                raise invalid("Invalid parameter SAD")
            sad = dict(again)
        raise invalid("Hash is not authorized by the SAD")

    async def sign_doc(self, client: Client, body: SignDocIn) -> dict[str, Any]:
        """``signatures/signDoc`` for PAdES: the integrator prepared the PDF and sends its byte-range
        digests (authorised like any digest); each answer is a CMS SignedData to embed — signed
        attributes over the digest, the signature the subscriber confirmed, and for B-T and B-LT a
        signature timestamp from kyso's TSA; B-LT also returns the validation data for the DSS."""
        assert self.papers is not None and self.stamper is not None
        if body.documents:
            raise invalid("documents are not supported: prepare the PDF and send documentDigests")
        if not body.documentDigests:
            raise invalid("Missing parameter documentDigests")
        if body.operationMode != "S":
            raise invalid("Invalid parameter operationMode")
        sad = await self._usable_sad(client, body.SAD, body.credentialID, {"status": 1, "certificate": 1})
        if not sad.get("pades_signatures") or sad["hash"] != "sha256":
            raise invalid("The SAD does not authorise PAdES signatures (authorise SHA-256 digests)")
        levels, raw = [], []
        for d in body.documentDigests:
            if d.signature_format != "P":
                raise invalid("Invalid parameter signature_format")
            if d.conformance_level not in LEVELS:
                raise invalid("Invalid parameter conformance_level")
            h = signer.HASHES["sha256"]
            self._check_algorithm(d, KeyAlgorithm(sad["key_algorithm"]), h)
            for r in self._decoded(d.hashes, h):
                raw.append(r)
                levels.append(d.conformance_level)
        spent = await self._spend(sad, raw)
        cert = pki.load_certificate(sad["_cert"]["certificate"]["certificate_pem"])
        trust = await self.papers.trust()
        stamper = self.papers.timestamper()
        signatures = [base64.b64decode(sad["pades_signatures"][i]) for i in spent]

        def build() -> list[str]:
            return [
                base64.b64encode(pades.cms(r, sig, cert, trust, stamper if level != "Ades-B-B" else None)).decode()
                for r, sig, level in zip(raw, signatures, levels, strict=True)
            ]

        out: dict[str, Any] = {"SignatureObject": await off_loop(build)}
        if body.returnValidationInfo or "Ades-B-LT" in levels:
            out["validationInfo"] = await self._validation_info(cert, trust)
        return out

    async def _validation_info(self, cert: x509.Certificate, trust: pades.Trust) -> dict[str, list[str]]:
        """What a PAdES B-LT DSS needs for this signer: the chain, the CA's CRLs, an OCSP answer."""
        info: dict[str, list[str]] = {
            "certificates": [_b64(pki.der(c)) for c in (cert, trust.issuing, trust.root)],
            "crl": [_b64(c) for c in trust.crls_der],
            "ocsp": [],
        }
        if self.responder is not None:
            request = (
                ocsp.OCSPRequestBuilder()
                .add_certificate(cert, trust.issuing, hashes.SHA256())
                .build()
                .public_bytes(serialization.Encoding.DER)
            )
            info["ocsp"].append(_b64((await self.responder.respond(request)).der))
        return info

    @staticmethod
    def _check_algorithm(body: SignHashIn | DocumentDigestsIn, algorithm: KeyAlgorithm, h: signer.Hash) -> None:
        if body.hashAlgorithmOID is not None and signer.HASH_BY_OID.get(body.hashAlgorithmOID) != h:
            raise invalid("Invalid parameter hashAlgorithmOID")
        if body.signAlgo not in signer.signature_algorithms(algorithm):
            raise invalid("Invalid parameter signAlgo")
        if body.signAlgo == signer.RSASSA_PSS:
            try:
                if signer.hash_of_pss_params(base64.b64decode(body.signAlgoParams or "", validate=True)) != h:
                    raise ValueError("another hash")
            except ValueError:
                raise invalid("Invalid parameter signAlgoParams") from None
        elif signer.ECDSA_BY_OID[body.signAlgo] != h:
            raise invalid("Invalid parameter signAlgo")

    async def check_response_uri(self, client: Client, url: str) -> None:
        """A ``response_uri`` kyso would not call is the spec's ``invalid_request`` — before anything is
        signed, spent or queued."""
        doc = await self.webhooks.clients.clients.get(client.client_id)
        try:
            if doc is None:
                raise CallbackRefused("unknown relying party")
            await self.webhooks.clients.callback_target(doc, url)
        except CallbackRefused as exc:
            raise invalid(f"Invalid parameter response_uri: {exc}") from None

    async def sign_hash_async(self, client: Client, body: SignHashIn) -> dict[str, Any]:
        if body.response_uri is not None:
            await self.check_response_uri(client, body.response_uri)
        signatures = await self.sign_hash(client, body)
        response_id = secrets.token_hex(16)
        keep = timedelta(milliseconds=body.validity_period or 600_000)
        await self.responses.insert(
            {
                "_id": response_id,
                "client_id": client.client_id,
                "signatures": signatures,
                "expires_at": self.clock.now() + keep,
            }
        )
        if body.response_uri:
            note = json.dumps({"responseID": response_id}).encode()
            await self.webhooks.enqueue(client.client_id, body.response_uri, note.decode(), f"csc-{response_id}")
        return {"responseID": response_id}

    def timestamp(self, body: TimestampIn) -> str:
        """``signatures/timestamp``: an RFC 3161 token over ``hash`` from kyso's own TSA."""
        assert self.stamper is not None
        h = signer.HASH_BY_OID.get(body.hashAlgo)
        if h is None:
            raise invalid("Invalid parameter hashAlgo")
        try:
            digest = signer.decode_hash(body.hash, h)
        except ValueError:
            raise invalid("Invalid parameter hash") from None
        nonce = None
        if body.nonce is not None:
            try:
                nonce = int(body.nonce, 16)
            except ValueError:
                raise invalid("Invalid parameter nonce") from None
        return base64.b64encode(self.stamper.stamp_imprint(digest, h.name, nonce)).decode()

    async def poll(self, client: Client, body: PollIn) -> list[str]:
        doc = await self.responses.get(body.responseID)
        if doc is None or doc["client_id"] != client.client_id or as_utc(doc["expires_at"]) <= self.clock.now():
            raise invalid("Invalid parameter responseID")
        return list(doc["signatures"])


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


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
