"""Every service's OpenAPI document is exact enough for an integrator: a response model on every
operation, the error body on every error response, the bearer scheme on every protected operation,
and the rules the server enforces written into the schemas. Framework errors keep the one error body."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from kyso_otp.bootstrap import build as build_otp
from kyso_payment.bootstrap import build as build_payment
from kyso_registration.bootstrap import build as build_registration
from kyso_signing.bootstrap import build as build_signing

BUILDERS: dict[str, Callable[[], Any]] = {
    "registration": build_registration,
    "payment": build_payment,
    "signing": build_signing,
    "otp": build_otp,
}

# Operations anyone may call, and why.
PUBLIC = {
    ("get", "/health"),  # liveness
    ("get", "/ready"),  # readiness
    ("get", "/metrics"),  # Prometheus scrapes it from inside the deployment
    ("get", "/.well-known/jwks.json"),  # the token keys are public by design
    ("post", "/v1/vneid/registrations"),  # VNeID's signature is the credential
    ("post", "/v1/vneid/status-queries"),  # VNeID's signature is the credential
    ("get", "/v1/registrations/{registration_id}"),  # before an account exists
    ("post", "/v1/registrations/{registration_id}/confirm"),
    ("post", "/v1/registrations/{registration_id}/account"),
    ("post", "/v1/sessions"),  # signing in
    ("get", "/v1/packages"),  # the public price list
    ("get", "/v1/payments/vnpay/ipn"),  # the gateway's signature is the credential
    ("get", "/v1/payments/vnpay/return"),  # the gateway's signature; display only
    ("post", "/v1/sms-otp/challenges/{challenge_id}/resend"),  # the challenge id is the capability
    ("post", "/v1/sms-otp/challenges/{challenge_id}/verify"),
    ("post", "/v1/sms-otp/challenges"),  # phone verification happens before an account exists
    ("get", "/v1/time"),  # device clock sync
    ("get", "/v1/smartotp/terms"),
    ("post", "/v1/smartotp/activations"),  # the activation code is the credential
    ("get", "/v1/dev/sms-inbox"),  # development profile only
    ("get", "/v1/ca/certificate"),  # AIA: certificates are public
    ("get", "/v1/ca/provider-seal"),
    ("get", "/pki/ca/root.cer"),  # AIA caIssuers, CRL distribution points and OCSP: relying parties
    ("get", "/pki/ca/issuing.cer"),  # fetch them without any account (RFC 5280, RFC 6960)
    ("get", "/pki/ca/chain.pem"),
    ("get", "/pki/crl/issuing.crl"),
    ("get", "/pki/crl/root.crl"),
    ("get", "/pki/provider/seal.cer"),  # the provider's own certificates (seal, TSA, OCSP responder)
    ("get", "/pki/provider/tsa.cer"),
    ("get", "/pki/provider/ocsp-responder.cer"),
    ("get", "/ocsp/{encoded}"),
    ("post", "/ocsp"),
    ("post", "/tsa"),  # RFC 3161 over HTTP: a public timestamp authority
    ("post", "/v1/oauth2/token"),  # the client authenticates in the request itself (RFC 6749 §2.3)
    ("post", "/csc/v2/info"),  # the one mandatory CSC method, public by the spec
}

# Operations that speak another specification's error body (RFC 6749 §5.2, CSC API v2 §10)
FOREIGN_ERRORS = {"/v1/oauth2/token": "OAuthErrorBody", "/csc/": "CscErrorBody"}


# Answer bad input inside their own protocol, with HTTP 200: an OCSPResponse malformedRequest (RFC 6960
# §2.3), a TimeStampResp rejection badDataFormat (RFC 3161 §2.4.2)
IN_PROTOCOL_ERRORS = {"/tsa"}


def error_body_of(path: str) -> str:
    return next((body for prefix, body in FOREIGN_ERRORS.items() if path.startswith(prefix)), "ErrorBody")


@pytest.fixture(scope="module", params=sorted(BUILDERS))
def app(request: pytest.FixtureRequest) -> FastAPI:
    _, app = BUILDERS[request.param]()
    return app  # type: ignore[no-any-return]


def operations(doc: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(m, p, op) for p, ops in doc["paths"].items() for m, op in ops.items()]


def test_every_operation_has_a_response_model(app: FastAPI) -> None:
    for method, path, op in operations(app.openapi()):
        ok = {s: r for s, r in op["responses"].items() if s.startswith("2")}
        assert ok, f"{method} {path}: no success response"
        for status, resp in ok.items():
            content = resp.get("content", {})
            schema = next((c["schema"] for c in content.values() if "schema" in c), None)
            assert schema, f"{method} {path} {status}: no response schema"
            assert "$ref" in schema or schema.get("type") == "string", f"{method} {path}: free-form response {schema}"


def test_every_error_response_carries_the_error_body(app: FastAPI) -> None:
    for method, path, op in operations(app.openapi()):
        for status, resp in op["responses"].items():
            if status.startswith(("4", "5")) and status != "503":
                ref = resp["content"]["application/json"]["schema"]["$ref"]
                expected = "ErrorBody" if status == "422" else error_body_of(path)  # the framework's own check
                assert ref == f"#/components/schemas/{expected}", f"{method} {path} {status}"
        if (op.get("parameters") or op.get("requestBody")) and path not in IN_PROTOCOL_ERRORS:
            # the CSC spec answers 400 invalid_request, and so does OAuth 2.0's token endpoint (RFC 6749 §5.2)
            bad_input = "400" if path.startswith("/csc/") or path == "/v1/oauth2/token" else "422"
            assert bad_input in op["responses"], f"{method} {path}: input without a documented {bad_input}"


def test_protected_operations_declare_the_bearer_scheme_and_401(app: FastAPI) -> None:
    doc = app.openapi()
    schemes = doc.get("components", {}).get("securitySchemes", {})
    for method, path, op in operations(doc):
        if (method, path) in PUBLIC:
            continue
        assert op.get("security"), f"{method} {path} is protected but looks public"
        [scheme] = op["security"][0]
        assert schemes[scheme] == {
            "type": "http",
            "scheme": "bearer",
            "description": schemes[scheme]["description"],
        }
        assert {"401", "403"} & set(op["responses"]), f"{method} {path}"
        assert "401" in op["responses"]


def test_the_error_body_schema_is_bilingual(app: FastAPI) -> None:
    detail = app.openapi()["components"]["schemas"]["ErrorDetail"]
    assert {"code", "message", "message_vi"} <= set(detail["required"])


def _schema(doc: dict[str, Any], name: str) -> dict[str, Any]:
    return doc["components"]["schemas"][name]  # type: ignore[no-any-return]


def test_rules_the_server_enforces_are_in_the_schemas() -> None:
    otp = build_otp()[1].openapi()
    code = _schema(otp, "CodeRequest")["properties"]["code"]
    assert code["pattern"] == "^[0-9]{6}$"
    activation = _schema(otp, "ActivationRequest")["properties"]["activation_code"]
    assert activation["pattern"] == "^[0-9]{10}$"
    tx = _schema(otp, "TransactionCodeRequest")["properties"]["transaction"]
    assert tx["discriminator"]["propertyName"] == "type"
    for name in ("PaymentTransaction", "DocumentsTransaction"):
        assert "type" in _schema(otp, name)["required"]
    signing = build_signing()[1].openapi()
    pin = _schema(signing, "ActivationRequest")["properties"]["pin"]
    assert pin["pattern"] == "^[0-9]{6,8}$"
    registration = build_registration()[1].openapi()
    package = _schema(registration, "OrderRequest")["properties"]["package_code"]
    assert package["enum"] == ["PERSONAL_1Y", "PERSONAL_2Y", "PERSONAL_3Y"]  # what the app sells
    org = _schema(registration, "OrganisationRegistrationRequest")["properties"]["package_codes"]["items"]
    assert set(org["enum"]) == {f"{k}_{n}Y" for k in ("ORGANISATION", "STAFF") for n in (1, 2, 3)}
    tax = _schema(registration, "OrganisationRequest")["properties"]["tax_code"]
    assert tax["pattern"] == "^[0-9]{10}(-[0-9]{3})?$"
    payment = build_payment()[1].openapi()
    ipn = payment["paths"]["/v1/payments/vnpay/ipn"]["get"]
    assert {"vnp_TxnRef", "vnp_Amount", "vnp_SecureHash", "vnp_ResponseCode"} <= {p["name"] for p in ipn["parameters"]}


def test_framework_errors_keep_the_error_body_in_both_languages() -> None:
    client = TestClient(build_registration()[1])
    wrong_method = client.delete("/v1/packages")
    assert wrong_method.status_code == 405 and wrong_method.headers["allow"] == "GET"
    assert wrong_method.json()["error"]["code"] == "method_not_allowed"
    assert wrong_method.json()["error"]["message_vi"]
    both = client.delete("/v1/organisation-registrations")  # a path with a route per method: both are named
    assert both.status_code == 405 and both.headers["allow"] == "GET, POST"
    missing = client.get("/v1/nothing-here")
    assert missing.status_code == 404 and missing.json()["error"]["message_vi"]
    broken = client.post("/v1/sessions", content=b"{not json", headers={"content-type": "application/json"})
    assert broken.status_code == 422 and broken.json()["error"]["code"] == "malformed_json"
    assert broken.json()["error"]["message_vi"]
    no_token = client.get("/v1/orders/abc")
    assert no_token.status_code == 401 and no_token.headers["www-authenticate"] == "Bearer"
    assert no_token.json()["error"]["code"] == "unauthorized"
