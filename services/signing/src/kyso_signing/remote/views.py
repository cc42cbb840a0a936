"""What the relying-party API accepts and answers (the OpenAPI document is generated from these)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from kyso_contracts.types import Id, Pin, Sha256Hex

_B64 = "[A-Za-z0-9+/_-]"
DIGEST_PATTERNS = {
    "sha256": f"^{_B64}{{43}}=?$",
    "sha384": f"^{_B64}{{64}}={{0,2}}$",
    "sha512": f"^{_B64}{{86}}={{0,2}}$",
}
"""What ``signer.decode_hash`` accepts for each algorithm: the digest (32, 48 or 64 bytes) in base64 or
base64url (either alphabet), its padding optional (and, as the decoder tolerates it, up to two ``=`` after
a complete 48-byte encoding)."""
ANY_DIGEST = f"^({_B64}{{43}}=?|{_B64}{{64}}={{0,2}}|{_B64}{{86}}={{0,2}})$"


def digest_rule(field: str, selector: str, by_value: dict[str, str], default: str | None, many: bool) -> dict[str, Any]:
    """JSON Schema conditions: when ``selector`` is one of ``by_value`` (absent: ``default``), ``field`` (an
    array of them when ``many``) is a digest of that algorithm, as the server decodes it."""
    rules = []
    for value, algorithm in by_value.items():
        digest = {"type": "string", "pattern": DIGEST_PATTERNS[algorithm]}
        when: dict[str, Any] = {"properties": {selector: {"const": value}}}
        if value != default:
            when["required"] = [selector]
        rules.append({"if": when, "then": {"properties": {field: {"items": digest} if many else digest}}})
    return {"allOf": rules}


def _document_rule(schema: dict[str, Any]) -> None:
    schema.update(digest_rule("hash", "hash_algorithm", {a: a for a in DIGEST_PATTERNS}, "sha256", many=False))


# --------------------------------------------------------------------------- remote signing


HTTP_URL = "^[Hh][Tt][Tt][Pp][Ss]?://[^/?#]"
"""An http or https URL with a host (the scheme in any case, as URLs have it): kyso calls nothing else."""


class RelyingPartyRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    webhook_url: str | None = Field(
        default=None,
        max_length=2000,
        json_schema_extra={"pattern": HTTP_URL},  # the server's own check answers 422 invalid_callback_url
        description="Where outcomes are POSTed, signed: an http(s) URL on one of `allowed_origins`",
    )
    allowed_origins: list[Annotated[str, Field(max_length=2000, json_schema_extra={"pattern": HTTP_URL})]] = Field(
        default_factory=list,
        max_length=10,
        description="The origins (scheme://host[:port]) kyso may send requests to for this relying party: its "
        "webhook and CSC `response_uri`s. Omitted: the webhook URL's origin. In production, no loopback, "
        "link-local or private address (checked again on the resolved address at each delivery)",
    )


class RelyingPartyCreated(BaseModel):
    client_id: Id
    client_secret: str = Field(description="Shown once; kyso keeps only its hash")
    webhook_secret: str = Field(description="Standard Webhooks key (whsec_…), shown once")
    name: str
    webhook_url: str | None
    allowed_origins: list[str] = Field(description="Normalised: lower case, no default port")


class OAuthErrorBody(BaseModel):
    """RFC 6749 §5.2."""

    error: str = Field(description="invalid_request · invalid_client · unsupported_grant_type")
    error_description: str | None = None


class TokenRequest(BaseModel):
    """RFC 6749 §4.4.2 (documentation of the form the token endpoint reads itself). The client
    authenticates with HTTP Basic or with ``client_id`` and ``client_secret`` here, never both. A
    missing ``grant_type`` is answered 400 ``invalid_request`` (§5.2), any other 400
    ``unsupported_grant_type``."""

    grant_type: Literal["client_credentials"]
    client_id: str | None = Field(default=None, description="Without HTTP Basic")
    client_secret: str | None = Field(default=None, description="Without HTTP Basic")


class TokenResponse(BaseModel):
    access_token: str
    token_type: Literal["Bearer"]
    expires_in: int


class DocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra=_document_rule)
    label: str = Field(min_length=1, max_length=200, description="Shown to the subscriber in the kyso app")
    hash: str = Field(
        min_length=1,
        max_length=200,
        json_schema_extra={"pattern": ANY_DIGEST},
        description="The document's digest (32, 48 or 64 bytes for sha256, sha384, sha512), base64 or base64url, "
        "padding optional",
    )
    hash_algorithm: Literal["sha256", "sha384", "sha512"] = "sha256"


class SigningRequestIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: Id | None = Field(default=None, description="The subscriber's account id")
    credential_id: Id | None = Field(default=None, description="Or the certificate to sign with")
    description: str = Field(min_length=1, max_length=500, description="Shown to the subscriber")
    documents: list[DocumentIn] = Field(min_length=1, max_length=50)


class PdfSigningRequestIn(BaseModel):
    """A PDF to sign (PAdES); at most 10 MiB once decoded."""

    model_config = ConfigDict(extra="forbid")
    user_id: Id | None = Field(default=None, description="The subscriber's account id")
    credential_id: Id | None = Field(default=None, description="Or the certificate to sign with")
    description: str = Field(min_length=1, max_length=500, description="Shown to the subscriber")
    label: str = Field(min_length=1, max_length=200, description="The document's name, shown to the subscriber")
    pdf_base64: str = Field(min_length=4, max_length=15 * 1024 * 1024, description="The PDF, standard base64")
    level: Literal["B-B", "B-T", "B-LT", "B-LTA"] = Field(
        default="B-LTA", description="PAdES baseline level (ETSI EN 319 142-1) of the signed PDF"
    )
    reason: str | None = Field(default=None, max_length=200, description="The signature's /Reason")


class SigningRequestCreated(BaseModel):
    request_id: Id
    status: str
    certificate_id: Id
    documents_digest: Sha256Hex
    expires_at: str
    signed_pdf_url: str | None = Field(default=None, description="(a PDF request) where the signed PDF is, once signed")


class SignatureEntry(BaseModel):
    label: str
    hash: str
    hash_algorithm: str
    signature: str | None = Field(
        default=None,
        description="Base64; ECDSA as DER, RSA as RSASSA-PSS. Only for requests made here: a CSC authorisation's "
        "signatures are given only by `signatures/signHash`, `signPolling` and `signDoc`, against the SAD",
    )
    signature_algorithm: str | None = Field(default=None, description="The signature algorithm's OID")


class SigningRequestView(BaseModel):
    request_id: Id
    status: str = Field(description="waiting_for_user_confirm · signed · rejected · expired")
    description: str
    relying_party: str
    certificate_id: Id
    certificate_serial: str
    documents_digest: Sha256Hex = Field(description="What the confirming one-time code is computed over")
    created_at: str
    expires_at: str
    signed_at: str | None = None
    signatures: list[SignatureEntry]
    otp_verified: bool | None = Field(default=None, description="(the app) a code bound to the documents verified")


class SigningRequestList(BaseModel):
    requests: list[SigningRequestView]


class ConfirmRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")
    pin: Pin
