"""The CSC API's wire: request and answer models (with the JSON-Schema rules the server enforces), the
spec's errors and the status names. The use case (``remote.csc``) and the router (``api.csc``) share them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from kyso_signing.credentials.domain import CertificateStatus as S
from kyso_signing.pki import signer
from kyso_signing.remote.domain import MAX_DOCUMENTS
from kyso_signing.remote.views import ANY_DIGEST, DIGEST_PATTERNS, HTTP_URL, digest_rule

SPECS = "2.0.0.2"
LEVELS = ("Ades-B-B", "Ades-B-T", "Ades-B-LT")
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
